"""Pixels at low resolution as a feature space: what a trained or random network may not see.

A feature extractor trained to tell classes apart maps different drawings of one class close
together, so its recall cannot see a generator that draws a few prototypes per class; pixels can.
Each image is area-averaged to ``SIZE`` x ``SIZE`` per channel (8 x 8 x C values: the resolution of
scikit-learn's digit scans), where small shifts and noise average out but the drawing's layout,
stroke and colour regions remain. Nothing is trained, so there is nothing to save but the shape.
"""
from __future__ import annotations

import json
import os

import numpy as np

from tfx_gan.metrics import _io
from tfx_gan.metrics._validation import as_images, as_int_positive

SIZE = 8
METADATA_FILENAME = "pixels.json"


def area_downsample(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """float64 [N, size, size, C]: each output pixel the mean of the input pixels it covers (input
    sides need not be multiples of ``size``: a pixel split between two cells counts in both by the
    share it covers, as PIL's and TF's "area" resizing)."""
    images = np.asarray(images, np.float64)

    def weights(length: int) -> np.ndarray:  # [size, length]: share of each input pixel in each cell
        edges = np.linspace(0.0, length, size + 1)
        starts, ends = np.arange(length), np.arange(length) + 1.0
        overlap = np.clip(np.minimum(ends[None, :], edges[1:, None]) - np.maximum(starts[None, :], edges[:-1, None]),
                          0.0, None)
        return overlap / overlap.sum(axis=1, keepdims=True)

    rows, cols = weights(images.shape[1]), weights(images.shape[2])
    return np.einsum("ih,nhwc,jw->nijc", rows, images, cols)


class PixelFeatures:
    """``features(images)`` -> float64 [N, 8 * 8 * C]: the images area-averaged to 8 x 8."""

    name = "pixels_8x8"

    def __init__(self, image_shape: tuple):
        self.image_shape = tuple(int(d) for d in image_shape)

    @property
    def feature_dim(self) -> int:
        return SIZE * SIZE * self.image_shape[-1]

    def features(self, images, batch_size: int = 1024) -> np.ndarray:
        images = as_images(images)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"images have shape {images.shape[1:]}, this extractor expects {self.image_shape}")
        batch_size = as_int_positive(batch_size, "batch_size")
        return np.concatenate([area_downsample(images[i:i + batch_size]).reshape(-1, self.feature_dim)
                               for i in range(0, len(images), batch_size)])

    def save(self, directory: str) -> str:
        _io.makedirs(directory)
        record = {"name": self.name, "image_shape": list(self.image_shape), "size": SIZE}
        _io.write_bytes_atomic(os.path.join(directory, METADATA_FILENAME), json.dumps(record).encode())
        return directory

    @classmethod
    def load(cls, directory: str) -> "PixelFeatures":
        path = os.path.join(directory, METADATA_FILENAME)
        if not _io.exists(path):
            raise ValueError(f"no saved PixelFeatures in {directory} (missing {METADATA_FILENAME})")
        return cls(json.loads(_io.read_bytes(path))["image_shape"])

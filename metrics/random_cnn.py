"""A randomly initialised deep CNN as a feature extractor: structure without training.

Naeem et al. (2020, "Reliable Fidelity and Diversity Metrics for Generative Models", sec. 5)
report that embeddings of a randomly initialised network rank generators sensibly in domains
ImageNet features do not describe. Nothing here is trained on the data, so the extractor has
no favourites among real images (the train/held-out bias of a trained extractor cannot arise),
and its first layers respond to local structure: edges, blur, pixel-level artefacts such as the
checkerboard of transposed convolutions, which a classifier trained on a few classes ignores.

Features: four 3x3 conv blocks (32, 64, 128, 128 filters, ReLU, He-normal weights from a fixed
seed), each followed by 2x2 average pooling; the spatial mean and standard deviation of every
block's activations are concatenated (2 x 352 = 704-d), so the features see texture statistics
at four scales. The weights are saved with the reference, so evaluations reuse exactly them.
"""
from __future__ import annotations

import json
import os

import numpy as np

from tfx_gan.metrics import _io
from tfx_gan.metrics._validation import as_images, as_int_positive

FILTERS = (32, 64, 128, 128)
WEIGHTS_FILENAME = "random_cnn.weights.h5"
METADATA_FILENAME = "random_cnn.json"


def _build_model(image_shape: tuple, seed: int):
    import keras
    from keras import layers, ops

    initializer = keras.initializers.HeNormal(seed=seed)
    inputs = keras.Input(shape=image_shape, name="images")
    x, pooled = inputs, []
    for filters in FILTERS:
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=initializer,
                          bias_initializer="zeros")(x)
        pooled += [layers.GlobalAveragePooling2D()(x), layers.Lambda(lambda t: ops.std(t, axis=(1, 2)))(x)]
        if min(x.shape[1:3]) >= 4:
            x = layers.AveragePooling2D(2)(x)
    return keras.Model(inputs, layers.Concatenate(name="features")(pooled), name="random_cnn")


class RandomCNN:
    """``features(images)`` -> float64 [N, 704]; deterministic for a given image shape and seed."""

    name = "random_cnn"
    feature_dim = 2 * sum(FILTERS)

    def __init__(self, image_shape: tuple, seed: int = 0, model=None):
        self.image_shape = tuple(int(d) for d in image_shape)
        self.seed = int(seed)
        self.model = model if model is not None else _build_model(self.image_shape, self.seed)

    def features(self, images, batch_size: int = 256) -> np.ndarray:
        images = as_images(images)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"images have shape {images.shape[1:]}, this extractor expects {self.image_shape}")
        batch_size = as_int_positive(batch_size, "batch_size")
        return self.model.predict(images, batch_size=batch_size, verbose=0).astype(np.float64)

    def save(self, directory: str) -> str:
        """Writes the weights, then the metadata file (whose presence marks a complete save)."""
        _io.makedirs(directory)
        _io.write_through_local_file(os.path.join(directory, WEIGHTS_FILENAME), self.model.save_weights)
        record = {"name": self.name, "image_shape": list(self.image_shape), "seed": self.seed}
        _io.write_bytes_atomic(os.path.join(directory, METADATA_FILENAME), json.dumps(record).encode())
        return directory

    @classmethod
    def load(cls, directory: str) -> "RandomCNN":
        metadata_path = os.path.join(directory, METADATA_FILENAME)
        if not _io.exists(metadata_path):
            raise ValueError(f"no saved RandomCNN in {directory} (missing {METADATA_FILENAME})")
        record = json.loads(_io.read_bytes(metadata_path))
        extractor = cls(record["image_shape"], record["seed"])
        _io.read_through_local_file(os.path.join(directory, WEIGHTS_FILENAME), extractor.model.load_weights)
        return extractor

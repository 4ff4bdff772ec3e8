"""Generated training data: the Examples SyntheticExamplesGen writes from a pushed generator, and a
synthetic RGB dataset (coloured shapes) for tests of the models that need colour data."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.training.export import to_uint8
from tfx_gan.training.sampling import generate_images, sample_labels


def write_generated_examples(saved_model_dir: str, num_classes: int, per_class: int, seed: int, path: str) -> dict:
    """``per_class`` images of every class from a conditional generator's ``serving_default``,
    as Examples (PNG, label = the class asked for; source ``generated:<version dir>:<i>``) in one
    gzipped TFRecord file. Returns {num_examples, per_class, num_classes}."""
    if per_class < 1:
        raise ValueError(f"per_class must be positive, got {per_class}")
    count = per_class * num_classes
    images = to_uint8(generate_images(saved_model_dir, count, seed, num_classes)).numpy()
    write_tfrecords(images, sample_labels(count, num_classes), path,
                    source_prefix=f"generated:{os.path.basename(saved_model_dir.rstrip('/'))}")
    return {"num_examples": count, "per_class": per_class, "num_classes": num_classes}


SHAPE_CLASSES = ("disc", "square", "bar")
COLOURS = np.array([[230, 40, 40], [40, 200, 60], [50, 80, 230], [240, 200, 30]], np.float32)


def coloured_shapes(n: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, size, size, 3] images of one coloured shape (disc, square or horizontal bar) on a
    dark background, with shape-class labels [n]. Position, scale and colour vary."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.zeros((n, size, size, 3), np.float32)
    labels = rs.randint(0, len(SHAPE_CLASSES), size=n)
    for i in range(n):
        r = rs.uniform(0.18, 0.3) * size
        cy, cx = rs.uniform(r, size - r, size=2)
        if labels[i] == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
        elif labels[i] == 1:
            mask = (np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)
        else:
            mask = (np.abs(yy - cy) <= r * 0.3) & (np.abs(xx - cx) <= r * 1.1)
        colour = COLOURS[rs.randint(len(COLOURS))] * rs.uniform(0.8, 1.0)
        background = rs.uniform(10, 40, size=3)
        images[i] = background
        images[i][mask] = colour
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)

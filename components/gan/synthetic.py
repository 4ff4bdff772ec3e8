"""Arrays -> TFRecords of the project's Example format (tests, benchmarks, and the generated
examples SyntheticExamplesGen writes), and a synthetic RGB dataset (coloured shapes) for the
models that need colour data."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfx_gan.components.gan.example_format import make_example


def write_tfrecords(images: np.ndarray, labels: np.ndarray | None, path: str, num_shards: int = 1,
                    source_prefix: str = "array") -> list[str]:
    """Writes uint8 images [N,H,W] or [N,H,W,C] as PNG Examples (source ``<source_prefix>:<i>``)
    into gzipped TFRecord file(s); returns the file paths (``train_files`` for ``train_gan``)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")  # local folders and object stores alike
    files = [path if num_shards == 1 else f"{path}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(f, options="GZIP") for f in files]
    try:
        for i, image in enumerate(images):
            encoded = tf.io.encode_png(tf.constant(image, tf.uint8)).numpy()
            label = None if labels is None else int(labels[i])
            example = make_example(encoded, image.shape[0], image.shape[1], image.shape[2], f"{source_prefix}:{i}", label)
            writers[i % num_shards].write(example.SerializeToString())
    finally:
        for w in writers:
            w.close()
    return files


def write_generated_examples(saved_model_dir: str, num_classes: int, per_class: int, seed: int, path: str) -> dict:
    """``per_class`` images of every class from a conditional generator's ``serving_default``,
    as Examples (PNG, label = the class asked for; source ``generated:<version dir>:<i>``) in one
    gzipped TFRecord file. Returns {num_examples, per_class, num_classes}."""
    from tfx_gan.components.evaluation.evaluate import generate_images, sample_labels
    from tfx_gan.components.gan.export import to_uint8

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

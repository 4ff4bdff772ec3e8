"""The project's tf.train.Example format: the one place that writes it (``make_example``,
``write_tfrecords``) and reads it (``parse_example``, ``read_examples``, ``image_dataset``,
``load_arrays``).

Every ingested image becomes one tf.train.Example with these features:
  image     bytes   the encoded image (PNG or JPEG as found; arrays are PNG-encoded)
  height    int64
  width     int64
  channels  int64
  label     int64   optional: the class index, absent for unlabelled data
  source    bytes   where the image came from (file path, or npz path and index), for error messages

ExampleGen writes them as gzipped TFRecords (where: ``tfx_gan.common.layout.split_files``).
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

IMAGE_KEY = "image"
HEIGHT_KEY = "height"
WIDTH_KEY = "width"
CHANNELS_KEY = "channels"
LABEL_KEY = "label"
SOURCE_KEY = "source"


def make_example(encoded_image: bytes, height: int, width: int, channels: int, source: str,
                 label: int | None = None) -> tf.train.Example:
    def int_feature(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    def bytes_feature(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    features = {
        IMAGE_KEY: bytes_feature(encoded_image),
        HEIGHT_KEY: int_feature(height),
        WIDTH_KEY: int_feature(width),
        CHANNELS_KEY: int_feature(channels),
        SOURCE_KEY: bytes_feature(source.encode("utf-8")),
    }
    if label is not None:
        features[LABEL_KEY] = int_feature(label)
    return tf.train.Example(features=tf.train.Features(feature=features))


_FEATURE_SPEC = {
    IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def parse_example(record: bytes) -> tuple[bytes, int]:
    """(encoded image, label; -1 where it has none) of one serialized Example of this format."""
    feature = tf.train.Example.FromString(record).features.feature
    label = feature[LABEL_KEY].int64_list.value[0] if LABEL_KEY in feature else -1
    return feature[IMAGE_KEY].bytes_list.value[0], int(label)


def read_examples(files: Iterable[str]) -> Iterator[tuple[bytes, int]]:
    """(encoded image, label) of every Example in some gzipped TFRecord files, in file order."""
    for record in tf.data.TFRecordDataset(list(files), compression_type="GZIP"):
        yield parse_example(record.numpy())


def decode_image(encoded: tf.Tensor, image_shape: tuple[int, int, int]) -> tf.Tensor:
    """Decodes PNG/JPEG bytes to float32 in [-1, 1] with a static shape (the generator's range)."""
    image = tf.io.decode_image(encoded, channels=image_shape[2], expand_animations=False)
    image = tf.ensure_shape(image, image_shape)
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def image_dataset(files: Iterable[str], image_shape: tuple[int, int, int]) -> tf.data.Dataset:
    """(image, label) pairs, decoded; label is -1 where the example has none."""
    def parse(record):
        parsed = tf.io.parse_single_example(record, _FEATURE_SPEC)
        return decode_image(parsed[IMAGE_KEY], image_shape), tf.cast(parsed[LABEL_KEY], tf.int32)

    return tf.data.TFRecordDataset(list(files), compression_type="GZIP").map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)


def training_dataset(files: Iterable[str], image_shape: tuple[int, int, int], batch_size: int,
                     seed: int = 0) -> tf.data.Dataset:
    """Decodes the PNGs once, caches the decoded tensors, then shuffles and batches forever."""
    return (image_dataset(files, image_shape)
            .cache()
            .shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE))


def count_examples(files: Iterable[str]) -> int:
    """How many examples some gzipped TFRecord files hold (records are read, not decoded)."""
    return int(tf.data.TFRecordDataset(list(files), compression_type="GZIP").reduce(0, lambda n, _: n + 1))


def load_arrays(files: Iterable[str], image_shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """All images of some TFRecord files as (float32 [N,H,W,C] in [-1,1], int32 labels, -1 = none)."""
    images, labels = [], []
    for image_batch, label_batch in image_dataset(files, image_shape).batch(1024):
        images.append(image_batch.numpy())
        labels.append(label_batch.numpy())
    if not images:
        raise ValueError(f"no examples in {list(files)}")
    return np.concatenate(images), np.concatenate(labels)


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

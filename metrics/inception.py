"""InceptionV3 pool3 (2048-d) features, the extractor FID and KID were defined with.

Caveat: Keras's ImageNet InceptionV3 weights are not the 2015 TF graph that standard FID code
uses, so these values are not comparable with published FIDs, only with each other.

Weights are read only from a local file: an explicit path or Keras's cache
(``$KERAS_HOME/models``, ``~/.keras/models``, ``/tmp/.keras/models``). Nothing is downloaded.
"""
from __future__ import annotations

import json
import os

import numpy as np

from tfx_gan.metrics import _io
from tfx_gan.metrics._validation import as_images, as_int_positive

INPUT_SIZE = 299
FEATURE_DIM = 2048
# The file name keras.applications.InceptionV3 caches its include_top=False ImageNet weights under.
NOTOP_WEIGHTS_FILENAME = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
SAVED_FILENAME = "inception.json"


def keras_cache_dirs() -> list[str]:
    """Where Keras keeps downloaded weights, in the order it would look."""
    homes = [os.environ.get("KERAS_HOME"), os.path.join(os.path.expanduser("~"), ".keras"), "/tmp/.keras"]
    dirs = []
    for home in homes:
        if home and os.path.join(home, "models") not in dirs:
            dirs.append(os.path.join(home, "models"))
    return dirs


def find_inception_weights(weights_path: str | None = None, search_dirs: list[str] | None = None) -> str:
    """The weights file to load: ``weights_path`` if given, else the first Keras cache hit."""
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise ValueError(f"InceptionV3 weights file not found: {weights_path}")
        return weights_path
    candidates = [os.path.join(d, NOTOP_WEIGHTS_FILENAME) for d in (search_dirs or keras_cache_dirs())]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ValueError(
        "No InceptionV3 weights found (this machine cannot download them). Looked for "
        + ", ".join(candidates)
        + ". Pass weights_path=<file saved by keras.applications.InceptionV3(include_top=False, "
        "weights='imagenet')> or copy that file into one of those places."
    )


def preprocess_for_inception(images, image_size: int = INPUT_SIZE):
    """[N, H, W, 1 or 3] images in [-1, 1] -> float32 tf.Tensor [N, image_size, image_size, 3].

    Bilinear resize; grayscale repeated to 3 channels; the [-1, 1] range is kept because it is
    what Keras's InceptionV3 preprocessing produces.
    """
    import tensorflow as tf

    images = as_images(images)
    if images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {images.shape[-1]}")
    return _resize_to_rgb(tf.constant(images), image_size)


def _resize_to_rgb(images, image_size: int):
    import tensorflow as tf

    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    resized = tf.image.resize(images, [image_size, image_size], method="bilinear")
    return tf.clip_by_value(resized, -1.0, 1.0)  # bilinear cannot overshoot; guards rounding only


class InceptionFeatureExtractor:
    """``features(images)`` -> float64 [N, 2048] InceptionV3 average-pooled (pool3) activations."""

    name = "inception_v3_pool3"
    feature_dim = FEATURE_DIM

    def __init__(self, weights_path: str | None = None, search_dirs: list[str] | None = None):
        import keras
        import tensorflow as tf

        self.weights_path = find_inception_weights(weights_path, search_dirs)
        try:
            self.model = keras.applications.InceptionV3(
                include_top=False, pooling="avg", weights=self.weights_path, input_shape=(INPUT_SIZE, INPUT_SIZE, 3)
            )
        except Exception as e:  # Keras raises several types for a wrong or corrupt file
            raise ValueError(
                f"could not load InceptionV3 (include_top=False) weights from {self.weights_path}: {e}"
            ) from e

        @tf.function(reduce_retracing=True)
        def embed(batch):
            return self.model(_resize_to_rgb(batch, INPUT_SIZE), training=False)

        self._embed = embed

    def features(self, images, batch_size: int = 64) -> np.ndarray:
        images = as_images(images)
        if images.shape[-1] not in (1, 3):
            raise ValueError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {images.shape[-1]}")
        batch_size = as_int_positive(batch_size, "batch_size")
        out = [self._embed(images[i:i + batch_size]).numpy() for i in range(0, images.shape[0], batch_size)]
        return np.concatenate(out).astype(np.float64)

    def save(self, directory: str) -> str:
        """Records which weights file was used (the 90 MB model itself is not copied)."""
        _io.makedirs(directory)
        record = {"name": self.name, "weights_path": self.weights_path}
        _io.write_bytes_atomic(os.path.join(directory, SAVED_FILENAME), json.dumps(record, indent=2).encode())
        return directory

    @classmethod
    def load(cls, directory: str) -> "InceptionFeatureExtractor":
        record = json.loads(_io.read_bytes(os.path.join(directory, SAVED_FILENAME)))
        return cls(weights_path=record["weights_path"])

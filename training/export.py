"""The generator's serving contract: a SavedModel with two named signatures.

``serving_default``
    inputs:  ``latent``  float32 [N, latent_dim]  (and ``labels`` int32 [N] for conditional models)
    outputs: ``images``  float32 [N, H, W, C], values in [-1, 1] (the generator's tanh range)
    The generator sees ``truncation_psi * latent`` (1 unless the training config says otherwise,
    recorded in gan_metadata.json): callers always send z ~ N(0, I). A self-conditioned model
    (training/self_conditioning.py) is served like an unconditional one: it takes no labels
    and derives its cluster from the latent.

``generate_png``
    inputs:  ``num_images`` int32 scalar, ``seed`` int32 scalar
             (and ``labels`` int32 [num_images] or [1], broadcast, for conditional models)
    outputs: ``png_bytes`` string [num_images], PNG-encoded uint8 images (TF Serving's REST API
             base64-encodes outputs whose name ends in ``_bytes``)
    The latent batch is drawn with a stateless RNG from ``seed``: the same seed gives the same
    images every time, so a client without TensorFlow can ask for pictures reproducibly.

Both signatures are tf.functions with named TensorSpecs, so the input/output names are part of
the public API (Keras 3's ``model.export`` would name the input ``keras_tensor``).
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

from tfx_gan.common import layout
from tfx_gan.training.self_conditioning import Clusters
from tfx_gan.training import models  # noqa: F401  registers the custom layers for loading


def generator_inputs(latent, labels=None, truncation_psi: float = 1.0, clusters: Clusters | None = None):
    """What the Keras generator is called with to draw as the exported model does from z ~ N(0, I)
    (``latent``): a self-conditioned model's cluster comes from z (unless ``labels`` name the
    clusters), and the generator sees ``truncation_psi * z``."""
    if clusters is not None and labels is None:
        latent, labels = clusters.split_latent(latent)
    latent = latent * truncation_psi
    return latent if labels is None else [latent, labels]


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Maps generator output in [-1, 1] to uint8 pixels in [0, 255]."""
    images = tf.cast(images, tf.float32)
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


class GeneratorModule(tf.Module):
    """Wraps a Keras generator so that tf.saved_model.save exports stable signatures."""

    def __init__(self, generator, latent_dim: int, num_classes: int | None = None, truncation_psi: float = 1.0,
                 clusters: Clusters | None = None):
        super().__init__()
        self.generator = generator
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes) if num_classes else None  # the labels clients send
        self.truncation_psi = float(truncation_psi)
        self.clusters = clusters

    def _generate(self, latent, labels=None):
        images = self.generator(generator_inputs(latent, labels, self.truncation_psi, self.clusters), training=False)
        return tf.cast(images, tf.float32)

    def _encode_png(self, images):
        return tf.map_fn(tf.io.encode_png, to_uint8(images), fn_output_signature=tf.string)

    def _latent_from_seed(self, num_images, seed):
        tf.debugging.assert_positive(num_images, message="num_images must be positive")
        return tf.random.stateless_normal(
            tf.stack([num_images, self.latent_dim]), seed=tf.stack([seed, 0]), dtype=tf.float32
        )

    def signatures(self) -> dict:
        latent_spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="latent")
        count_spec = tf.TensorSpec([], tf.int32, name="num_images")
        seed_spec = tf.TensorSpec([], tf.int32, name="seed")
        if self.num_classes is None:

            @tf.function(input_signature=[latent_spec])
            def serve(latent):
                return {"images": self._generate(latent)}

            @tf.function(input_signature=[count_spec, seed_spec])
            def generate_png(num_images, seed):
                return {"png_bytes": self._encode_png(self._generate(self._latent_from_seed(num_images, seed)))}

        else:
            label_spec = tf.TensorSpec([None], tf.int32, name="labels")

            def check_labels(labels):
                """The labels, usable only after the range check ran (so a bad label gets this
                message, not an embedding lookup error)."""
                checks = [tf.debugging.assert_non_negative(labels, message="labels must be >= 0"),
                          tf.debugging.assert_less(labels, self.num_classes,
                                                   message=f"labels must be < {self.num_classes}")]
                with tf.control_dependencies(checks):
                    return tf.identity(labels)

            @tf.function(input_signature=[latent_spec, label_spec])
            def serve(latent, labels):
                return {"images": self._generate(latent, check_labels(labels))}

            @tf.function(input_signature=[count_spec, seed_spec, label_spec])
            def generate_png(num_images, seed, labels):
                labels = check_labels(labels)
                labels = tf.cond(
                    tf.equal(tf.size(labels), 1),
                    lambda: tf.fill([num_images], labels[0]),
                    lambda: labels,
                )
                tf.debugging.assert_equal(
                    tf.size(labels), num_images, message="labels must have length 1 or num_images"
                )
                latent = self._latent_from_seed(num_images, seed)
                return {"png_bytes": self._encode_png(self._generate(latent, labels))}

        return {"serving_default": serve, "generate_png": generate_png}


def export_generator(
    generator, export_dir: str, latent_dim: int, num_classes: int | None = None, extra_metadata: dict | None = None,
    truncation_psi: float = 1.0, clusters: Clusters | None = None,
) -> str:
    """Saves ``generator`` as a SavedModel with the signatures documented above (``num_classes``:
    the labels clients send; a self-conditioned generator gets its ``clusters`` instead, which are
    saved beside it for warm starts and the evaluator)."""
    module = GeneratorModule(generator, latent_dim, num_classes, truncation_psi, clusters)
    tf.saved_model.save(module, export_dir, signatures=module.signatures())
    metadata = {
        "latent_dim": int(latent_dim),
        "num_classes": int(num_classes) if num_classes else None,
        "image_shape": [int(d) for d in generator.output_shape[1:]],
        "output_range": [-1.0, 1.0],
        "truncation_psi": float(truncation_psi),
        "self_conditioning": clusters.k if clusters is not None else 0,
        "signatures": ["serving_default", "generate_png"],
    }
    if clusters is not None:
        clusters.save(layout.assets_extra_dir(export_dir))
    metadata.update(extra_metadata or {})
    path = layout.metadata_path(export_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(metadata, f, indent=2)
    return export_dir


def save_keras_models(generator, discriminator, saved_model_dir: str) -> None:
    """Stores Keras copies of G and D inside the serving SavedModel's assets.extra/ (which TF
    Serving ignores), so every pushed version carries what a warm start and the evaluator's
    discriminator accuracy need. Save float32 models: the copies are loaded on any device."""
    tf.io.gfile.makedirs(layout.keras_models_dir(saved_model_dir))
    generator.save(layout.keras_model_path(saved_model_dir, "generator"))
    discriminator.save(layout.keras_model_path(saved_model_dir, "discriminator"))


def load_keras_model(saved_model_dir: str, which: str):
    """The Keras generator or discriminator (``which``) saved by ``save_keras_models``. The
    discriminator returns logits; its inputs are ``images`` or ``[images, labels]``."""
    import keras

    return keras.saving.load_model(layout.keras_model_path(saved_model_dir, which), compile=False)


def load_clusters(saved_model_dir: str) -> Clusters | None:
    """A self-conditioned generator's clusters (saved by ``export_generator``), else None."""
    return Clusters.load(layout.assets_extra_dir(saved_model_dir))

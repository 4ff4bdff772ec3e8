"""Warm start: a new training run starts from the weights of the generator and discriminator
serving now (the Keras copies that ``save_trained_models`` puts in a serving dir)."""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf

from tfx_gan.common import layout
from tfx_gan.training.export import load_clusters, load_keras_model
from tfx_gan.training.step import GanTraining


def warm_start(trainer: GanTraining, warm_start_dir: str, log: Callable[[str], None],
               class_names: list[str] | None = None) -> bool:
    """Loads both nets' weights (and the EMA generator's, from the generator; a self-conditioned
    trainer's clusters) from ``warm_start_dir``.
    Returns False, with a warning, when a model is missing, makes images of another shape or
    classes (its gan_metadata.json; ``class_names``, the data's, when known), was not
    self-conditioned on as many clusters as this config asks for, or its weight shapes differ from
    the models this config builds; the trainer is then left as it was."""
    # Checked before the weights, so that the warning names the difference in words.
    metadata = layout.read_metadata(warm_start_dir)
    if metadata is not None:
        incomparable = layout.incomparable_reason(f"the generator in {warm_start_dir}", metadata,
                                                  trainer.image_shape, trainer.served_classes,
                                                  class_names if trainer.served_classes else None)
        if incomparable:
            log(f"WARNING: warm start skipped: {incomparable}; training from scratch")
            return False
    if trainer.config.self_conditioning:  # its generator's labels mean its clusters: they must come along
        clusters = load_clusters(warm_start_dir)
        expected = (trainer.config.self_conditioning, math.prod(trainer.image_shape))
        if clusters is None or clusters.centroids.shape != expected:
            found = "none" if clusters is None else f"{clusters.k} of {clusters.centroids.shape[1]} pixels"
            log(f"WARNING: warm start skipped: the generator in {warm_start_dir} is not self-conditioned on "
                f"{expected[0]} clusters of {expected[1]} pixels (its clusters: {found}); training from scratch")
            return False
    pairs = [("generator", trainer.generator), ("discriminator", trainer.discriminator)]
    loaded = {}
    for name, model in pairs:
        path = layout.keras_model_path(warm_start_dir, name)
        if not tf.io.gfile.exists(path):
            log(f"WARNING: warm start skipped: {path} does not exist; training from scratch")
            return False
        source = load_keras_model(warm_start_dir, name)
        src, dst = source.get_weights(), model.get_weights()
        mismatch = len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst))
        if mismatch:
            log(f"WARNING: warm start skipped: the {name} in {warm_start_dir} has weight shapes "
                f"{[a.shape for a in src][:6]}... but this config builds {[b.shape for b in dst][:6]}... "
                "(different architecture, latent_dim, spectral_norm or image shape); training from scratch")
            return False
        loaded[name] = src
    trainer.generator.set_weights(loaded["generator"])
    if trainer.config.self_conditioning:
        trainer.clusters = clusters
    trainer.discriminator.set_weights(loaded["discriminator"])
    if trainer.ema_generator is not None:
        trainer.ema_generator.set_weights(loaded["generator"])
    log(f"warm start: generator and discriminator weights loaded from {warm_start_dir}")
    return True

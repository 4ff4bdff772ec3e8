"""Sampling a trained generator through its serving SavedModel, as every client of it does: the
evaluator, SyntheticExamplesGen and the benchmarks get the same images from the same seed."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

_GENERATE_BATCH = 250


def sample_labels(num_images: int, num_classes: int) -> np.ndarray:
    """The classes a conditional generator is asked for: equal shares, 0, 1, ..., K-1, 0, 1, ..."""
    return (np.arange(num_images) % num_classes).astype(np.int32)


def samples_grid_size(num_classes: int | None, most: int = 100) -> tuple[int, int]:
    """(images, columns) of a samples grid. A conditional generator's samples cycle through the
    classes (``sample_labels``), so one column per class puts each class in its own column."""
    if not num_classes:
        return most, 10
    return num_classes * max(1, min(10, most // num_classes)), num_classes


def generate_images(saved_model_dir: str, num_images: int, seed: int, num_classes: int | None) -> np.ndarray:
    """``num_images`` samples in [-1, 1] from the SavedModel's ``serving_default`` signature.

    Latents come from a stateless RNG seeded with ``seed``; conditional models get the classes in
    equal shares (0, 1, ..., K-1, 0, 1, ...), so two generators see identical inputs.
    """
    model = tf.saved_model.load(saved_model_dir)
    serve = model.signatures["serving_default"]
    latent_dim = int(serve.structured_input_signature[1]["latent"].shape[-1])
    latent = tf.random.stateless_normal([num_images, latent_dim], seed=[seed, 0])
    out = []
    conditional = "labels" in serve.structured_input_signature[1]
    if conditional and not num_classes:
        raise ValueError(f"{saved_model_dir} is a conditional generator but the data has no labels")
    labels = sample_labels(num_images, num_classes) if conditional else None
    for start in range(0, num_images, _GENERATE_BATCH):
        batch = {"latent": latent[start:start + _GENERATE_BATCH]}
        if conditional:
            batch["labels"] = tf.constant(labels[start:start + _GENERATE_BATCH])
        out.append(serve(**batch)["images"].numpy())
    return np.concatenate(out).astype(np.float32)

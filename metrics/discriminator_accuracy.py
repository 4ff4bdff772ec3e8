"""Accuracy of a discriminator on held-out real images (correct when logit > 0) and generated
images (correct when logit < 0). Healthy GAN training keeps real accuracy around 0.8-0.95; a
value near 1 on both sides means D has won (G gets no gradient), near 0.5 that D learns nothing.
On held-out real data it also shows D overfitting the training set (train vs held-out gap).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class DiscriminatorAccuracy(NamedTuple):
    real_acc: float
    fake_acc: float
    mean: float  # (real_acc + fake_acc) / 2: balanced, whatever the two set sizes


def _as_logits(logits, name: str) -> np.ndarray:
    try:
        logits = np.asarray(logits, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric: {e}") from None
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"{name} must be [N] or [N, 1] logits, got shape {logits.shape}")
    if logits.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return logits


def discriminator_accuracy(real_logits, fake_logits) -> DiscriminatorAccuracy:
    """Share of real logits > 0, share of fake logits < 0 (a logit of exactly 0 counts as wrong), and their mean."""
    real_acc = float(np.mean(_as_logits(real_logits, "real_logits") > 0))
    fake_acc = float(np.mean(_as_logits(fake_logits, "fake_logits") < 0))
    return DiscriminatorAccuracy(real_acc, fake_acc, 0.5 * (real_acc + fake_acc))

"""Classifier score: the Inception Score computed with the domain classifier's probabilities.

    score = exp(E_x KL(p(y|x) || p(y))),   p(y) = E_x p(y|x)

It lies in [1, K]: K when every sample is classified confidently and the classes are used
equally, 1 when predictions carry no class information. It never looks at real data, so read
it next to FID/KID. The confidence helpers show which classes a generator actually produces.
"""
from __future__ import annotations

import numpy as np


def _as_probabilities(probabilities) -> np.ndarray:
    try:
        p = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"probabilities must be a numeric array: {e}") from None
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be [N, K] with N >= 1 and K >= 2, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    row_sums = p.sum(axis=1)
    if np.any(np.abs(row_sums - 1.0) > 1e-3):
        raise ValueError(
            f"each row of probabilities must sum to 1 (got sums in [{row_sums.min():.4g}, {row_sums.max():.4g}]); "
            "pass softmax outputs, not logits"
        )
    return p / row_sums[:, None]


def _check_threshold(threshold: float) -> float:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    return float(threshold)


def classifier_score(probabilities) -> float:
    """exp of the mean KL divergence between each p(y|x) row and their mean p(y)."""
    p = _as_probabilities(probabilities)
    marginal = p.mean(axis=0)
    # 0 * log(0 / q) = 0; where p > 0 the marginal is > 0 too, so the log is finite.
    ratio = np.divide(p, marginal, out=np.ones_like(p), where=p > 0)
    kl = np.sum(p * np.log(ratio), axis=1)
    return float(np.exp(kl.mean()))


def confident_fraction(probabilities, threshold: float = 0.9) -> float:
    """Share of samples whose top class probability is >= threshold."""
    p = _as_probabilities(probabilities)
    return float(np.mean(p.max(axis=1) >= _check_threshold(threshold)))


def confident_class_shares(probabilities, threshold: float = 0.9) -> np.ndarray:
    """[K] share of each class among the confidently classified samples (all zeros if there are none).

    A uniform vector means every class is produced; zeros mark dropped modes.
    """
    p = _as_probabilities(probabilities)
    confident = p.max(axis=1) >= _check_threshold(threshold)
    counts = np.bincount(p[confident].argmax(axis=1), minlength=p.shape[1]).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts

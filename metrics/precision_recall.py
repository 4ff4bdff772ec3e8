"""Improved precision and recall (Kynkäänniemi et al. 2019).

Each real feature gets a ball reaching its k-th nearest real neighbour (k=3); their union
estimates the real manifold. Precision = share of generated samples inside it (fidelity);
recall = share of real samples inside the generated manifold built the same way (diversity).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfx_gan.metrics._neighbours import count_balls_containing, kth_neighbour_radii_sq
from tfx_gan.metrics._validation import as_feature_matrix, as_int_positive, check_same_dim


class PrecisionRecall(NamedTuple):
    precision: float
    recall: float


def manifold_coverage(queries: np.ndarray, manifold: np.ndarray, k: int) -> float:
    """Share of ``queries`` inside the union of k-NN balls around the ``manifold`` points."""
    radii_sq = kth_neighbour_radii_sq(manifold, k)
    return float(np.mean(count_balls_containing(queries, manifold, radii_sq) > 0))


def precision_recall(real_features, fake_features, *, k: int = 3) -> PrecisionRecall:
    """Precision and recall of generated [M, d] features against real [N, d] features."""
    k = as_int_positive(k, "k")
    real = as_feature_matrix(real_features, "real_features", min_rows=k + 1)
    fake = as_feature_matrix(fake_features, "fake_features", min_rows=k + 1)
    check_same_dim(real, fake, "real_features", "fake_features")
    return PrecisionRecall(precision=manifold_coverage(fake, real, k), recall=manifold_coverage(real, fake, k))

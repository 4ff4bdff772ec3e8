"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

Unlike FID it has an unbiased estimator, so values from different N are comparable in
expectation (smaller N only adds variance). Still compare only values from the same extractor.
Only the mean is returned: the spread of the subset estimates is not an error bar (the subsets
overlap, and when N is at most the subset size they are the same images reshuffled). The
evaluator's error bars come from independent draws of generated images instead.
"""
from __future__ import annotations

import numpy as np

from tfx_gan.metrics._validation import as_feature_matrix, as_int_positive, check_same_dim


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two equal-sized samples (the U-statistic: diagonals excluded)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(
    feats1, feats2, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> float:
    """KID between two [N, d] feature sets from ``num_subsets`` subsets of min(subset_size, N1, N2)."""
    feats1 = as_feature_matrix(feats1, "feats1", min_rows=2)
    feats2 = as_feature_matrix(feats2, "feats2", min_rows=2)
    check_same_dim(feats1, feats2, "feats1", "feats2")
    num_subsets = as_int_positive(num_subsets, "num_subsets")
    subset_size = as_int_positive(subset_size, "subset_size", minimum=2)
    m = min(subset_size, feats1.shape[0], feats2.shape[0])
    rng = np.random.default_rng(seed)
    estimates = np.array([
        polynomial_mmd2_unbiased(
            feats1[rng.choice(feats1.shape[0], m, replace=False)],
            feats2[rng.choice(feats2.shape[0], m, replace=False)],
        )
        for _ in range(num_subsets)
    ])
    return float(estimates.mean())

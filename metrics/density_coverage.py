"""Density and coverage (Naeem et al. 2020), k=5.

Only real samples define balls (radius: distance to the k-th nearest real neighbour), so a few
generated outliers cannot inflate the manifold the way they do in recall.
density  = (1 / kM) sum_j #{real balls containing fake_j}   (~1 when fake matches real; can exceed 1)
coverage = share of real balls that contain at least one fake sample (in [0, 1])
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfx_gan.metrics._neighbours import count_balls_containing, kth_neighbour_radii_sq, nearest_centre
from tfx_gan.metrics._validation import as_feature_matrix, as_int_positive, check_same_dim


class DensityCoverage(NamedTuple):
    density: float
    coverage: float


def density_coverage(real_features, fake_features, *, k: int = 5) -> DensityCoverage:
    """Density and coverage of generated [M, d] features against real [N, d] features."""
    k = as_int_positive(k, "k")
    real = as_feature_matrix(real_features, "real_features", min_rows=k + 1)
    fake = as_feature_matrix(fake_features, "fake_features")
    check_same_dim(real, fake, "real_features", "fake_features")
    radii_sq = kth_neighbour_radii_sq(real, k)
    density = count_balls_containing(fake, real, radii_sq).sum() / (k * fake.shape[0])
    _, nearest_fake_sq = nearest_centre(real, fake)
    coverage = np.mean(nearest_fake_sq <= radii_sq)
    return DensityCoverage(density=float(density), coverage=float(coverage))

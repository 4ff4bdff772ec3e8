"""Novelty: are generated samples as far from the training images as unseen real images are?

A generator that returns its training images gets the floor's FID and perfect precision and
recall, since the training images are real. What gives it away is distance: its samples sit
on top of training images, while real images the model never saw do not. As in the data-copying
test of Meehan et al. (2020, a Mann-Whitney U test on distances to the training set), in the
extractor's feature space, with d(x) the distance from x to its nearest training image:

    novelty = 2 * P(d(fake) > d(held_out))        (ties count half)

over all pairs of a generated sample and a held-out real image. 1: as far from the training set
as unseen real data; 0: copies; up to 2 when samples are farther than real data (e.g. blurry).
A rank statistic, not a ratio of medians: distances of multi-class data are multi-modal (one
class's images lie closer together than another's), and a median then jumps between modes.
``near_copy_fraction`` is the share of samples closer to the training set than 99% of the
held-out real images are (about 0.01 for real data).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfx_gan.metrics._neighbours import nearest_centre
from tfx_gan.metrics._validation import as_feature_matrix, check_same_dim

NEAR_COPY_QUANTILE = 0.01


class Novelty(NamedTuple):
    novelty: float
    near_copy_fraction: float


def distance_to_train(features, train_features) -> np.ndarray:
    """Euclidean distance from each feature row to its nearest training feature row."""
    features = as_feature_matrix(features, "features")
    train = as_feature_matrix(train_features, "train_features")
    check_same_dim(features, train, "features", "train_features")
    return np.sqrt(nearest_centre(features, train)[1])


def novelty(fake_features, train_features, held_out_distances) -> Novelty:
    """Novelty of generated features against ``held_out_distances`` (``distance_to_train`` of
    real images that neither the generator nor the extractor trained on)."""
    held_out = np.sort(np.asarray(held_out_distances, dtype=np.float64))
    if held_out.ndim != 1 or held_out.size < 1 or not np.all(np.isfinite(held_out)):
        raise ValueError(f"held_out_distances must be a non-empty 1-D finite array, got shape {held_out.shape}")
    fake = distance_to_train(fake_features, train_features)
    # For each sample: held-out distances below it, plus half of those equal to it.
    below = np.searchsorted(held_out, fake, side="left")
    ties = np.searchsorted(held_out, fake, side="right") - below
    auc = float(np.mean((below + 0.5 * ties) / held_out.size))
    near = float(np.mean(fake < np.quantile(held_out, NEAR_COPY_QUANTILE)))
    return Novelty(novelty=2.0 * auc, near_copy_fraction=near)

"""Variety within each class: recall and coverage computed class by class.

Overall recall (precision_recall.py) asks whether the generated samples cover the real data as a
whole; a conditional generator that draws three prototypes of every class can still cover every
class's region of a feature space. Here each class's real reference images are compared only with
the samples drawn for that class: recall (k=3, Kynkaenniemi et al. 2019) is the share of a class's
real images inside the union of its samples' k-NN balls, coverage (k=5, Naeem et al. 2020) the
share of its real images whose own k-NN ball holds a sample. A class with too few reference images
or samples for its k (recall needs k+1 of each) gets NaN, and the summaries skip it.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfx_gan.metrics.density_coverage import density_coverage
from tfx_gan.metrics.precision_recall import manifold_coverage
from tfx_gan.metrics._validation import as_feature_matrix, check_same_dim

RECALL_K = 3
COVERAGE_K = 5


class ClassVariety(NamedTuple):
    recall: list[float]    # per class; NaN where the class has too few images
    coverage: list[float]

    def summary(self) -> dict:
        def low(values):
            finite = [v for v in values if np.isfinite(v)]
            return float(min(finite)) if finite else float("nan")

        return {"class_recall": self.recall, "class_coverage": self.coverage,
                "min_class_recall": low(self.recall), "min_class_coverage": low(self.coverage)}


def class_variety(real_features, real_labels, fake_features, fake_labels, num_classes: int) -> ClassVariety:
    """Per-class recall and coverage of generated [M, d] features (drawn for ``fake_labels``) against
    real [N, d] features of classes ``real_labels``."""
    real = as_feature_matrix(real_features, "real_features")
    fake = as_feature_matrix(fake_features, "fake_features")
    check_same_dim(real, fake, "real_features", "fake_features")
    real_labels, fake_labels = np.asarray(real_labels).reshape(-1), np.asarray(fake_labels).reshape(-1)
    if real_labels.shape[0] != real.shape[0] or fake_labels.shape[0] != fake.shape[0]:
        raise ValueError(f"one label per feature row is needed: {real_labels.shape[0]} labels for {real.shape[0]} "
                         f"real rows, {fake_labels.shape[0]} for {fake.shape[0]} generated rows")
    recall, coverage = [], []
    for k in range(int(num_classes)):
        real_k, fake_k = real[real_labels == k], fake[fake_labels == k]
        recall.append(manifold_coverage(real_k, fake_k, RECALL_K)
                      if min(len(real_k), len(fake_k)) > RECALL_K else float("nan"))
        coverage.append(density_coverage(real_k, fake_k, k=COVERAGE_K).coverage
                        if len(real_k) > COVERAGE_K and len(fake_k) else float("nan"))
    return ClassVariety(recall, coverage)

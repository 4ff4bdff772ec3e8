"""The metrics of one generator's samples, by name: what ``score_samples`` reports.

Each entry turns ``Samples`` (the generated images' features and class probabilities, and the
held-out real data's) into named figures; adding a metric is one registered function (as
StyleGAN2-ADA's ``metrics/metric_main.py`` registers its metrics). Entries marked
``needs_probabilities`` run only when the extractor classifies the data's own classes.
The discriminator's accuracy is not here: it judges the candidate's discriminator on real
held-out images, not a generator's samples (``evaluation/evaluate.py`` adds it).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tfx_gan.metrics.class_variety import class_variety
from tfx_gan.metrics.classifier_score import classifier_score, confident_class_shares, confident_fraction
from tfx_gan.metrics.density_coverage import density_coverage
from tfx_gan.metrics.fid import FeatureStats, frechet_distance_from_stats
from tfx_gan.metrics.kid import kernel_inception_distance
from tfx_gan.metrics.novelty import novelty
from tfx_gan.metrics.precision_recall import precision_recall
from tfx_gan.common.registry import Registry

CONFIDENCE_THRESHOLD = 0.9  # a sample counts as recognised when its top class probability reaches this


@dataclasses.dataclass(frozen=True)
class Samples:
    """One generator's samples seen through the extractor, and the real data they are compared with."""
    features: np.ndarray              # of the generated images
    probabilities: np.ndarray | None  # class probabilities of the generated images; None: no classes
    reference_stats: FeatureStats     # of the held-out real images
    reference_features: np.ndarray    # of a sample of the held-out real images (the k-NN metrics need points)
    train_features: np.ndarray        # of a sample of the training images (novelty)
    held_out_distances: np.ndarray    # held-out real images' distances to the training features (novelty's scale)
    seed: int                         # KID's subset draws
    labels: np.ndarray | None = None            # the class each generated image was drawn for; None: no classes
    reference_labels: np.ndarray | None = None  # the class of each reference_features row
    num_classes: int | None = None


METRICS = Registry("metric")


@METRICS.register("fid", "exact float64 Frechet distance to the held-out statistics")
def fid(s: Samples) -> dict:
    return {"fid": frechet_distance_from_stats(FeatureStats.from_features(s.features), s.reference_stats)}


@METRICS.register("kid", "unbiased MMD^2, kernel (x.y/d + 1)^3, mean over subsets")
def kid(s: Samples) -> dict:
    return {"kid": kernel_inception_distance(s.features, s.reference_features, seed=s.seed)}


@METRICS.register("precision_recall", "k-NN precision and recall (Kynkaanniemi et al. 2019, k=3)")
def precision_and_recall(s: Samples) -> dict:
    result = precision_recall(s.reference_features, s.features)
    return {"precision": result.precision, "recall": result.recall}


@METRICS.register("density_coverage", "density and coverage (Naeem et al. 2020, k=5)")
def density_and_coverage(s: Samples) -> dict:
    result = density_coverage(s.reference_features, s.features)
    return {"density": result.density, "coverage": result.coverage}


@METRICS.register("novelty", "2 P(a sample is farther from its nearest training image than a held-out real image "
                  "is): 1 as novel as unseen data, 0 copies; and the share of near-copies")
def novelty_and_copies(s: Samples) -> dict:
    return novelty(s.features, s.train_features, s.held_out_distances)._asdict()


@METRICS.register("classifier_score", "Inception-score analogue, the share of samples classified with "
                  f"p >= {CONFIDENCE_THRESHOLD} and each class's share of those", needs_probabilities=True)
def classifier_scores(s: Samples) -> dict:
    shares = confident_class_shares(s.probabilities, CONFIDENCE_THRESHOLD)
    return {"classifier_score": classifier_score(s.probabilities),
            "confident_fraction": confident_fraction(s.probabilities, CONFIDENCE_THRESHOLD),
            "confident_class_shares": [float(x) for x in shares],
            "min_confident_class_share": float(np.min(shares))}


@METRICS.register("class_variety", "recall and coverage within each class: the samples drawn for a class against "
                  "that class's real images", needs_labels=True)
def class_recall_and_coverage(s: Samples) -> dict:
    return class_variety(s.reference_features, s.reference_labels, s.features, s.labels, s.num_classes).summary()


def score(samples: Samples) -> dict:
    """Every registered metric that applies, merged into one {figure: value} dict."""
    scores: dict = {}
    has_labels = samples.labels is not None and samples.reference_labels is not None and bool(samples.num_classes)
    for metric in METRICS.entries():
        if metric.info.get("needs_probabilities") and samples.probabilities is None:
            continue
        if metric.info.get("needs_labels") and not has_labels:
            continue
        scores.update(metric.build(samples))
    return scores

"""Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for
Conditional Generative Models", arXiv:1905.10887): do generated images teach a classifier the
real classes?

A classifier of one fixed small architecture (the domain CNN's, class head only:
metrics/domain_classifier.py) is trained only on N class-balanced generated images
and tested on real held-out images; the same classifier trained on N real training images is
the reference. ``ratio`` = generated accuracy / real accuracy: 1 means the samples carry as much
about the classes as real images do; a generator that drops a class or mixes two scores low on
them even when its FID looks fine. Both classifiers are trained once per seed (the seed sets the
weights, the batch order and which real images are drawn); the spread over seeds is reported.

Not to be tuned on: the test images are the held-out split the classifier never sees in training
(the paper's reference implementation in PyTorch-StudioGAN once validated on its training set).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tfx_gan.metrics._validation import as_images, as_int_positive
from tfx_gan.metrics.domain_classifier import train_domain_classifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CasRun:
    """One seed: test accuracy of the classifier trained on generated and on real images, and the
    generated-trained classifier's predicted class for every test image."""

    seed: int
    generated: float
    real: float
    predictions: np.ndarray


def balanced_subset(labels: np.ndarray, num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of up to ``per_class`` random examples of each class (fewer where a class has fewer)."""
    chosen = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in range(num_classes)]
    return np.sort(np.concatenate(chosen))


def cluster_majority_classes(clusters: np.ndarray, labels: np.ndarray, num_clusters: int, num_classes: int) -> np.ndarray:
    """int [num_clusters]: the most common class among the real images of each cluster (-1 for a
    cluster no real image falls in). How a self-conditioned generator's clusters get class names."""
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    return np.array([np.bincount(labels[clusters == c], minlength=num_classes).argmax() if np.any(clusters == c) else -1
                     for c in range(num_clusters)], np.int64)


def classification_accuracy_score(generated, generated_labels, real, real_labels, test, test_labels,
                                  num_classes: int, *, num_images: int = 1000, seeds=(0, 1, 2),
                                  epochs: int = 5) -> tuple[dict, list[CasRun]]:
    """CAS of ``generated`` (with the classes they were drawn for) against ``real`` training images,
    both tested on ``test``. Each training set holds up to ``num_images`` images, class-balanced,
    the same number from each source. Returns (the ``cas`` summary of metrics.json, per-seed runs)."""
    generated, real, test = as_images(generated), as_images(real), as_images(test)
    num_classes = as_int_positive(num_classes, "num_classes", minimum=2)
    epochs = as_int_positive(epochs, "epochs")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: CAS needs at least one seed")
    labels = {name: np.asarray(y).astype(np.int64) for name, y in
              (("generated", generated_labels), ("real", real_labels), ("test", test_labels))}
    for name, images in (("generated", generated), ("real", real), ("test", test)):
        if labels[name].shape != (len(images),) or labels[name].min() < 0 or labels[name].max() >= num_classes:
            raise ValueError(f"{name} labels must be one class in 0..{num_classes - 1} per image")
    # the same count from both sources, per class: the smallest class of either caps it
    counts = {name: np.bincount(labels[name], minlength=num_classes) for name in ("generated", "real")}
    for name, count in counts.items():
        if count.min() == 0:
            raise ValueError(f"class {int(count.argmin())} has no {name} images: CAS needs every class in both "
                             "training sets")
    per_class = min(as_int_positive(num_images, "num_images") // num_classes,
                    *(int(count.min()) for count in counts.values()))
    if per_class < 1:
        raise ValueError(f"num_images {num_images} is fewer than one image per class ({num_classes} classes)")
    runs = []
    for seed in seeds:
        accuracy = {}
        predictions = None
        for stream, (name, images) in enumerate((("generated", generated), ("real", real))):
            # one random stream per source: the real subset of a seed is the same whatever was generated
            subset = balanced_subset(labels[name], num_classes, per_class, np.random.default_rng([seed, stream]))
            classifier = train_domain_classifier(images[subset], labels[name][subset], num_classes, epochs=epochs,
                                                 validation_fraction=0.0, seed=seed, rotation_task=False,
                                                 progress=False)
            predicted = classifier.predict_proba(test).argmax(axis=1)
            accuracy[name] = float(np.mean(predicted == labels["test"]))
            if name == "generated":
                predictions = predicted
        runs.append(CasRun(seed, accuracy["generated"], accuracy["real"], predictions))
        logger.info("CAS seed %d: trained on %d generated images %.3f, on %d real images %.3f (held-out accuracy)",
                    seed, per_class * num_classes, accuracy["generated"], per_class * num_classes, accuracy["real"])
    return summarize(runs, labels["test"], num_classes, per_class * num_classes), runs


def summarize(runs: list[CasRun], test_labels: np.ndarray, num_classes: int, n: int) -> dict:
    """The ``cas`` object: means, ranges over seeds, and per-class accuracy of the generated-trained
    classifier (mean over seeds) beside the share of the test set each class is."""
    generated = [r.generated for r in runs]
    real = [r.real for r in runs]
    ratios = [g / r if r > 0 else float("nan") for g, r in zip(generated, real)]
    per_class = [float(np.mean([np.mean(r.predictions[test_labels == k] == k) if np.any(test_labels == k)
                                else np.nan for r in runs])) for k in range(num_classes)]
    return {
        "generated": float(np.mean(generated)), "real": float(np.mean(real)),
        "ratio": float(np.mean(generated) / np.mean(real)) if np.mean(real) > 0 else float("nan"),
        "n": int(n), "num_test": int(len(test_labels)),
        "seeds": [r.seed for r in runs],
        "generated_range": [float(min(generated)), float(max(generated))],
        "real_range": [float(min(real)), float(max(real))],
        "ratio_range": [float(min(ratios)), float(max(ratios))],
        "per_seed": [{"seed": r.seed, "generated": r.generated, "real": r.real} for r in runs],
        "per_class_generated": per_class,
    }

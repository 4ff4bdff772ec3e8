"""Classification Accuracy Score and the TFMA EvalResult, fed inputs whose answers are known: real
digits standing in for "generated" ones score a ratio near 1, the same digits under the wrong
labels score near 0; TFMA's per-class figures equal the ones numpy counts."""
from __future__ import annotations

import numpy as np
import pytest

from tfx_gan.metrics.classification_accuracy import (balanced_subset, classification_accuracy_score,
                                                                  cluster_majority_classes)
from tfx_gan.metrics.discriminator_accuracy import discriminator_accuracy


@pytest.fixture(scope="module")
def digits():
    """The bundled real digits in [-1, 1], split into a "generator" half, a real-training half and a test set."""
    from tfx_gan.data.digits import digits_28x28

    images, labels = digits_28x28()
    images = (images[..., None].astype(np.float32) / 127.5 - 1.0)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    return {"generated": (images[:600], labels[:600]), "real": (images[600:1200], labels[600:1200]),
            "test": (images[1200:], labels[1200:])}


def test_balanced_subset_takes_the_same_count_of_every_class():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    chosen = balanced_subset(labels, 3, 5, np.random.default_rng(0))
    assert np.bincount(labels[chosen]).tolist() == [5, 3, 5] and len(set(chosen)) == len(chosen)


def test_a_self_conditioned_generators_clusters_are_named_by_their_majority_class():
    clusters = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    labels = np.array([3, 3, 1, 0, 0, 2, 2, 2, 1])
    assert cluster_majority_classes(clusters, labels, num_clusters=4, num_classes=4).tolist() == [3, 0, 2, -1]


def test_real_images_as_samples_score_a_ratio_near_one_and_mislabelled_ones_near_zero(digits):
    (gx, gy), (rx, ry), (tx, ty) = digits["generated"], digits["real"], digits["test"]
    cas, runs = classification_accuracy_score(gx, gy, rx, ry, tx, ty, 10, num_images=500, seeds=(0, 1), epochs=4)
    assert cas["n"] == 500 and cas["seeds"] == [0, 1] and cas["num_test"] == len(ty)
    assert cas["real"] > 0.85, cas  # the fixed small CNN learns 500 real digits
    assert 0.9 <= cas["ratio"] <= 1.1, cas  # samples exactly like real images: as good as real ones
    assert cas["generated_range"][0] <= cas["generated"] <= cas["generated_range"][1]
    assert len(cas["per_class_generated"]) == 10 and min(cas["per_class_generated"]) > 0.3
    assert [r.predictions.shape for r in runs] == [ty.shape, ty.shape]
    # a generator that draws 3s when asked for 2s (every label shifted): the classifier learns the wrong names
    wrong, _ = classification_accuracy_score(gx, (gy + 1) % 10, rx, ry, tx, ty, 10, num_images=500, seeds=(0,), epochs=4)
    assert wrong["generated"] < 0.1 and wrong["ratio"] < 0.1, wrong
    assert wrong["real"] == pytest.approx(cas["per_seed"][0]["real"], abs=0.02)  # same seed: same real subset


def test_a_class_the_generator_never_draws_is_named(digits):
    (gx, gy), (rx, ry), (tx, ty) = digits["generated"], digits["real"], digits["test"]
    keep = gy != 4
    with pytest.raises(ValueError, match="class 4 has no generated images"):
        classification_accuracy_score(gx[keep], gy[keep], rx, ry, tx, ty, 10, num_images=100, seeds=(0,), epochs=1)
    with pytest.raises(ValueError, match="one class in 0..9"):
        classification_accuracy_score(gx, gy + 10, rx, ry, tx, ty, 10, seeds=(0,), epochs=1)


def test_tfma_eval_result_holds_the_discriminator_and_cas_figures_per_class(tmp_path):
    import tensorflow_model_analysis as tfma

    from tfx_gan.evaluation.tfma_result import examples_table, per_class_metrics, write_eval_result

    rng = np.random.default_rng(1)
    # class 3 has samples but no held-out real image (a small split): its slice has D figures only
    real_labels, fake_labels = rng.integers(0, 3, 90), rng.integers(0, 4, 150)
    # class 2's samples are easy to tell apart (D sure they are fake); classes 0 and 1 fool D half the time
    real_logits = rng.normal(1.0, 1.0, 90)
    fake_logits = np.where(fake_labels >= 2, -5.0, rng.normal(0.0, 1.0, 150))
    cas_predictions = np.where(rng.uniform(size=90) < 0.8, real_labels, (real_labels + 1) % 3)
    write_eval_result(str(tmp_path), examples_table(real_labels, real_logits, fake_labels, fake_logits, cas_predictions))

    result = tfma.load_eval_result(str(tmp_path))  # TFMA's own reader, as for a TFX Evaluator's output
    assert {tuple(key) for key, _ in result.slicing_metrics} == {()} | {(("label", k),) for k in range(4)}
    table = per_class_metrics(str(tmp_path))
    overall = table["overall"]
    assert overall["discriminator"]["binary_accuracy"] == pytest.approx(
        discriminator_accuracy(real_logits, fake_logits).mean, abs=1e-9)  # weighted to the balanced accuracy
    assert overall["discriminator"]["example_count"] == 240
    assert overall["cas"]["binary_accuracy"] == pytest.approx(np.mean(cas_predictions == real_labels))
    for k in range(3):
        assert table[str(k)]["cas"]["binary_accuracy"] == pytest.approx(np.mean(cas_predictions[real_labels == k] == k))
        assert table[str(k)]["cas"]["weighted_example_count"] == np.sum(real_labels == k)
    assert table["2"]["discriminator"]["auc"] > 0.95 > table["0"]["discriminator"]["auc"]
    assert table["3"]["discriminator"]["example_count"] == np.sum(fake_labels == 3)

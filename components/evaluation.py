"""The GanEvaluator's library: sample a generator through its SavedModel signature, score the
samples against held-out real data, and decide whether it may replace the serving generator.

Every generator (candidate or the one serving now) is scored the same way: the same N, the same
latent seed, the same feature extractor (the one the reference artifact was built with, named by
``evaluation.extractor``) and the same reference images, so their FIDs compare. The metrics are
the entries of components/metrics/sample_metrics.py, plus the candidate discriminator's accuracy.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from components.metrics.discriminator_accuracy import discriminator_accuracy
from components.metrics.extractors import EXTRACTORS
from components.metrics.fid import FeatureStats
from components.metrics.sample_metrics import Samples, score
from components.options import option, parse_options

_GENERATE_BATCH = 250


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The ``evaluation:`` section of the pipeline config, read by ReferenceStatsGen and GanEvaluator."""
    num_samples: int = option(1000, minimum=2, help="generated images per evaluation, the same N for every model")
    seed: int = option(0, minimum=0, help="latent seed: candidate and baseline see the same latents")
    extractor: str = option("domain_cnn", choices=EXTRACTORS.names, help="the feature space of every metric")
    max_fid: float | None = option(None, minimum=0, exclusive=True, help="absolute bound on FID; null: none")
    max_fid_over_floor: float | None = option(4.0, minimum=0, exclusive=True,
                                              help="bound on FID / real-vs-real FID, scale-free; null: none")
    min_recall: float | None = option(None, minimum=0, maximum=1, help="lowest recall blessed; null: none")
    regression_tolerance: float = option(0.0, minimum=0, help="how much the FID may exceed the serving model's")
    # Epochs of the domain classifier (FID features, class confidences). 20: ~96% of held-out real
    # digits get confidence >= 0.9 (8 epochs: 90%, 40: 97%), so the recognisability test is fair.
    classifier_epochs: int = option(20, minimum=1)

    @classmethod
    def from_dict(cls, raw: dict | None) -> "EvaluationConfig":
        """Validated options from the YAML section or the components' JSON parameter."""
        return parse_options(cls, raw, "evaluation")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def sample_labels(num_images: int, num_classes: int) -> np.ndarray:
    """The classes a conditional generator is asked for: equal shares, 0, 1, ..., K-1, 0, 1, ..."""
    return (np.arange(num_images) % num_classes).astype(np.int32)


def generate_images(saved_model_dir: str, num_images: int, seed: int, num_classes: int | None) -> np.ndarray:
    """``num_images`` samples in [-1, 1] from the SavedModel's ``serving_default`` signature.

    Latents come from a stateless RNG seeded with ``seed``; conditional models get the classes in
    equal shares (0, 1, ..., K-1, 0, 1, ...), so two generators see identical inputs.
    """
    model = tf.saved_model.load(saved_model_dir)
    serve = model.signatures["serving_default"]
    latent_dim = int(serve.structured_input_signature[1]["latent"].shape[-1])
    latent = tf.random.stateless_normal([num_images, latent_dim], seed=[seed, 0])
    out = []
    conditional = "labels" in serve.structured_input_signature[1]
    if conditional and not num_classes:
        raise ValueError(f"{saved_model_dir} is a conditional generator but the data has no labels")
    labels = sample_labels(num_images, num_classes) if conditional else None
    for start in range(0, num_images, _GENERATE_BATCH):
        batch = {"latent": latent[start:start + _GENERATE_BATCH]}
        if conditional:
            batch["labels"] = tf.constant(labels[start:start + _GENERATE_BATCH])
        out.append(serve(**batch)["images"].numpy())
    return np.concatenate(out).astype(np.float32)


def decide_blessing(candidate: dict, baseline: dict | None, config: EvaluationConfig) -> tuple[bool, str]:
    """(blessed, one-sentence reason). The first model is judged on thresholds alone; later ones
    must also be no worse than the serving model (FID within the tolerance)."""
    fid = candidate["fid"]
    if not math.isfinite(fid):
        return False, f"not blessed: FID is {fid}"
    if config.max_fid is not None and fid > config.max_fid:
        return False, f"not blessed: FID {fid:.2f} > max_fid {config.max_fid:.2f}"
    if config.max_fid_over_floor is not None:
        bound = config.max_fid_over_floor * candidate["fid_floor"]
        if fid > bound:
            return False, (f"not blessed: FID {fid:.2f} > {config.max_fid_over_floor:g} x floor "
                           f"{candidate['fid_floor']:.2f} = {bound:.2f}")
    if config.min_recall is not None and candidate.get("recall", 1.0) < config.min_recall:
        return False, f"not blessed: recall {candidate['recall']:.3f} < min_recall {config.min_recall:.3f}"
    if baseline is not None:
        bound = baseline["fid"] + config.regression_tolerance
        if fid > bound:
            return False, (f"not blessed: FID {fid:.2f} > baseline {baseline['fid']:.2f} + tolerance "
                           f"{config.regression_tolerance:g}")
        return True, (f"blessed: FID {fid:.2f} <= baseline {baseline['fid']:.2f} + tolerance "
                      f"{config.regression_tolerance:g}, and within the thresholds")
    return True, f"blessed: FID {fid:.2f} is within the thresholds (no model is serving yet)"


def score_samples(fake_images: np.ndarray, extractor, reference: FeatureStats, reference_features: np.ndarray,
                  num_classes: int | None, seed: int) -> dict:
    """Every registered metric (components/metrics/sample_metrics.py) of one generator's samples
    against the held-out real data. The classifier-based ones apply when the data has classes and
    the extractor classifies them."""
    classifies = num_classes and hasattr(extractor, "predict_proba")
    return score(Samples(features=extractor.features(fake_images),
                         probabilities=extractor.predict_proba(fake_images) if classifies else None,
                         reference_stats=reference, reference_features=reference_features, seed=seed))


def evaluate_and_bless(*, reference_dir: str, candidate_dir: str, baseline: tuple[int, str] | None,
                       eval_files: list[str], image_shape: tuple[int, int, int], num_classes: int | None,
                       config: EvaluationConfig, out_dir: str, log=print) -> dict:
    """Scores the candidate serving SavedModel in ``candidate_dir`` (and ``baseline``, the
    (version, path) of the generator serving now, if any) against the reference artifact, and
    decides. Writes ``metrics.json`` and ``samples.png`` into ``out_dir``.
    """
    import json

    from components.gan.example_format import load_arrays
    from components.gan.samples import save_image_grid
    from components.gan.export import load_keras_model
    from components.reference import load_reference

    reference = load_reference(reference_dir)
    n, seed, floor = reference.info["num_samples"], reference.info["seed"], reference.info["fid_floor"]
    log(f"[evaluator] extractor {reference.info['extractor']}, N={n} generated vs "
        f"{reference.info['num_reference']} held-out; real-vs-real floor FID {floor:.4f}")

    def score_generator(saved_model_dir: str) -> tuple[dict, np.ndarray]:
        fake = generate_images(saved_model_dir, n, seed, num_classes)
        return score_samples(fake, reference.extractor, reference.stats, reference.features, num_classes, seed), fake

    candidate, fake = score_generator(candidate_dir)
    candidate["fid_floor"] = floor
    candidate["fid_over_floor"] = candidate["fid"] / floor if floor > 0 else float("inf")
    # The discriminator sees held-out real images it never trained on.
    eval_images, eval_labels = load_arrays(eval_files, image_shape)
    discriminator = load_keras_model(candidate_dir, "discriminator")
    if len(discriminator.inputs) == 2:  # a conditional D judges (image, label) pairs
        real_inputs, fake_inputs = [eval_images, eval_labels], [fake, sample_labels(n, num_classes)]
    else:
        real_inputs, fake_inputs = eval_images, fake
    d_acc = discriminator_accuracy(discriminator.predict(real_inputs, batch_size=256, verbose=0),
                                   discriminator.predict(fake_inputs, batch_size=256, verbose=0))
    candidate.update(d_real_accuracy=d_acc.real_acc, d_fake_accuracy=d_acc.fake_acc, d_accuracy=d_acc.mean)
    log(f"[evaluator] candidate FID {candidate['fid']:.4f} ({candidate['fid_over_floor']:.2f} x floor)")

    baseline_scores = None
    if baseline is not None:
        version, path = baseline
        baseline_scores = score_generator(path)[0]
        baseline_scores.update(version=version, path=path)
        log(f"[evaluator] serving baseline version {version}: FID {baseline_scores['fid']:.4f}")

    blessed, reason = decide_blessing(candidate, baseline_scores, config)
    log(f"[evaluator] {reason}")

    tf.io.gfile.makedirs(out_dir)
    samples_png = save_image_grid(fake[:100], os.path.join(out_dir, "samples.png"), columns=10,
                                  title=f"FID {candidate['fid']:.3f} (floor {floor:.3f}), N={n}, "
                                        f"{reference.info['extractor']}")
    report = {**reference.info, "candidate": candidate, "baseline": baseline_scores, "blessed": blessed,
              "reason": reason, "samples_png": samples_png}
    with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report

"""The GanEvaluator's library: sample a generator through its SavedModel signature, score the
samples against held-out real data, and decide whether it may replace the serving generator.

Every generator (candidate or the one serving now) is scored the same way: the same N, the same
latents, the same feature extractors (the ones the reference artifact was built with, named by
``evaluation.extractors``) and the same reference images, so their figures compare, and so do
the floors (evaluation/reference.py: real images no component saw, at the same N).

Error bars: a generator draws ``num_draws`` independent sets of N samples; every metric is
computed per set and reported as mean, standard deviation and the values. The blessing treats a
candidate as worse than the serving generator only when its mean FID exceeds the serving one's
by more than ``regression_tolerance`` plus ``regression_z`` standard errors of the difference.
"""
from __future__ import annotations

import json
import logging
import math
import os

import numpy as np
import tensorflow as tf

from tfx_gan.common.layout import incomparable_reason, read_metadata
from tfx_gan.evaluation.class_sheets import save_class_sheets
from tfx_gan.training.sampling import generate_images, sample_labels, samples_grid_size
from tfx_gan.data.example_format import load_arrays
from tfx_gan.metrics.discriminator_accuracy import discriminator_accuracy
from tfx_gan.metrics.extractors import EXTRACTORS
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.reference import load_reference
from tfx_gan.training.export import load_clusters, load_keras_model
from tfx_gan.metrics.classification_accuracy import cluster_majority_classes
from tfx_gan.metrics.classification_accuracy import classification_accuracy_score
from tfx_gan.evaluation import tfma_result
from tfx_gan.training.samples import save_image_grid

logger = logging.getLogger(__name__)

CLASS_SHEETS_FILENAME = "classes.png"


def summarise_draws(draws: list[dict]) -> dict:
    """{metric: value} per draw -> {metric: {"mean", "std", "values"}} (lists: their mean)."""
    summary = {}
    for key in draws[0]:
        values = [draw[key] for draw in draws]
        if isinstance(values[0], list):
            summary[key] = np.mean(values, axis=0).tolist()
        else:
            values = [float(v) for v in values]
            summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)), "values": values}
    return summary


def standard_error(summary: dict) -> float:
    return summary["std"] / math.sqrt(len(summary["values"]))


def decide_blessing(candidate: dict, baseline: dict | None, floor: dict, config: EvaluationConfig,
                    no_baseline: str = "no model is serving yet", cas: dict | None = None) -> tuple[bool, str]:
    """(blessed, one-sentence reason).

    ``candidate`` and ``baseline``: {extractor: summarise_draws(...)}; ``floor``: {extractor:
    {metric: value}}, the real-vs-real scores; ``cas``: the candidate's Classification Accuracy
    Score object, if any. The first model is judged on thresholds alone; later ones must also be
    no worse than the serving model beyond the noise. ``no_baseline``: why there is no baseline,
    for the reason.
    """
    primary = next(iter(candidate))

    def fid(scores, name):
        return scores[name]["fid"]["mean"]

    for name in candidate:
        if not math.isfinite(fid(candidate, name)):
            return False, f"not blessed: {name} FID is {fid(candidate, name)}"
    if config.max_fid is not None and fid(candidate, primary) > config.max_fid:
        return False, f"not blessed: {primary} FID {fid(candidate, primary):.4g} > max_fid {config.max_fid:g}"
    ratios = {name: fid(candidate, name) / floor[name]["fid"] if floor[name]["fid"] > 0 else math.inf
              for name in candidate}
    if config.max_fid_over_floor is not None:
        for name, ratio in ratios.items():
            if ratio > config.max_fid_over_floor:
                return False, (f"not blessed: {name} FID {fid(candidate, name):.4g} is {ratio:.2f}x the floor "
                               f"{floor[name]['fid']:.4g} (real images no component saw, same N) > "
                               f"max_fid_over_floor {config.max_fid_over_floor:g}")
    recall = candidate[primary].get("recall", {}).get("mean")
    if config.min_recall is not None and recall is not None and recall < config.min_recall:
        return False, f"not blessed: {primary} recall {recall:.3f} < min_recall {config.min_recall:.3f}"
    if config.min_class_recall is not None:
        for name in candidate:
            worst = _worst_class_recall(candidate[name].get("class_recall"), floor[name].get("class_recall"))
            if worst is not None and worst[1] < config.min_class_recall:
                klass, relative, value, real = worst
                return False, (f"not blessed: {name} recall within class {klass} is {value:.3f} against {real:.3f} for "
                               f"real images ({relative:.2f}x < min_class_recall {config.min_class_recall:g}): "
                               f"the samples of that class lack variety")
    novelty = candidate[primary].get("novelty", {}).get("mean")
    if config.min_novelty is not None and novelty is not None and novelty < config.min_novelty:
        return False, (f"not blessed: novelty {novelty:.3f} < min_novelty {config.min_novelty:g}: the samples sit "
                       f"closer to training images than unseen real images do (copies?)")
    shares, real_shares = candidate[primary].get("confident_class_shares"), floor[primary].get("confident_class_shares")
    if config.min_class_share is not None and shares is not None and real_shares is not None:
        relative = [share / real if real > 0 else 1.0 for share, real in zip(shares, real_shares)]
        worst = int(np.argmin(relative))
        if relative[worst] < config.min_class_share:
            return False, (f"not blessed: class {worst} is {shares[worst]:.1%} of the recognised samples against "
                           f"{real_shares[worst]:.1%} of real ones ({relative[worst]:.2f}x < min_class_share "
                           f"{config.min_class_share:g}): the generator (nearly) drops it")
    if config.min_cas_ratio is not None and cas and cas.get("ratio") is not None \
            and not cas["ratio"] >= config.min_cas_ratio:
        detail = (f"a classifier trained on its samples {cas['generated']:.3f} vs on real images {cas['real']:.3f}"
                  if "generated" in cas else cas["skipped"])
        return False, f"not blessed: CAS ratio {cas['ratio']:.3f} ({detail}) < min_cas_ratio {config.min_cas_ratio:g}"
    summary = ", ".join(f"{name} FID {fid(candidate, name):.4g} ({ratio:.2f}x floor)" for name, ratio in ratios.items())
    if baseline is None:
        return True, f"blessed: {summary}, within the thresholds ({no_baseline})"
    for name in candidate:
        difference = fid(candidate, name) - fid(baseline, name)
        noise = config.regression_z * math.hypot(standard_error(candidate[name]["fid"]),
                                                 standard_error(baseline[name]["fid"]))
        if difference > config.regression_tolerance + noise:
            return False, (f"not blessed: {name} FID {fid(candidate, name):.4g} > serving {fid(baseline, name):.4g} by "
                           f"{difference:.4g}, more than the noise {noise:.3g} ({config.regression_z:g} s.e.) + "
                           f"tolerance {config.regression_tolerance:g}")
    return True, (f"blessed: {summary}; no worse than the serving model beyond the noise "
                  f"({config.regression_z:g} s.e. + tolerance {config.regression_tolerance:g})")


def _worst_class_recall(recall, real_recall):
    """(class, recall / real recall, recall, real recall) of the class whose samples cover its real
    images least relative to real images; None without per-class figures."""
    if not recall or not real_recall:
        return None
    rows = [(k, value / real if real > 0 else 1.0, value, real) for k, (value, real) in enumerate(zip(recall, real_recall))
            if math.isfinite(value) and math.isfinite(real)]
    return min(rows, key=lambda row: row[1]) if rows else None


def headline_metrics(report: dict) -> dict:
    """The figures a run record and a pushed version's lineage keep: per feature space the FID
    (mean over draws) and its ratio to the floor; the primary space's precision, recall and
    novelty."""
    scores = report["candidate"]["scores"]
    primary = next(iter(scores))
    figures = {f"{name}_fid": s["fid"]["mean"] for name, s in scores.items()}
    figures.update({f"{name}_fid_over_floor": s["fid"]["mean"] / report["extractors"][name]["floor"]["fid"]
                    for name, s in scores.items()})
    figures.update({key: scores[primary][key]["mean"] for key in ("precision", "recall", "novelty")})
    return figures


def evaluate_and_bless(*, reference_dir: str, candidate_dir: str, baseline: tuple[int, str] | None,
                       eval_files: list[str], image_shape: tuple[int, int, int], num_classes: int | None,
                       config: EvaluationConfig, out_dir: str, train_files: list[str] | None = None,
                       log=logger.info) -> dict:
    """Scores the candidate serving SavedModel in ``candidate_dir`` (and ``baseline``, the
    (version, path) of the generator serving now, if any) against the reference artifact, and
    decides. Writes ``metrics.json``, ``samples.png`` and a TFMA EvalResult (the discriminator's
    and the CAS classifier's figures per class: evaluation/tfma_result.py) into
    ``out_dir``. ``train_files``: the real training images, for the CAS reference (none: no CAS).
    """

    reference = load_reference(reference_dir)
    scorer = _Scorer(reference, num_classes)
    primary = next(iter(scorer.floor))
    log(f"[evaluator] N={scorer.n} generated images x {scorer.draws} draws vs {reference.info['num_reference']} "
        f"held-out reference images; floors (held-out vs reference, N={scorer.n}): "
        + ", ".join(f"{name} FID {f['fid']:.4g}" for name, f in scorer.floor.items()))

    scores, fake = scorer.score(candidate_dir)
    candidate = {"scores": scores, "fid": scores[primary]["fid"]["mean"], "fid_floor": scorer.floor[primary]["fid"]}
    candidate["fid_over_floor"] = candidate["fid"] / candidate["fid_floor"] if candidate["fid_floor"] > 0 else math.inf
    held_out = load_arrays(eval_files, image_shape)
    d_figures, d_logits = _discriminator_on_held_out(candidate_dir, fake, held_out, num_classes)
    candidate.update(d_figures)
    log(f"[evaluator] candidate: {scorer.headline(scores)} (mean +- s.e. over {scorer.draws} draws)")
    train = load_arrays(train_files, image_shape) if train_files else None
    cas, cas_predictions, fake_labels = _classification_accuracy(candidate_dir, fake, held_out, train, num_classes,
                                                                 config, log)

    candidate_metadata = read_metadata(candidate_dir) or {}
    if train is not None:
        candidate["nearest_training"] = save_class_sheets(
            fake, fake_labels, train[0], train[1], held_out[0], held_out[1], candidate_metadata.get("class_names")
            if fake_labels is not None else None, os.path.join(out_dir, CLASS_SHEETS_FILENAME))
        log(f"[evaluator] {CLASS_SHEETS_FILENAME}: samples per class beside their nearest training image (pixel "
            f"distance / real held-out images' median: min {candidate['nearest_training']['min']:.2f}, median "
            f"{candidate['nearest_training']['median']:.2f}) and real held-out images")
    baseline, incomparable = _comparable_baseline(baseline, candidate_metadata, image_shape, log)
    baseline_record = None
    if baseline is not None:
        version, path = baseline
        baseline_scores = scorer.score(path)[0]
        baseline_record = {"scores": baseline_scores, "fid": baseline_scores[primary]["fid"]["mean"],
                           "version": version, "path": path}
        log(f"[evaluator] serving baseline version {version}: {scorer.headline(baseline_scores)}")

    blessed, reason = decide_blessing(scores, baseline_record and baseline_record["scores"], scorer.floor, config,
                                      no_baseline=incomparable or "no model is serving yet", cas=cas)
    if incomparable and not blessed:
        reason += f" ({incomparable})"
    log(f"[evaluator] {reason}")

    report = {**reference.info, "candidate": candidate, "cas": cas, "baseline": baseline_record,
              "no_comparable_baseline": incomparable, "blessed": blessed, "reason": reason}
    _write_tfma_result(out_dir, held_out[1], d_logits, fake_labels, cas_predictions, num_classes, log)
    return _write_report(report, fake, candidate_metadata.get("num_classes"), primary, out_dir)


class _Scorer:
    """Scores a generator's SavedModel against the reference artifact: N images x draws, per extractor."""

    def __init__(self, reference, num_classes: int | None):
        self.reference, self.num_classes = reference, num_classes
        self.n, self.draws, self.seed = (reference.info[k] for k in ("num_samples", "num_draws", "seed"))
        self.floor = {name: ref.floor for name, ref in reference.extractors.items()}

    def score(self, saved_model_dir: str) -> tuple[dict, np.ndarray]:
        n = self.n
        fake = generate_images(saved_model_dir, n * self.draws, self.seed, self.num_classes)
        # A conditional generator's samples have the classes they were drawn for (the per-class metrics).
        labels = (sample_labels(len(fake), self.num_classes)
                  if self.num_classes and (read_metadata(saved_model_dir) or {}).get("num_classes") else None)
        scores = {name: summarise_draws([ref.score(fake[i * n:(i + 1) * n], self.num_classes, self.seed + i,
                                                   labels=None if labels is None else labels[i * n:(i + 1) * n])
                                         for i in range(self.draws)])
                  for name, ref in self.reference.extractors.items()}
        return scores, fake

    def headline(self, scores: dict) -> str:
        return ", ".join(f"{name} FID {s['fid']['mean']:.4g} +- {standard_error(s['fid']):.2g} "
                         f"({s['fid']['mean'] / self.floor[name]['fid']:.2f}x floor)" for name, s in scores.items())


def _discriminator_on_held_out(candidate_dir, fake, held_out, num_classes) -> tuple[dict, tuple]:
    """The candidate's discriminator on held-out real images it never trained on and on its samples:
    (figures for metrics.json, (real logits, generated logits))."""

    eval_images, eval_labels = held_out
    discriminator = load_keras_model(candidate_dir, "discriminator")
    clusters = load_clusters(candidate_dir)
    if clusters is not None:  # a self-conditioned D judges (image, its nearest cluster) pairs
        real_inputs = [eval_images, clusters.assign(eval_images).numpy()]
        fake_inputs = [fake, clusters.assign(fake).numpy()]
    elif len(discriminator.inputs) == 2:  # a conditional D judges (image, label) pairs
        real_inputs, fake_inputs = [eval_images, eval_labels], [fake, sample_labels(len(fake), num_classes)]
    else:
        real_inputs, fake_inputs = eval_images, fake
    logits = (discriminator.predict(real_inputs, batch_size=256, verbose=0),
              discriminator.predict(fake_inputs, batch_size=256, verbose=0))
    d_acc = discriminator_accuracy(*logits)
    return {"d_real_accuracy": d_acc.real_acc, "d_fake_accuracy": d_acc.fake_acc, "d_accuracy": d_acc.mean}, logits


def _sample_classifier(candidate_dir, num_classes, train):
    """(a function from a batch of the candidate's samples, as ``generate_images`` draws them, to the
    class of each, and whether such batches are class-balanced), or (None, False) for an
    unconditional generator. A conditional generator's samples have the classes it was asked for
    (``sample_labels``: they cycle through them); a self-conditioned one's get the majority class
    of the real training images in their nearest cluster (-1 for a cluster no real image is in)."""

    clusters = load_clusters(candidate_dir)
    if clusters is not None:
        majority = cluster_majority_classes(clusters.assign(train[0]).numpy(), train[1], clusters.k, num_classes)
        return (lambda images: majority[clusters.assign(images).numpy()]), False
    if (read_metadata(candidate_dir) or {}).get("num_classes"):
        return (lambda images: sample_labels(len(images), num_classes)), True
    return None, False


def _classification_accuracy(candidate_dir, fake, held_out, train, num_classes, config, log):
    """(the ``cas`` object of metrics.json, the CAS classifier's prediction per held-out image or None,
    the class of each of ``fake`` or None). ``train``: the real training (images, labels), or None.
    The CAS samples are drawn apart from ``fake`` with their own seed, class-balanced."""

    if not num_classes or config.cas_seeds == 0 or train is None:
        why = ("the data has no labels" if not num_classes else
               "evaluation.cas_seeds is 0" if config.cas_seeds == 0 else "no training split was given")
        fake_labels = None
        if num_classes and train is not None:
            classes_of, _ = _sample_classifier(candidate_dir, num_classes, train)
            fake_labels = None if classes_of is None else classes_of(fake)
        return {"skipped": f"no CAS: {why}"}, None, fake_labels
    classes_of, balanced = _sample_classifier(candidate_dir, num_classes, train)
    if classes_of is None:
        return {"skipped": "no CAS: an unconditional generator's samples have no classes"}, None, None
    fake_classes = classes_of(fake)
    # Unbalanced (self-conditioned) samples: draw 3x as many and keep up to N / K per class.
    count = config.cas_num_images * (1 if balanced else 3)
    generated = generate_images(candidate_dir, count, config.seed + 7919, num_classes)
    generated_classes = classes_of(generated)
    keep = generated_classes >= 0
    try:
        cas, runs = classification_accuracy_score(
            generated[keep], generated_classes[keep], train[0], train[1], held_out[0], held_out[1], num_classes,
            num_images=config.cas_num_images, seeds=range(config.cas_seeds), epochs=config.cas_epochs)
    except ValueError as exc:  # a class the generator never draws: nothing to learn it from
        log(f"[evaluator] CAS ratio 0: {exc}")
        return {"skipped": f"CAS ratio 0: {exc}", "ratio": 0.0}, None, fake_classes
    log(f"[evaluator] CAS: a classifier trained on {cas['n']} generated images scores {cas['generated']:.3f} on "
        f"{cas['num_test']} held-out real images, one trained on {cas['n']} real images {cas['real']:.3f}: ratio "
        f"{cas['ratio']:.3f} (range {cas['ratio_range'][0]:.3f}-{cas['ratio_range'][1]:.3f} over "
        f"{len(cas['seeds'])} seeds)")
    return cas, runs[0].predictions, fake_classes


def _write_tfma_result(out_dir, real_labels, d_logits, fake_labels, cas_predictions, num_classes, log) -> None:

    fake_labels = fake_labels if fake_labels is not None else np.full(len(d_logits[1]), -1)
    table = tfma_result.examples_table(real_labels, d_logits[0], fake_labels, d_logits[1], cas_predictions)
    tfma_result.write_eval_result(out_dir, table, sliced=bool(num_classes))
    log(f"[evaluator] TFMA EvalResult (discriminator{' and CAS' if cas_predictions is not None else ''}, "
        f"{'per class' if num_classes else 'overall'}) in {out_dir}")


def _comparable_baseline(baseline, candidate_metadata, image_shape, log):
    """(baseline or None, why not or None): a generator of other images or classes (another dataset's
    push directory) cannot be scored on this data, so the evaluation goes on without it and says so."""
    if baseline is None:
        return None, None
    incomparable = incomparable_reason(f"serving version {baseline[0]}", read_metadata(baseline[1]),
                                       candidate_metadata.get("image_shape") or image_shape,
                                       candidate_metadata.get("num_classes"), candidate_metadata.get("class_names"))
    if not incomparable:
        return baseline, None
    incomparable = f"no comparable baseline: {incomparable}"
    log(f"[evaluator] {incomparable}: evaluating without a baseline")
    return None, incomparable


def _write_report(report: dict, fake: np.ndarray, model_classes: int | None, primary: str, out_dir: str) -> dict:
    """samples.png (a titled grid, one column per class) and metrics.json in ``out_dir``."""
    import json

    tf.io.gfile.makedirs(out_dir)
    candidate = report["candidate"]
    count, columns = samples_grid_size(model_classes)
    title = f"{primary} FID {candidate['fid']:.4g} ({candidate['fid_over_floor']:.2f}x floor), N={report['num_samples']}"
    report["samples_png"] = save_image_grid(
        fake[:count], os.path.join(out_dir, "samples.png"), columns=columns,
        title=title + (f"; columns: classes 0-{model_classes - 1}" if model_classes else ""))
    with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report

"""Quality of GAN training on a config's dataset, scored with exactly the evaluator's code.

    python -m benchmarks.train_quality [--config pipeline/configs/digits.yaml] [--set training.key=value ...]
                                       [--out outputs/benchmarks/train_quality.json] [--truncation_sweep 1,0.8,0.6]

1. The newest span of the config's ``data.input_base`` (a bundled dataset is written first, as
   ./gan run does) is read by the pipeline's ingestion (``tfx_gan.data.ingest.scan``) and split 80/20 at
   random (fixed seed; the bundled digits: 1,438 train, 359 held out); the train images are
   written as gzipped TFRecords of the project's Example format so ``train_gan`` reads them
   through its real input path.
2. ``train_gan`` trains with the ``training`` section of --config, the pipeline's default config
   unless told otherwise (``--set section.key=value`` overrides one value, as for ./gan run).
3. The held-out images are cut like the pipeline cuts them (evaluation/reference.py: stratified
   by class) into a reference half R and a floor half F, and every extractor of the config's
   ``evaluation.extractors`` is built on the train split (the domain CNN trained for
   ``evaluation.classifier_epochs``, cached in --extractor_cache per dataset and split), as
   ReferenceStatsGen builds them.
4. With N = |F| and ``evaluation.num_draws`` independent draws of N generated images, in every
   feature space (the evaluator's own scoring, ``ExtractorReference.score``):
     fid            FID(N generated, R): mean and range over the draws
     floor          FID(F, R): real images no component saw, same N -- what a perfect generator gets
     ratio          fid / floor
     confident      fraction of generated images the domain CNN assigns a class with p >= 0.9,
                    and each class's share of those
     precision/recall, novelty  next to the same figures for F (real)
     train_seconds  wall time of train_gan
   (generated images are G(truncation_psi * z), as the exported model draws them; with
   ``--truncation_sweep 1,0.8,...`` the same trained generator is also scored at each psi).
   and checks them against the goals for the kind of run (GOALS: a conditional model, an
   unconditional one on grayscale images, a colour one).
Writes the JSON to --out and the generated sample grid and loss curve next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

SPLIT_SEED = 0
SWEEP_FIGURES = ("precision", "recall", "confident_fraction", "min_class_share")
# The goals per kind of run: (metric, bound, "min" or "max"); train_seconds is wall time.
GOALS = {
    "conditional": [("fid_ratio", 1.5, "max"), ("confident_fraction", 0.9, "min"), ("min_class_share", 0.05, "min"),
                    ("precision", 0.85, "min"), ("recall", 0.80, "min"), ("train_seconds", 600, "max")],
    "unconditional": [("fid_ratio", 2.0, "max"), ("confident_fraction", 0.85, "min"), ("recall", 0.75, "min"),
                      ("train_seconds", 600, "max")],
    "colour": [("fid_ratio", 3.0, "max"), ("train_seconds", 900, "max")],
}


def load_dataset(pipeline_config) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 images [N, H, W, C] and int labels [N] (None when unlabelled) of the newest span of
    ``data.input_base``, read as the pipeline's ImageExampleGen reads it."""
    import tensorflow as tf

    from tfx_gan.data.bundled import bundled_dataset_at, write_span
    from tfx_gan.data.ingest import scan
    from tfx_gan.pipeline.config import check_input_data

    bundled = bundled_dataset_at(pipeline_config.data.input_base)
    if bundled:  # written on first use, as ./gan run does
        write_span(bundled, pipeline_config.data.input_base)
    # The bundled spans name each file by its index in the dataset, so this order (and the split
    # below) is the dataset's own, whatever the class folders.
    records = sorted(scan(check_input_data(pipeline_config)), key=lambda r: (os.path.basename(r.source), r.source))
    images = np.stack([tf.io.decode_image(open(r.source, "rb").read() if r.encoded is None else r.encoded,
                                          channels=r.shape[2], expand_animations=False).numpy() for r in records])
    labels = None if records[0].label is None else np.array([r.label for r in records], np.int64)
    return images, labels


def split(images, labels, seed: int = SPLIT_SEED, held_out_fraction: float = 0.2):
    """(train images, labels), (held-out images, labels): a random 80/20 split with a fixed seed."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_held = int(round(held_out_fraction * len(images)))
    held, train = order[:n_held], order[n_held:]
    pick = (lambda idx: None) if labels is None else (lambda idx: labels[idx])
    return (images[train], pick(train)), (images[held], pick(held))


def cluster_purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """The share of images whose label is their cluster's most common label (1: every cluster
    holds one class; a self-conditioned model's clusters against the labels it never saw)."""
    return float(sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters)) / len(labels))


def to_float(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8.astype(np.float32) / 127.5 - 1.0


def goals_for(config, image_shape) -> str:
    if image_shape[-1] == 3:
        return "colour"
    return "conditional" if config.serves_labels else "unconditional"


def check_goals(report: dict, kind: str) -> dict:
    return {f"{metric} {'<=' if how == 'max' else '>='} {bound}":
            bool(report[metric] <= bound if how == "max" else report[metric] >= bound)
            for metric, bound, how in GOALS[kind]}


def build_references(evaluation, train, held, num_classes, cache_dir, fingerprint):
    """{extractor name: ExtractorReference} and N: the pipeline's stratified R/F cut of the held-out
    images, every extractor built on the train split."""
    from tfx_gan.metrics.extractors import EXTRACTORS
    from tfx_gan.evaluation.reference import build_extractor_reference, stratified_halves

    (train_images, train_labels), (held_images, held_labels) = train, held
    held_float, train_float = to_float(held_images), to_float(train_images)
    in_floor = stratified_halves([str(i) for i in range(len(held_float))],
                                 np.zeros(len(held_float)) if held_labels is None else held_labels)
    n = int(in_floor.sum())
    references = {}
    for name in evaluation.extractors:
        extractor = EXTRACTORS.get(name)(cache_dir=cache_dir, data_fingerprint=fingerprint,
                                         train_images=train_float, train_labels=train_labels,
                                         num_classes=num_classes, epochs=evaluation.classifier_epochs)
        references[name] = build_extractor_reference(
            extractor, train_images=train_float, reference_images=held_float[~in_floor],
            floor_images=held_float[in_floor], num_samples=n, num_classes=num_classes, seed=evaluation.seed)
    return references, n


def generate(generator, n: int, latent_dim: int, seed: int, labels=None, truncation_psi: float = 1.0,
             clusters=None, batch: int = 256) -> np.ndarray:
    """n images of ``generator`` as the exported model draws them: G(truncation_psi * z), a
    self-conditioned generator's ``clusters`` drawn from z (tfx_gan.training.export.generator_inputs)."""
    import tensorflow as tf

    from tfx_gan.training.export import generator_inputs

    latent = np.random.RandomState(seed).normal(size=(n, latent_dim)).astype(np.float32)
    out = []
    for i in range(0, n, batch):
        batch_labels = None if labels is None else tf.constant(labels[i:i + batch], tf.int32)
        inputs = generator_inputs(tf.constant(latent[i:i + batch]), batch_labels, truncation_psi, clusters)
        out.append(tf.cast(generator(inputs, training=False), tf.float32).numpy())
    return np.concatenate(out)


def quality_report(generated: np.ndarray, references: dict, num_draws: int, num_classes: int | None) -> dict:
    """The evaluator's scoring of ``num_draws`` equal draws of ``generated`` in every feature space
    (``references``: {extractor: ExtractorReference}), next to each floor."""
    from tfx_gan.evaluation.evaluate import summarise_draws

    n = len(generated) // num_draws
    report = {"n": n, "num_draws": num_draws, "extractors": {}}
    for name, ref in references.items():
        scores = summarise_draws([ref.score(generated[i * n:(i + 1) * n], num_classes, seed=i)
                                  for i in range(num_draws)])
        fid = scores["fid"]
        report["extractors"][name] = {"scores": scores, "floor": ref.floor,
                                      "fid_ratio": fid["mean"] / ref.floor["fid"],
                                      "fid_ratio_range": [min(fid["values"]) / ref.floor["fid"],
                                                          max(fid["values"]) / ref.floor["fid"]]}
    primary = report["extractors"][next(iter(references))]
    scores = primary["scores"]
    report.update(fid_ratio=primary["fid_ratio"], precision=scores["precision"]["mean"],
                  recall=scores["recall"]["mean"], novelty=scores["novelty"]["mean"])
    if "confident_fraction" in scores:  # labelled data
        report.update(confident_fraction=scores["confident_fraction"]["mean"],
                      class_shares_of_confident=scores["confident_class_shares"],
                      min_class_share=min(scores["confident_class_shares"]))
    return report


def score_trained(result, config, evaluation, references, n, num_classes, sweep, train_images, train_labels,
                  generated_npy):
    """The trained generator scored as the evaluator scores it (plus the live generator without EMA,
    the truncation sweep, cluster purity and label accuracy where they apply). Returns
    (generated images, report)."""
    total = n * evaluation.num_draws
    served_classes = config.served_classes(num_classes)
    gen_labels = (np.arange(total) % served_classes).astype(np.int32) if served_classes else None
    generated = generate(result.generator, total, config.latent_dim, seed=1, labels=gen_labels,
                         truncation_psi=config.truncation_psi, clusters=result.clusters)
    np.save(generated_npy, generated)  # to re-score without retraining
    report = quality_report(generated, references, evaluation.num_draws, num_classes)
    if result.clusters is not None and train_labels is not None:
        report["cluster_purity"] = cluster_purity(result.clusters.assign(to_float(train_images)).numpy(),
                                                  train_labels)
    if config.ema_decay > 0 and result.live_generator is not None:  # what the EMA buys
        live = generate(result.live_generator, total, config.latent_dim, seed=1, labels=gen_labels,
                        truncation_psi=config.truncation_psi, clusters=result.clusters)
        live_report = quality_report(live, references, evaluation.num_draws, num_classes)
        report["live_generator"] = {k: live_report[k] for k in ("fid_ratio", "confident_fraction",
                                                                 "min_class_share", "precision", "recall")
                                    if k in live_report}
    report["truncation_sweep"] = []
    for psi in sweep:
        scored = quality_report(generate(result.generator, total, config.latent_dim, seed=1, labels=gen_labels,
                                         truncation_psi=psi, clusters=result.clusters),
                                references, evaluation.num_draws, num_classes)
        report["truncation_sweep"].append(
            {"truncation_psi": psi, **{k: scored[k] for k in SWEEP_FIGURES if k in scored},
             **{f"{name}_fid_ratio": e["fid_ratio"] for name, e in scored["extractors"].items()}})
    if served_classes:  # does the generator obey the label?
        classifier = references[evaluation.extractors[0]].extractor
        predicted = classifier.predict_proba(generated).argmax(axis=1)
        report["conditional_label_accuracy"] = float(np.mean(predicted == gen_labels))

    return generated, report


def print_results(report, goals, goal_kind, primary, n, train_seconds, out, stem) -> None:
    """The results table: each figure beside its goal and the real images' value."""
    bounds = {metric: f"{'<=' if how == 'max' else '>='} {bound:g}" for metric, bound, how in GOALS[goal_kind]}
    print(f"\nN = {report['n']} per draw, {report['num_draws']} draws; floor: {n} held-out images no component saw;"
          f" goals: {goal_kind}")
    for name, entry in report["extractors"].items():
        fid, floor = entry["scores"]["fid"], entry["floor"]["fid"]
        low, high = entry["fid_ratio_range"]
        print(f"{name + ' FID / floor':<36}{fid['mean']:>9.4g} / {floor:.4g} = {entry['fid_ratio']:.2f}"
              f" (draws {low:.2f}-{high:.2f})  {bounds['fid_ratio'] if name == primary else ''}")
    floor = report["extractors"][primary]["floor"]
    if "confident_fraction" in report:
        print(f"{'confident (p >= 0.9)':<36}{report['confident_fraction']:>12.1%}  {bounds.get('confident_fraction', '')}"
              f" (real: {floor['confident_fraction']:.1%})")
        print(f"{'smallest class share of confident':<36}{report['min_class_share']:>12.1%}  "
              f"{bounds.get('min_class_share', '')}")
    print(f"{'train seconds':<36}{train_seconds:>12.0f}  {bounds['train_seconds']}")
    if "conditional_label_accuracy" in report:
        print(f"{'conditional label accuracy':<36}{report['conditional_label_accuracy']:>12.1%}")
    print(f"{'precision / recall / novelty':<36}{report['precision']:>6.2f} / {report['recall']:.2f} / "
          f"{report['novelty']:.2f}  (real: {floor['precision']:.2f} / {floor['recall']:.2f} / {floor['novelty']:.2f})"
          + (f"  {bounds.get('precision', '-')} / {bounds['recall']}" if "recall" in bounds else ""))
    if "live_generator" in report:
        live = report["live_generator"]
        print(f"{'without EMA: ratio / P / R':<36}{live['fid_ratio']:>6.2f} / {live['precision']:.2f} / "
              f"{live['recall']:.2f}")
    if report["truncation_sweep"]:
        names = list(report["extractors"])
        print("truncation psi  " + "  ".join(f"{n + ' FID/floor':>20}" for n in names)
              + "  precision  recall  confident  smallest class")
        for row in report["truncation_sweep"]:
            print(f"{row['truncation_psi']:>14.2f}  " + "  ".join(f"{row[n + '_fid_ratio']:>20.2f}" for n in names)
                  + f"  {row['precision']:>9.2f}  {row['recall']:>6.2f}"
                  + (f"  {row['confident_fraction']:>9.1%}  {row['min_class_share']:>14.1%}"
                     if "confident_fraction" in row else ""))
    if "cluster_purity" in report:
        print(f"{'cluster purity (training labels)':<36}{report['cluster_purity']:>12.1%}")
    if "class_shares_of_confident" in report:
        print(f"class shares: {' '.join(f'{s:.0%}' for s in report['class_shares_of_confident'])}")
    print(f"goals met: {sum(goals.values())}/{len(goals)}" + "".join(f"; missed {k}" for k, ok in goals.items() if not ok))
    print(f"written {out} and {stem}_samples.png / {stem}_loss_curve.png next to it")


def parse_args(argv=None) -> argparse.Namespace:
    """The options; --truncation_sweep parsed into ``args.sweep``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="pipeline/configs/digits.yaml",
                        help="pipeline config whose data, training section and evaluation settings to measure")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value as ./gan run does, e.g. --set training.train_steps=2000")
    parser.add_argument("--out", default="outputs/benchmarks/train_quality.json")
    parser.add_argument("--extractor_cache", default="outputs/benchmarks/extractor_cache",
                        help="where the domain CNN is kept per dataset and split (every run scores in the same space)")
    parser.add_argument("--truncation_sweep", default="", metavar="PSI,PSI,...",
                        help="also score the trained generator at these truncation psi values (e.g. 1,0.8,0.6): "
                             "the precision/recall trade-off of training.truncation_psi without retraining")
    parser.add_argument("--keep_checkpoints", default=None,
                        help="checkpoint dir to use/keep (default: a fresh temp dir, deleted at the end)")
    args = parser.parse_args(argv)
    try:
        sweep = [float(v) for v in args.truncation_sweep.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--truncation_sweep: expected numbers separated by commas, got {args.truncation_sweep!r}")
    if any(not 0 < psi <= 1 for psi in sweep):
        parser.error(f"--truncation_sweep: every psi must be in (0, 1], got {args.truncation_sweep!r}")
    args.sweep = sweep
    return args



def main(argv=None) -> int:
    args = parse_args(argv)
    sweep = args.sweep
    from benchmarks.machine import print_machine

    machine = print_machine()
    from tfx_gan.pipeline.config import load_config
    from tfx_gan.common.options import parse_overrides
    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.training.samples import image_grid, save_png
    from tfx_gan.training.train import train_gan

    pipeline_config = load_config(args.config, parse_overrides(args.set))
    config = pipeline_config.training
    evaluation = pipeline_config.evaluation
    images, labels = load_dataset(pipeline_config)
    image_shape = images.shape[1:]
    num_classes = None if labels is None else int(labels.max()) + 1
    config = config.validate_for_data(image_shape, num_classes)
    (train_images, train_labels), (held_images, held_labels) = split(images, labels)
    goal_kind = goals_for(config, image_shape)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    stem = os.path.splitext(os.path.basename(args.out))[0]
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="train_quality_")
    try:
        files = write_tfrecords(train_images, train_labels, os.path.join(tmp, "train.tfrecord.gz"))
        run_dir = os.path.join(tmp, "run")
        checkpoint_dir = args.keep_checkpoints or os.path.join(tmp, "checkpoints")
        started = time.perf_counter()
        result = train_gan(config, files, image_shape, num_classes, run_dir, checkpoint_dir,
                           log=lambda line: print(line, flush=True))
        train_seconds = time.perf_counter() - started
        shutil.copy(os.path.join(run_dir, "loss_curve.png"), os.path.join(out_dir, f"{stem}_loss_curve.png"))

        t0 = time.perf_counter()
        fingerprint = (f"{os.path.basename(os.path.normpath(pipeline_config.data.input_base))}-n{len(images)}"
                       f"-split{SPLIT_SEED}-epochs{evaluation.classifier_epochs}")
        references, n = build_references(evaluation, (train_images, train_labels), (held_images, held_labels),
                                         num_classes, args.extractor_cache, fingerprint)
        reference_seconds = time.perf_counter() - t0
        generated, report = score_trained(result, config, evaluation, references, n, num_classes, sweep,
                                          train_images, train_labels, os.path.join(out_dir, f"{stem}_generated.npy"))
        report["train_seconds"] = train_seconds
        grid = image_grid(generated[:100], columns=10)
        save_png(grid, os.path.join(out_dir, f"{stem}_samples.png"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    goals = check_goals(report, goal_kind)
    full = {"benchmark": "train_quality", "machine": machine, "config": config.to_dict(), "precision": result.precision,
            "data": {"input_base": pipeline_config.data.input_base, "image_shape": [int(d) for d in image_shape],
                     "num_classes": num_classes},
            "split": {"seed": SPLIT_SEED, "train": int(len(train_images)), "held_out": int(len(held_images))},
            "config_file": args.config, "overrides": args.set,
            "reference": {"classifier_epochs": evaluation.classifier_epochs, "seconds": reference_seconds},
            "steps": result.steps,
            "final_history": {k: v[-1] for k, v in result.history.items() if v},
            **report, "goals": goal_kind, "goals_met": goals}
    with open(args.out, "w") as f:
        json.dump(full, f, indent=2)
    print_results(report, goals, goal_kind, evaluation.extractors[0], n, train_seconds, args.out, stem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

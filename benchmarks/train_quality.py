"""Quality of the default GAN training on the bundled digits, measured with the domain FID.

    python -m benchmarks.train_quality [--config pipeline/configs/digits.yaml] [--set training.key=value ...]
                                       [--out outputs/benchmarks/train_quality.json]

1. The 1,797 bundled digits are split 80/20 at random (fixed seed) into train (1,437) and held-out
   (360) images; the train images are written as gzipped TFRecords of the project's Example format
   (``components.gan.example_format.make_example``) so ``train_gan`` reads them through its real input path.
2. ``train_gan`` trains with the ``training`` section of --config, the pipeline's default config
   unless told otherwise (``--set section.key=value`` overrides one value, as for ./gan run).
3. The held-out images are cut like the pipeline cuts them (components/reference.py: stratified
   by class) into a reference half R and a floor half F, and every extractor of the config's
   ``evaluation.extractors`` is built on the train split (the domain CNN trained for
   ``evaluation.classifier_epochs``), as ReferenceStatsGen builds them.
4. With N = |F| and ``evaluation.num_draws`` independent draws of N generated images, in every
   feature space (the evaluator's own scoring, ``ExtractorReference.score``):
     fid            FID(N generated, R): mean and range over the draws
     floor          FID(F, R): real images no component saw, same N -- what a perfect generator gets
     ratio          fid / floor                                  (goal <= 2; the blessing's bound is 3)
     confident      fraction of generated images the domain CNN assigns a class with p >= 0.9
                    (goal >= 90%), and each class's share of those (goal: every class >= 5%)
     precision/recall, novelty  next to the same figures for F (real)
     train_seconds  wall time of train_gan (goal < 10 min on 2 cores)
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

import components  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

SPLIT_SEED = 0
NUM_CLASSES = 10


def split_digits(seed: int = SPLIT_SEED, held_out_fraction: float = 0.2):
    from data.digits import digits_28x28

    images, labels = digits_28x28()
    order = np.random.default_rng(seed).permutation(len(images))
    n_held = int(round(held_out_fraction * len(images)))
    held, train = order[:n_held], order[n_held:]
    return (images[train], labels[train]), (images[held], labels[held])


def to_float(images_uint8: np.ndarray) -> np.ndarray:
    return images_uint8[..., None].astype(np.float32) / 127.5 - 1.0


def generate(generator, n: int, latent_dim: int, seed: int, labels=None, batch: int = 256) -> np.ndarray:
    import tensorflow as tf

    rs = np.random.RandomState(seed)
    latent = rs.normal(size=(n, latent_dim)).astype(np.float32)
    out = []
    for i in range(0, n, batch):
        inputs = latent[i:i + batch] if labels is None else [latent[i:i + batch], labels[i:i + batch]]
        out.append(tf.cast(generator(inputs, training=False), tf.float32).numpy())
    return np.concatenate(out)


def quality_report(generated: np.ndarray, references: dict, num_draws: int) -> dict:
    """The evaluator's scoring of ``num_draws`` equal draws of ``generated`` in every feature space
    (``references``: {extractor: ExtractorReference}), next to each floor."""
    from components.evaluation import summarise_draws

    n = len(generated) // num_draws
    report = {"n": n, "num_draws": num_draws, "extractors": {}}
    for name, ref in references.items():
        scores = summarise_draws([ref.score(generated[i * n:(i + 1) * n], NUM_CLASSES, seed=i)
                                  for i in range(num_draws)])
        fid = scores["fid"]
        report["extractors"][name] = {"scores": scores, "floor": ref.floor,
                                      "fid_ratio": fid["mean"] / ref.floor["fid"],
                                      "fid_ratio_range": [min(fid["values"]) / ref.floor["fid"],
                                                          max(fid["values"]) / ref.floor["fid"]]}
    primary = report["extractors"][next(iter(references))]
    scores = primary["scores"]
    report.update(fid_ratio=primary["fid_ratio"], confident_fraction=scores["confident_fraction"]["mean"],
                  class_shares_of_confident=scores["confident_class_shares"],
                  min_class_share=min(scores["confident_class_shares"]), precision=scores["precision"]["mean"],
                  recall=scores["recall"]["mean"], novelty=scores["novelty"]["mean"])
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="pipeline/configs/digits.yaml",
                        help="pipeline config whose training section (and evaluation.classifier_epochs) to measure")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value as ./gan run does, e.g. --set training.train_steps=2000")
    parser.add_argument("--out", default="outputs/benchmarks/train_quality.json")
    parser.add_argument("--keep_checkpoints", default=None,
                        help="checkpoint dir to use/keep (default: a fresh temp dir, deleted at the end)")
    args = parser.parse_args(argv)

    from pipeline.config import load_config, parse_overrides
    from components.gan.synthetic import write_tfrecords
    from components.gan.samples import image_grid, save_png
    from components.gan.train import train_gan
    from components.metrics.extractors import EXTRACTORS
    from components.reference import build_extractor_reference, stratified_halves

    pipeline_config = load_config(args.config, parse_overrides(args.set))
    config = pipeline_config.training
    evaluation = pipeline_config.evaluation

    (train_images, train_labels), (held_images, held_labels) = split_digits()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    stem = os.path.splitext(os.path.basename(args.out))[0]
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="train_quality_")
    try:
        files = write_tfrecords(train_images, train_labels, os.path.join(tmp, "train.tfrecord.gz"))
        run_dir = os.path.join(tmp, "run")
        checkpoint_dir = args.keep_checkpoints or os.path.join(tmp, "checkpoints")
        started = time.perf_counter()
        result = train_gan(config, files, (28, 28, 1), NUM_CLASSES, run_dir, checkpoint_dir,
                           log=lambda line: print(line, flush=True))
        train_seconds = time.perf_counter() - started
        shutil.copy(os.path.join(run_dir, "loss_curve.png"), os.path.join(out_dir, f"{stem}_loss_curve.png"))

        t0 = time.perf_counter()
        held = to_float(held_images)
        in_floor = stratified_halves([str(i) for i in range(len(held))], held_labels)
        n = int(in_floor.sum())
        references = {}
        for name in evaluation.extractors:
            extractor = EXTRACTORS.get(name)(cache_dir=os.path.join(tmp, "cache"), data_fingerprint="digits",
                                             train_images=to_float(train_images), train_labels=train_labels,
                                             num_classes=NUM_CLASSES, epochs=evaluation.classifier_epochs)
            references[name] = build_extractor_reference(
                extractor, train_images=to_float(train_images), reference_images=held[~in_floor],
                floor_images=held[in_floor], num_samples=n, num_classes=NUM_CLASSES, seed=evaluation.seed)
        reference_seconds = time.perf_counter() - t0
        total = n * evaluation.num_draws
        gen_labels = (np.arange(total) % NUM_CLASSES).astype(np.int32) if config.conditional else None
        generated = generate(result.generator, total, config.latent_dim, seed=1, labels=gen_labels)
        np.save(os.path.join(out_dir, f"{stem}_generated.npy"), generated)  # to re-score without retraining
        report = quality_report(generated, references, evaluation.num_draws)
        if config.ema_decay > 0 and result.live_generator is not None:  # what the EMA buys
            live = generate(result.live_generator, total, config.latent_dim, seed=1, labels=gen_labels)
            live_report = quality_report(live, references, evaluation.num_draws)
            report["live_generator"] = {k: live_report[k] for k in ("fid_ratio", "confident_fraction",
                                                                     "min_class_share", "precision", "recall")}
        if config.conditional:  # does the generator obey the label?
            classifier = references[evaluation.extractors[0]].extractor
            predicted = classifier.predict_proba(generated).argmax(axis=1)
            report["conditional_label_accuracy"] = float(np.mean(predicted == gen_labels))

        grid = image_grid(generated[:100], columns=10)
        save_png(grid, os.path.join(out_dir, f"{stem}_samples.png"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    goals = {"fid_ratio <= 2": report["fid_ratio"] <= 2.0,
             "confident_fraction >= 0.9": report["confident_fraction"] >= 0.9,
             "every class >= 5% of confident": report["min_class_share"] >= 0.05,
             "train_seconds < 600": train_seconds < 600}
    full = {"benchmark": "train_quality", "config": config.to_dict(), "precision": result.precision,
            "split": {"seed": SPLIT_SEED, "train": int(len(train_images)), "held_out": int(len(held_images))},
            "config_file": args.config,
            "reference": {"classifier_epochs": evaluation.classifier_epochs, "seconds": reference_seconds},
            "train_seconds": train_seconds, "steps": result.steps,
            "final_history": {k: v[-1] for k, v in result.history.items() if v},
            **report, "goals_met": goals}
    with open(args.out, "w") as f:
        json.dump(full, f, indent=2)
    print(f"\nN = {report['n']} per draw, {report['num_draws']} draws; floor: {n} held-out digits no component saw")
    for name, entry in report["extractors"].items():
        fid, floor = entry["scores"]["fid"], entry["floor"]["fid"]
        low, high = entry["fid_ratio_range"]
        print(f"{name + ' FID / floor':<36}{fid['mean']:>9.4g} / {floor:.4g} = {entry['fid_ratio']:.2f}"
              f" (draws {low:.2f}-{high:.2f})  goal <= 2")
    floor = report["extractors"][evaluation.extractors[0]]["floor"]
    print(f"{'confident (p >= 0.9)':<36}{report['confident_fraction']:>12.1%}  >= 90% "
          f"(real: {floor['confident_fraction']:.1%})")
    print(f"{'smallest class share of confident':<36}{report['min_class_share']:>12.1%}  >= 5%")
    print(f"{'train seconds':<36}{train_seconds:>12.0f}  < 600")
    if "conditional_label_accuracy" in report:
        print(f"{'conditional label accuracy':<36}{report['conditional_label_accuracy']:>12.1%}")
    print(f"{'precision / recall / novelty':<36}{report['precision']:>6.2f} / {report['recall']:.2f} / "
          f"{report['novelty']:.2f}  (real: {floor['precision']:.2f} / {floor['recall']:.2f} / {floor['novelty']:.2f})")
    if "live_generator" in report:
        live = report["live_generator"]
        print(f"{'without EMA: ratio / confident / P / R':<36}{live['fid_ratio']:>6.2f} / {live['confident_fraction']:.1%}"
              f" / {live['precision']:.2f} / {live['recall']:.2f}")
    print(f"class shares: {' '.join(f'{s:.0%}' for s in report['class_shares_of_confident'])}")
    print(f"written {args.out} and {stem}_samples.png / {stem}_loss_curve.png next to it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

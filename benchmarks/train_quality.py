"""Quality of the default GAN training on the bundled digits, measured with the domain FID.

    python -m benchmarks.train_quality [--config pipeline/configs/digits.yaml] [--set training.key=value ...]
                                       [--out outputs/benchmarks/train_quality.json]

1. The 1,797 bundled digits are split 80/20 at random (fixed seed) into train (1,437) and held-out
   (360) images; the train images are written as gzipped TFRecords of the project's Example format
   (``components.gan.example_format.make_example``) so ``train_gan`` reads them through its real input path.
2. ``train_gan`` trains with the ``training`` section of --config, the pipeline's default config
   unless told otherwise (``--set section.key=value`` overrides one value, as for ./gan run).
3. A domain classifier (``components.metrics.domain_classifier``) is trained on the train split for
   the config's ``evaluation.classifier_epochs``, as ReferenceStatsGen trains it; its 128-d
   penultimate features give the FID, its softmax the class confidences.
4. With N = the held-out size for every set:
     fid_generated  FID(N generated, N held-out real)
     fid_floor      FID(N real train images, N held-out real)  -- what a perfect generator would get
     ratio          fid_generated / fid_floor                  (goal <= 2)
     confident      fraction of generated images the classifier assigns a class with p >= 0.9
                    (goal >= 90%), and each class's share of those (goal: every class >= 5%)
     train_seconds  wall time of train_gan (goal < 10 min on 2 cores)
     precision/recall  fidelity vs variety (k-NN manifolds in the same features), next to the
                    same figures for N real training digits
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


def quality_report(generated: np.ndarray, train_real: np.ndarray, held_out: np.ndarray, classifier) -> dict:
    """The evaluator's own scoring (``components.evaluation.score_samples``) of the generated images
    and, for scale, of N real training images, both against the held-out set; N must match."""
    from components.evaluation import score_samples
    from components.metrics.classifier_score import confident_fraction
    from components.metrics.sample_metrics import CONFIDENCE_THRESHOLD
    from components.metrics.fid import FeatureStats

    n = len(held_out)
    assert len(generated) == n and len(train_real) == n, "FIDs need the same N"
    f_held = classifier.features(held_out)
    reference = FeatureStats.from_features(f_held)
    fake, real = (score_samples(x, classifier, reference, f_held, NUM_CLASSES, seed=0) for x in (generated, train_real))
    return {"n": int(n), "feature_dim": int(f_held.shape[1]), "fid_generated": fake["fid"],
            "fid_floor": real["fid"], "fid_ratio": fake["fid"] / real["fid"],
            "confident_fraction": fake["confident_fraction"], "confidence_threshold": CONFIDENCE_THRESHOLD,
            "class_shares_of_confident": fake["confident_class_shares"],
            "min_class_share": fake["min_confident_class_share"],
            "precision": fake["precision"], "recall": fake["recall"],
            "real_train_precision": real["precision"], "real_train_recall": real["recall"],
            "real_held_out_confident_fraction": confident_fraction(classifier.predict_proba(held_out), CONFIDENCE_THRESHOLD)}


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
    from components.metrics.domain_classifier import train_domain_classifier

    pipeline_config = load_config(args.config, parse_overrides(args.set))
    config = pipeline_config.training
    classifier_epochs = pipeline_config.evaluation.classifier_epochs

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
        classifier = train_domain_classifier(to_float(train_images), train_labels, NUM_CLASSES,
                                             epochs=classifier_epochs, seed=0)
        classifier_seconds = time.perf_counter() - t0
        n = len(held_images)
        gen_labels = (np.arange(n) % NUM_CLASSES).astype(np.int32) if config.conditional else None
        generated = generate(result.generator, n, config.latent_dim, seed=1, labels=gen_labels)
        np.save(os.path.join(out_dir, f"{stem}_generated.npy"), generated)  # to re-score without retraining
        subset = np.random.default_rng(1).choice(len(train_images), n, replace=False)
        report = quality_report(generated, to_float(train_images[subset]), to_float(held_images), classifier)
        if config.ema_decay > 0 and result.live_generator is not None:  # what the EMA buys
            live = generate(result.live_generator, n, config.latent_dim, seed=1, labels=gen_labels)
            live_report = quality_report(live, to_float(train_images[subset]), to_float(held_images), classifier)
            report["live_generator"] = {k: live_report[k] for k in ("fid_generated", "fid_ratio", "confident_fraction",
                                                                     "min_class_share", "precision", "recall")}
        if config.conditional:  # does the generator obey the label?
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
            "classifier": {"epochs": classifier_epochs, "seconds": classifier_seconds,
                           **{k: v for k, v in classifier.metadata.items() if "accuracy" in k}},
            "train_seconds": train_seconds, "steps": result.steps,
            "final_history": {k: v[-1] for k, v in result.history.items() if v},
            **report, "goals_met": goals}
    with open(args.out, "w") as f:
        json.dump(full, f, indent=2)
    print(f"\n{'metric':<36}{'value':>12}  goal")
    print(f"{'N (each FID)':<36}{report['n']:>12}")
    print(f"{'FID generated vs held-out':<36}{report['fid_generated']:>12.3f}")
    print(f"{'FID floor (train vs held-out)':<36}{report['fid_floor']:>12.3f}")
    print(f"{'ratio':<36}{report['fid_ratio']:>12.2f}  <= 2")
    print(f"{'confident (p >= 0.9)':<36}{report['confident_fraction']:>12.1%}  >= 90%")
    print(f"{'  (real held-out digits, same test)':<36}{report['real_held_out_confident_fraction']:>12.1%}")
    print(f"{'smallest class share of confident':<36}{report['min_class_share']:>12.1%}  >= 5%")
    print(f"{'train seconds':<36}{train_seconds:>12.0f}  < 600")
    if "conditional_label_accuracy" in report:
        print(f"{'conditional label accuracy':<36}{report['conditional_label_accuracy']:>12.1%}")
    print(f"{'precision / recall':<36}{report['precision']:>6.2f} / {report['recall']:.2f}  "
          f"(real train digits: {report['real_train_precision']:.2f} / {report['real_train_recall']:.2f})")
    if "live_generator" in report:
        live = report["live_generator"]
        print(f"{'without EMA: ratio / confident / P / R':<36}{live['fid_ratio']:>6.2f} / {live['confident_fraction']:.1%}"
              f" / {live['precision']:.2f} / {live['recall']:.2f}")
    print(f"class shares: {' '.join(f'{s:.0%}' for s in report['class_shares_of_confident'])}")
    print(f"written {args.out} and {stem}_samples.png / {stem}_loss_curve.png next to it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

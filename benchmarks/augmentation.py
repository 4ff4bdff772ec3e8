"""Does the generator help a classifier? Augmentation gain and Classification Accuracy Score.

    python -m benchmarks.augmentation [--gan_seeds 0,1,2] [--shots 5,10,50,all] [--per_class 100]
                                      [--classifier_seeds 0,1,2] [--steps 300] [--set training.key=value ...]

1. The config's data (the bundled digits by default) is split 80/20 at random with a fixed seed,
   as benchmarks/train_quality.py splits it; one generator per --gan_seeds value is trained on the
   80% with the config's training section (``train_gan``, the pipeline's trainer). The 20% is the
   test set of every classifier below; no generator and no classifier ever trains on it.
2. For K real training images per class (--shots; "all" = the whole 80%) and each classifier seed,
   one small CNN (the CAS classifier: metrics/classification_accuracy.py) is trained
   for --steps optimizer steps on
     real          the K x classes real images alone
     real+classic  the same plus --per_class classic augmentations per class of them: random
                   shifts of up to 3 px and rotations of up to 15 degrees (no flips: a mirrored
                   2 or 7 is not a digit of that class)
     real+gan      the same plus --per_class generated images per class (the generator asked
                   for each class), one row per generator
   and its accuracy on the test set is recorded. Mean and range over classifier seeds (and
   generators, for real+gan) are reported, as a table and a plot.
3. CAS of each generator: the evaluator's Classification Accuracy Score against the 80%, tested
   on the 20% (--cas_images per training set, the classifier seeds).

The generators saw all of the 80% while a K-shot classifier sees K images per class of it: the
gain measures what a generator trained on the whole training split adds to a classifier that is
given only a few of its labelled images, the usual setting of GAN data augmentation.
Writes outputs/benchmarks/augmentation.json and augmentation.png.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

from benchmarks.train_quality import load_dataset, split, to_float  # noqa: E402

BATCH = 64
VARIANTS = ("real", "real+classic", "real+gan")


def classic_augmentations(images: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` copies of random ``images`` (float [N, H, W, C], background -1), each shifted by up
    to 3 px and rotated by up to 15 degrees."""
    from scipy import ndimage

    out = np.empty((count, *images.shape[1:]), np.float32)
    for i, index in enumerate(rng.integers(0, len(images), count)):
        image = ndimage.rotate(images[index], rng.uniform(-15, 15), axes=(0, 1), reshape=False, order=1, cval=-1.0)
        out[i] = ndimage.shift(image, (*rng.integers(-3, 4, 2), 0), order=0, cval=-1.0)
    return out


def accuracy_of(x, y, test, num_classes: int, steps: int, seed: int) -> float:
    """Held-out accuracy of the CAS classifier trained for ``steps`` optimizer steps on (x, y)."""
    from tfx_gan.metrics.domain_classifier import train_domain_classifier

    epochs = max(1, math.ceil(steps * BATCH / len(x)))
    classifier = train_domain_classifier(x, y, num_classes, epochs=epochs, batch_size=BATCH, validation_fraction=0.0,
                                         seed=seed, rotation_task=False, progress=False)
    return float(np.mean(classifier.predict_proba(test[0]).argmax(axis=1) == test[1]))


def train_generators(args, config, train, image_shape, num_classes, tmp):
    """{gan seed: generator} trained on the 80% with the config's training section."""
    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.training.train import train_gan

    files = write_tfrecords(train[0], train[1], os.path.join(tmp, "train.tfrecord.gz"))
    generators, seconds = {}, {}
    for seed in args.gan_seeds:
        started = time.perf_counter()
        result = train_gan(config.replace(seed=seed), files, image_shape, num_classes, os.path.join(tmp, f"run{seed}"),
                           os.path.join(tmp, f"checkpoints{seed}"), log=lambda line: print(line, flush=True))
        generators[seed], seconds[seed] = result, time.perf_counter() - started
        print(f"generator seed {seed}: trained in {seconds[seed]:.0f} s", flush=True)
    return generators, seconds


def run_shots(args, train, test, generated, num_classes) -> dict:
    """{K: {variant: [accuracy per classifier seed (x generator)]}}."""
    (train_x, train_y) = train
    results = {}
    for shot in args.shots:
        per_class = None if shot == "all" else int(shot)
        rows = {variant: [] for variant in VARIANTS}
        for seed in args.classifier_seeds:
            rng = np.random.default_rng([seed, 0 if per_class is None else per_class])
            if per_class is None:
                chosen = np.arange(len(train_x))
            else:
                chosen = np.concatenate([rng.permutation(np.flatnonzero(train_y == k))[:per_class]
                                         for k in range(num_classes)])
            x, y = train_x[chosen], train_y[chosen]
            rows["real"].append(accuracy_of(x, y, test, num_classes, args.steps, seed))
            extra_y = np.repeat(np.arange(num_classes), args.per_class)
            classic = np.concatenate([classic_augmentations(x[y == k], args.per_class, rng) for k in range(num_classes)])
            rows["real+classic"].append(accuracy_of(np.concatenate([x, classic]), np.concatenate([y, extra_y]), test,
                                                    num_classes, args.steps, seed))
            for images, labels in generated.values():
                pick = np.concatenate([np.flatnonzero(labels == k)[:args.per_class] for k in range(num_classes)])
                rows["real+gan"].append(accuracy_of(np.concatenate([x, images[pick]]), np.concatenate([y, labels[pick]]),
                                                    test, num_classes, args.steps, seed))
            print(f"K={shot} seed {seed}: " + ", ".join(f"{v} {rows[v][-1] if v != 'real+gan' else np.mean(rows[v][-len(generated):]):.3f}"
                                                       for v in VARIANTS), flush=True)
        results[str(shot)] = rows
    return results


def summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "min": float(min(values)), "max": float(max(values)), "values": values}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shots = list(results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for offset, variant in zip((-0.12, 0.0, 0.12), VARIANTS):
        stats = [summary(results[s][variant]) for s in shots]
        means = np.array([s["mean"] for s in stats])
        low, high = means - [s["min"] for s in stats], [s["max"] for s in stats] - means
        ax.errorbar(np.arange(len(shots)) + offset, means, yerr=[low, high], marker="o", capsize=3, label=variant)
    ax.set_xticks(range(len(shots)), [f"K={s}" for s in shots])
    ax.set_ylabel("held-out accuracy (mean, range)")
    ax.set_title("Real images per class, with and without augmentation")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="pipeline/configs/digits.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--gan_seeds", default="0,1,2", help="training.seed of each generator (default: %(default)s)")
    parser.add_argument("--classifier_seeds", default="0,1,2", help="default: %(default)s")
    parser.add_argument("--shots", default="5,10,50,all", help="real images per class (default: %(default)s)")
    parser.add_argument("--per_class", type=int, default=100, help="augmented images added per class (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per classifier (default: %(default)s)")
    parser.add_argument("--cas_images", type=int, default=1000, help="training images per CAS classifier")
    parser.add_argument("--out", default="outputs/benchmarks/augmentation.json")
    args = parser.parse_args(argv)
    try:
        args.gan_seeds = [int(s) for s in args.gan_seeds.split(",")]
        args.classifier_seeds = [int(s) for s in args.classifier_seeds.split(",")]
        args.shots = [s.strip() if s.strip() == "all" else int(s) for s in args.shots.split(",")]
    except ValueError as exc:
        parser.error(f"seeds and shots are integers separated by commas (shots may include 'all'): {exc}")
    if args.per_class < 1 or args.steps < 1 or any(s != "all" and s < 1 for s in args.shots):
        parser.error("--per_class, --steps and every shot must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks.machine import print_machine
    from benchmarks.train_quality import generate
    from tfx_gan.metrics.classification_accuracy import classification_accuracy_score
    from tfx_gan.pipeline.config import load_config
    from tfx_gan.common.options import parse_overrides

    machine = print_machine()
    started = time.perf_counter()
    pipeline_config = load_config(args.config, parse_overrides(args.set))
    images, labels = load_dataset(pipeline_config)
    if labels is None:
        print("error: the augmentation benchmark needs labelled data")
        return 2
    num_classes = int(labels.max()) + 1
    config = pipeline_config.training.validate_for_data(images.shape[1:], num_classes)
    if not config.serves_labels:
        print(f"error: training.architecture {config.architecture} is not class-conditional")
        return 2
    (train_x, train_y), (test_x, test_y) = split(images, labels)
    train, test = (to_float(train_x), train_y), (to_float(test_x), test_y)
    tmp = tempfile.mkdtemp(prefix="augmentation_")
    try:
        generators, train_seconds = train_generators(args, config, (train_x, train_y), images.shape[1:], num_classes, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    generated, cas = {}, {}
    count = max(args.per_class, args.cas_images // num_classes) * num_classes
    for seed, result in generators.items():
        gen_labels = np.arange(count) % num_classes
        generated[seed] = (generate(result.generator, count, config.latent_dim, seed=1000 + seed, labels=gen_labels,
                                    truncation_psi=config.truncation_psi), gen_labels)
        cas[seed], _ = classification_accuracy_score(*generated[seed], *train, *test, num_classes,
                                                     num_images=args.cas_images, seeds=args.classifier_seeds)
        print(f"generator seed {seed}: CAS ratio {cas[seed]['ratio']:.3f} (generated {cas[seed]['generated']:.3f}, "
              f"real {cas[seed]['real']:.3f})", flush=True)
    results = run_shots(args, train, test, generated, num_classes)
    report = {"benchmark": "augmentation", "machine": machine, "args": {k: v for k, v in vars(args).items()},
              "split": {"train": int(len(train_x)), "test": int(len(test_x))},
              "train_seconds": train_seconds, "cas": cas,
              "cas_ratio": summary([c["ratio"] for c in cas.values()]),
              "shots": {k: {v: summary(vals) for v, vals in rows.items()} for k, rows in results.items()},
              "seconds": time.perf_counter() - started}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    plot(results, os.path.splitext(args.out)[0] + ".png")
    print_table(report)
    print(f"results written to {args.out} and {os.path.splitext(args.out)[0]}.png")
    return 0


def print_table(report: dict) -> None:
    print(f"\nCAS ratio over {len(report['cas'])} generators: mean {report['cas_ratio']['mean']:.3f} "
          f"(range {report['cas_ratio']['min']:.3f}-{report['cas_ratio']['max']:.3f})")
    print(f"{'K':>5} " + "".join(f"{v:>24}" for v in VARIANTS) + f"{'gan - real':>12}{'gan - classic':>15}")
    for shot, rows in report["shots"].items():
        cells = "".join(f"{rows[v]['mean']:>10.3f} ({rows[v]['min']:.3f}-{rows[v]['max']:.3f})" for v in VARIANTS)
        print(f"{shot:>5} {cells}{rows['real+gan']['mean'] - rows['real']['mean']:>+12.3f}"
              f"{rows['real+gan']['mean'] - rows['real+classic']['mean']:>+15.3f}")


if __name__ == "__main__":
    raise SystemExit(main())

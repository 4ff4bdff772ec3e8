"""Time to quality: training wall time until the FID first reaches 2x the fair floor, our
training (a config's ``training`` section) against TF's DCGAN tutorial recipe, in one process.

    python -m benchmarks.time_to_quality [--config pipeline/configs/digits.yaml] [--set training.key=value ...]
                                         [--out outputs/benchmarks/time_to_quality.json]

ours      ``benchmarks.train_throughput.make_ours``: our step with the config's training section
          (scored with the generator it exports: the EMA one when ``ema_decay`` > 0);
tutorial  ``benchmarks.train_throughput.make_reference``: the tutorial's model, loss, Adam 1e-4,
          batch 256 and train_step, verbatim, float32.

Both train on the same train split of the bundled digits and are scored like
benchmarks/train_quality.py scores (its split, references and ``quality_report``: N = |F|
generated images against the held-out reference half, the floor being F). They take turns of
``--slice_seconds`` of training each, so that load from other processes on a shared machine hits
both alike; after each turn the recipe's generator is scored, with the clock stopped. A recipe is
done when its FID in the primary feature space first reaches ``--target`` x the floor. The run
ends when both are done, or when the tutorial has trained ``--max_multiple`` times as long as ours
needed without getting there (then ours <= 1/max_multiple of the tutorial's time is shown and its
own time is a lower bound), or after ``--max_seconds`` of training per recipe.
Writes the JSON (every scoring: seconds, steps, images, FID/floor per feature space) and a plot of
FID/floor over training seconds per recipe and feature space next to it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

from benchmarks.train_quality import (SPLIT_SEED, build_references, generate, load_dataset, quality_report,  # noqa: E402
                                      split, to_float)
from benchmarks.train_throughput import BATCH_SIZE as TUTORIAL_BATCH, NOISE_DIM as TUTORIAL_NOISE  # noqa: E402
from benchmarks.train_throughput import make_ours, make_reference  # noqa: E402

RECIPES = ("ours", "tutorial")


class Recipe:
    """One recipe's runner, its clock and its scorings."""

    def __init__(self, name, run, batch_size, latent_dim, labels_for, truncation_psi: float = 1.0):
        self.name, self.run, self.batch_size, self.latent_dim = name, run, batch_size, latent_dim
        self.labels_for = labels_for  # n -> int32 labels for a conditional generator, else None
        self.truncation_psi = truncation_psi  # as the recipe's exported generator would draw
        self.seconds, self.steps, self.points, self.reached_at = 0.0, 0, [], None

    def train_for(self, seconds: float, chunk: int) -> None:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            self.run(chunk)
            self.steps += chunk
        self.seconds += time.perf_counter() - started

    def score(self, references, n, num_classes, target, primary):
        images = generate(self.run.generator, n, self.latent_dim, seed=1, labels=self.labels_for(n),
                          truncation_psi=self.truncation_psi)
        with warnings.catch_warnings():  # one draw: its standard deviation is undefined (NaN), and unused
            warnings.simplefilter("ignore", RuntimeWarning)
            report = quality_report(images, references, 1, num_classes)
        point = {"seconds": self.seconds, "steps": self.steps, "images": self.steps * self.batch_size,
                 **{f"fid_ratio_{name}": e["fid_ratio"] for name, e in report["extractors"].items()},
                 "precision": report["precision"], "recall": report["recall"]}
        self.points.append(point)
        if self.reached_at is None and point[f"fid_ratio_{primary}"] <= target:
            self.reached_at = point
        return point


def save_plot(recipes: dict, extractors: list[str], target: float, path: str) -> None:
    from tfx_gan.training.samples import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(extractors), figsize=(6 * len(extractors), 4), squeeze=False)
    for ax, name in zip(axes[0], extractors):
        for recipe in recipes.values():
            ax.plot([p["seconds"] for p in recipe.points], [p[f"fid_ratio_{name}"] for p in recipe.points],
                    marker=".", label=recipe.name)
        ax.axhline(target, color="grey", linestyle="--", label=f"{target:g}x floor")
        ax.set_yscale("log")
        ax.set_xlabel("training seconds")
        ax.set_ylabel(f"FID / floor ({name})")
        ax.legend()
    save_figure(fig, path)


def race(recipes: dict, references, n: int, num_classes, primary: str, args, chunks: dict) -> None:
    """Turns of ``args.slice_seconds`` of training per recipe, each scored after its turn, until both
    reached ``args.target`` (or trained ``args.max_seconds``), or the tutorial has trained
    ``args.max_multiple`` times ours' time to quality without reaching it."""
    ours, tutorial = recipes["ours"], recipes["tutorial"]
    turn = 0
    while True:
        turn += 1
        for name, recipe in recipes.items():
            if recipe.reached_at is not None or recipe.seconds >= args.max_seconds:
                continue
            recipe.train_for(args.slice_seconds, chunks[name])
            point = recipe.score(references, n, num_classes, args.target, primary)
            print(f"turn {turn:3d} {name:<9} {point['seconds']:7.0f} s {point['steps']:6d} steps  "
                  + "  ".join(f"{e} {point[f'fid_ratio_{e}']:.2f}x" for e in references), flush=True)
        if all(r.reached_at is not None or r.seconds >= args.max_seconds for r in recipes.values()):
            return
        if ours.reached_at is not None and tutorial.reached_at is None \
                and tutorial.seconds >= args.max_multiple * ours.reached_at["seconds"]:
            return


def speed_ratio(ours, tutorial) -> tuple[float | None, str]:
    """Ours' time to the target over the tutorial's, and what kind of figure it is."""
    ours_s = None if ours.reached_at is None else ours.reached_at["seconds"]
    tutorial_s = None if tutorial.reached_at is None else tutorial.reached_at["seconds"]
    if ours_s is not None and tutorial_s is not None:
        return ours_s / tutorial_s, "measured"
    if ours_s is not None:  # the tutorial trained this long without reaching the target
        return ours_s / tutorial.seconds, "upper bound (the tutorial did not reach the target)"
    return None, "ours did not reach the target"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="pipeline/configs/digits.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--target", type=float, default=2.0, help="FID / floor in the primary feature space")
    parser.add_argument("--slice_seconds", type=float, default=20.0, help="training per turn")
    parser.add_argument("--max_multiple", type=float, default=5.0,
                        help="stop once the tutorial has trained this many times ours' time to quality")
    parser.add_argument("--max_seconds", type=float, default=1800.0, help="training per recipe at most")
    parser.add_argument("--extractor_cache", default="outputs/benchmarks/extractor_cache")
    parser.add_argument("--out", default="outputs/benchmarks/time_to_quality.json")
    args = parser.parse_args(argv)
    from benchmarks.machine import print_machine

    machine = print_machine()

    from tfx_gan.pipeline.config import load_config
    from tfx_gan.common.options import parse_overrides
    from tfx_gan.data.example_format import write_tfrecords

    pipeline_config = load_config(args.config, parse_overrides(args.set))
    config, evaluation = pipeline_config.training, pipeline_config.evaluation
    if config.self_conditioning:  # its clusters are fitted by train_gan, which this step-level race bypasses
        parser.error("training.self_conditioning is not supported here; measure it with benchmarks.train_quality")
    images, labels = load_dataset(pipeline_config)
    image_shape = images.shape[1:]
    if tuple(image_shape) != (28, 28, 1):
        raise SystemExit(f"the tutorial's model makes 28x28x1 images; {pipeline_config.data.input_base} holds "
                         f"{'x'.join(map(str, image_shape))}")
    num_classes = None if labels is None else int(labels.max()) + 1
    config = config.validate_for_data(image_shape, num_classes)
    train, held = split(images, labels)
    fingerprint = (f"{os.path.basename(os.path.normpath(pipeline_config.data.input_base))}-n{len(images)}"
                   f"-split{SPLIT_SEED}-epochs{evaluation.classifier_epochs}")
    references, n = build_references(evaluation, train, held, num_classes, args.extractor_cache, fingerprint)
    primary = evaluation.extractors[0]

    tmp = tempfile.mkdtemp(prefix="time_to_quality_")
    try:
        files = write_tfrecords(train[0], train[1], os.path.join(tmp, "train.tfrecord.gz"))
        cycle = (lambda k: (np.arange(k) % num_classes).astype(np.int32)) if config.conditional else (lambda k: None)
        recipes = {
            "ours": Recipe("ours", make_ours(files, config, image_shape=image_shape, num_classes=num_classes),
                           config.batch_size, config.latent_dim, cycle, config.truncation_psi),
            "tutorial": Recipe("tutorial", make_reference(to_float(train[0])), TUTORIAL_BATCH, TUTORIAL_NOISE,
                               lambda k: None),
        }
        for recipe in recipes.values():
            recipe.run(1)  # trace and build outside the clock
            recipe.steps = 1
        # Chunks of about the same number of images (a few seconds) between clock checks.
        chunks = {"ours": max(1, 640 // config.batch_size), "tutorial": max(1, 640 // TUTORIAL_BATCH)}
        race(recipes, references, n, num_classes, primary, args, chunks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio, verdict = speed_ratio(recipes["ours"], recipes["tutorial"])
    stem = os.path.splitext(os.path.abspath(args.out))[0]
    save_plot(recipes, list(references), args.target, f"{stem}.png")
    report = {"benchmark": "time_to_quality", "machine": machine, "config_file": args.config, "overrides": args.set,
              "config": config.to_dict(), "target_fid_over_floor": args.target, "primary_extractor": primary,
              "n": n, "floors": {name: ref.floor["fid"] for name, ref in references.items()},
              "slice_seconds": args.slice_seconds,
              "recipes": {name: {"reached_at": r.reached_at, "trained_seconds": r.seconds, "points": r.points}
                          for name, r in recipes.items()},
              "ours_over_tutorial": ratio, "ratio_kind": verdict}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    for name, r in recipes.items():
        reached = (f"{r.reached_at['seconds']:.0f} s ({r.reached_at['steps']} steps)" if r.reached_at
                   else f"not within {r.seconds:.0f} s ({r.steps} steps)")
        print(f"{name:<9} FID <= {args.target:g}x floor ({primary}): {reached}")
    print(f"ours / tutorial: {'n/a' if ratio is None else f'{ratio:.3f}'} ({verdict}); goal <= 1/4")
    print(f"written {args.out} and {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

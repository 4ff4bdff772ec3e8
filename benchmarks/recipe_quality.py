"""The default training recipe (``architecture: auto``) on real image sets, judged by the evaluator
itself: what a user who brings those images gets, over several seeds.

    python -m benchmarks.recipe_quality --dataset emoji --size 64 [--seeds 0,1,2] [--set training.key=value ...]
                                        [--out outputs/benchmarks/recipe_quality-emoji-64.json]

For ``--dataset`` (benchmarks/datasets.py: digits, emoji, sprites) at ``--size`` px:

1. an 80/20 split (benchmarks/train_quality.py ``split``), written as the pipeline's TFRecords;
2. the reference artifact, built once by the evaluator's own ``build_reference`` (ReferenceStatsGen's
   library call, its Beam job in-process) with the default ``evaluation`` options;
3. per seed: the training section ``{architecture: auto, seed: S}`` (plus ``--set``), resolved for the
   data (training/recipe.py, logged), trained by ``train_gan`` with its time budget, exported by
   ``save_trained_models``, then scored and judged by ``evaluate_and_bless`` (GanEvaluator's library
   call: FID per feature space against the floor, CAS, per-class variety, novelty, the blessing by the
   default thresholds) with no serving baseline;
4. for the digits, also the variety judge in the scans' native 8x8 pixel space (the central 20x20
   box area-averaged to 8x8): the recall (k=3) of the held-out reference digits against as many
   samples as there are training digits, beside the same judge applied to the training digits (real
   ones, same N), overall and per class. A generator that draws a few prototypes per class has many
   near-duplicate samples, whose k-NN balls shrink as N grows: at large N its recall falls far below
   real digits'; at the evaluator's small N (the floor half) the gap is smaller (also reported).

Prints one row per seed and the mean (range) of each figure beside the goals; writes the JSON, each
seed's samples.png, classes.png and loss curve next to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

# The goals of the recipe (a figure, its bound, "max" or "min"), per kind of data.
GOALS = {
    "colour": [("domain_cnn_fid_over_floor", 2.5, "max"), ("random_cnn_fid_over_floor", 2.0, "max"),
               ("cas_ratio", 0.95, "min"), ("blessed", 1, "min")],
    "digits": [("domain_cnn_fid_over_floor", 1.3, "max"), ("native_recall_over_real", 0.5, "min"),
               ("blessed", 1, "min")],
}


def native_recall(generated, generated_labels, reference, reference_labels, num_classes) -> dict:
    """The digits' variety judge: recall (k=3) of ``reference`` digits against ``generated`` ones in the
    scans' native 8x8 pixels (the central 20x20 box area-averaged to 8x8), overall and per class."""
    from tfx_gan.metrics.class_variety import class_variety
    from tfx_gan.metrics.pixels import area_downsample
    from tfx_gan.metrics.precision_recall import manifold_coverage

    def native(images):
        return area_downsample(np.asarray(images)[:, 4:24, 4:24]).reshape(len(images), -1)

    fake, real = native(generated), native(reference)
    per_class = class_variety(real, reference_labels, fake, generated_labels, num_classes).recall
    return {"recall": manifold_coverage(real, fake, 3), "class_recall": per_class,
            "mean_class_recall": float(np.nanmean(per_class))}


def _figures(report: dict, native: dict | None) -> dict:
    candidate = report["candidate"]
    figures = {f"{name}_fid_over_floor": s["fid"]["mean"] / report["extractors"][name]["floor"]["fid"]
               for name, s in candidate["scores"].items()}
    primary = candidate["scores"][next(iter(candidate["scores"]))]
    figures.update(precision=primary["precision"]["mean"], recall=primary["recall"]["mean"],
                   novelty=primary["novelty"]["mean"], blessed=int(report["blessed"]))
    cas = report.get("cas") or {}
    if "ratio" in cas:
        figures.update(cas_ratio=cas["ratio"], cas_real_accuracy=cas.get("real"))
    accuracy = report["extractors"].get("domain_cnn", {}).get("held_out_accuracy")
    if accuracy is not None:
        figures["domain_cnn_held_out_accuracy"] = accuracy
    nearest = candidate.get("nearest_training") or {}
    if nearest:
        figures["nearest_training_min"] = nearest["min"]
    if "min_class_recall" in primary:
        floor = report["extractors"][next(iter(candidate["scores"]))]["floor"]
        ratios = [v / r for v, r in zip(primary["class_recall"], floor["class_recall"])
                  if np.isfinite(v) and np.isfinite(r) and r > 0]
        figures["min_class_recall_over_real"] = float(min(ratios)) if ratios else float("nan")
    if native:
        figures.update(native_recall=native["generated"]["recall"], native_recall_real=native["real"]["recall"],
                       native_recall_over_real=native["generated"]["recall"] / native["real"]["recall"],
                       native_class_recall_over_real=native["generated"]["mean_class_recall"]
                       / native["real"]["mean_class_recall"],
                       native_recall_over_real_small_n=native["generated_small_n"]["recall"]
                       / native["real_small_n"]["recall"])
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="emoji", choices=("digits", "emoji", "sprites"))
    parser.add_argument("--size", type=int, default=64, help="image size of the colour sets (digits stay 28x28)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a training.* or evaluation.* option for every seed, as ./gan run --set takes it")
    parser.add_argument("--work_dir", default="outputs/benchmarks/recipe_quality_work",
                        help="the split's TFRecords, the reference artifact and the models (kept between runs)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import apache_beam as beam

    from benchmarks import datasets
    from benchmarks.machine import print_machine
    from benchmarks.train_quality import split, to_float
    from tfx_gan.common import layout
    from tfx_gan.evaluation.config import EvaluationConfig
    from tfx_gan.evaluation.evaluate import evaluate_and_bless
    from tfx_gan.training.sampling import sample_labels
    from tfx_gan.evaluation.reference import build_reference, read_held_out, stratified_halves
    from tfx_gan.training.config import TrainConfig
    from tfx_gan.training.devices import cpu_supports_bf16
    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.training.train import save_trained_models, train_gan
    from tfx_gan.common.options import parse_overrides

    machine = print_machine()
    size = None if args.dataset == "digits" else args.size
    overrides = parse_overrides(args.set)
    unknown = set(overrides) - {"training", "evaluation"}
    if unknown:
        parser.error(f"--set takes training.* and evaluation.* options, got {', '.join(sorted(unknown))}")
    evaluation = EvaluationConfig.from_dict(overrides.get("evaluation"))
    images, labels, classes = datasets.load(args.dataset, size)
    (train_x, train_y), (held_x, held_y) = split(images, labels)
    image_shape, num_classes = tuple(int(d) for d in images.shape[1:]), len(classes)
    name = f"{args.dataset}-{image_shape[0]}"
    work = os.path.join(args.work_dir, name)
    out = args.out or os.path.join("outputs", "benchmarks", f"recipe_quality-{name}.json")
    out_dir = os.path.splitext(out)[0]
    os.makedirs(out_dir, exist_ok=True)
    print(f"{args.dataset} at {'x'.join(map(str, image_shape))}: {len(train_x)} training, {len(held_x)} held-out "
          f"images, {num_classes} classes", flush=True)

    train_files = [os.path.join(work, "train.tfrecord.gz")]
    eval_files = [os.path.join(work, "eval.tfrecord.gz")]
    if not os.path.exists(eval_files[0]):
        os.makedirs(work, exist_ok=True)
        write_tfrecords(train_x, train_y, train_files[0])
        write_tfrecords(held_x, held_y, eval_files[0])
    reference_dir = os.path.join(work, "reference-" + "-".join(evaluation.extractors))
    if not os.path.exists(os.path.join(reference_dir, "reference.json")):
        started = time.perf_counter()
        build_reference(train_files=train_files, eval_files=eval_files, image_shape=image_shape,
                        num_classes=num_classes, extractors=evaluation.extractors,
                        num_samples=evaluation.num_samples, num_draws=evaluation.num_draws, seed=evaluation.seed,
                        classifier_epochs=evaluation.classifier_epochs, cache_dir=os.path.join(work, "cache"),
                        data_fingerprint=name, out_dir=reference_dir, beam_pipeline=beam.Pipeline(),
                        log=lambda line: print(line, flush=True))
        print(f"reference built in {time.perf_counter() - started:.0f} s", flush=True)

    native_real = None
    if args.dataset == "digits":  # the real side of the native judge: the training digits (and F) against R
        held, held_labels, keys = read_held_out(eval_files, image_shape)
        in_floor = stratified_halves(keys, held_labels)
        reference_digits, reference_labels = held[~in_floor], held_labels[~in_floor]
        native_real = {"train": native_recall(to_float(train_x), train_y, reference_digits, reference_labels,
                                              num_classes),
                       "floor": native_recall(held[in_floor], held_labels[in_floor], reference_digits,
                                              reference_labels, num_classes)}

    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        seed_dir = os.path.join(out_dir, f"seed{seed}")
        model_dir = os.path.join(work, f"model-seed{seed}")
        shutil.rmtree(model_dir, ignore_errors=True)
        config = TrainConfig.from_dict({"architecture": "auto", **overrides.get("training", {}), "seed": seed})
        config, recipe = config.resolve_for_data(image_shape, num_classes, len(train_x), cpu_supports_bf16(),
                                                 log=lambda line: print(line, flush=True))
        started = time.perf_counter()
        result = train_gan(config, train_files, image_shape, num_classes, run_dir=os.path.join(seed_dir, "run"),
                           checkpoint_dir=os.path.join(model_dir, "checkpoints"),
                           log=lambda line: print(line, flush=True))
        train_seconds = time.perf_counter() - started
        serving_dir = layout.serving_dir(model_dir)
        save_trained_models(result, config, serving_dir, layout.train_config_path(model_dir), image_shape, num_classes)
        layout.add_metadata(serving_dir, class_names=classes, recipe=recipe)
        report = evaluate_and_bless(reference_dir=reference_dir, candidate_dir=serving_dir, baseline=None,
                                    eval_files=eval_files, train_files=train_files, image_shape=image_shape,
                                    num_classes=num_classes, config=evaluation, out_dir=seed_dir,
                                    log=lambda line: print(line, flush=True))
        native = None
        if native_real is not None:
            from benchmarks.train_quality import generate

            wanted = sample_labels(len(train_x), num_classes)
            fake = generate(result.generator, len(train_x), config.latent_dim, seed=seed + 1, labels=wanted,
                            truncation_psi=config.truncation_psi)
            small = int(in_floor.sum())  # the evaluator's N
            native = {"generated": native_recall(fake, wanted, reference_digits, reference_labels, num_classes),
                      "real": native_real["train"],
                      "generated_small_n": native_recall(fake[:small], wanted[:small], reference_digits,
                                                         reference_labels, num_classes),
                      "real_small_n": native_real["floor"]}
        row = {"seed": seed, "steps": result.steps, "train_seconds": train_seconds, **_figures(report, native),
               "reason": report["reason"], "native": native}
        rows.append(row)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in row.items() if k not in ("reason", "native", "seed")),
              flush=True)
        print(f"  {report['reason']}", flush=True)

    kind = "digits" if args.dataset == "digits" else "colour"
    summary = {}
    print(f"\n{name}, {len(rows)} seeds: mean (min-max)")
    for key in [k for k in rows[0] if k not in ("seed", "reason", "native")]:
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        summary[key] = {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}
        goal = next(((bound, how) for metric, bound, how in GOALS[kind] if metric == key), None)
        verdict = ""
        if goal:
            bound, how = goal
            met = all(v <= bound for v in values) if how == "max" else all(v >= bound for v in values)
            verdict = f"  goal {'<=' if how == 'max' else '>='} {bound:g}: {'met by every seed' if met else 'missed'}"
        print(f"  {key:<34} {summary[key]['mean']:9.3f} ({summary[key]['min']:.3f}-{summary[key]['max']:.3f}){verdict}")
    with open(out, "w") as f:
        json.dump({"benchmark": "recipe_quality", "machine": machine, "dataset": args.dataset,
                   "image_shape": list(image_shape), "num_classes": num_classes, "classes": classes,
                   "split": {"train": len(train_x), "held_out": len(held_x)}, "overrides": args.set,
                   "evaluation": evaluation.to_dict(), "rows": rows, "summary": summary, "goals": GOALS[kind]},
                  f, indent=2, default=float)
    print(f"written {out} and each seed's samples.png, classes.png and run/ under {out_dir}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

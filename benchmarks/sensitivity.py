"""Sensitivity suite: do the evaluation's metrics see what a GAN gets wrong?

    python -m benchmarks.sensitivity [--datasets digits,photo_patches] [--extractors domain_cnn,random_cnn]
                                     [--seeds 0] [--out outputs/benchmarks/sensitivity]

Writes sensitivity.json, sensitivity.md (the table) and <dataset>_seed<N>.png (10 images of every
candidate set, one row each, in the table's order) under --out.

Known degradations of held-out real images are scored like a generator's samples, with the
evaluator's own code (evaluation/reference.py: extractors built on the training part, the
floor from real images no extractor saw, the same N on both sides), on the bundled digits and
on the photo patches (data/photo_patches.py). Each row is one candidate set of N images:

    unseen real          N other held-out real images: should score ~1x the floor
    blur 1 / blur 2      Gaussian blur, sigma 1 and 2 px
    checkerboard         + 0.2 * (-1)^(row + col): the artefact of strided transposed convolutions
    shuffled pixels      each image's pixels permuted: same colour histogram, no structure
    mean colour          each image replaced by its mean colour
    noise 0.1 / 0.3      additive Gaussian noise (images in [-1, 1]), clipped
    one class dropped    N held-out images of every class but the first
    half the classes     N held-out images of the first half of the classes only
    training copies      N training images: what a generator that memorised its data returns

The split here: 60% train; the held-out 40% cut like the pipeline's (stratified by class) into
the reference R and a pool P, and P cut the same way into the floor set F and the unseen-real
set U. N = |F|; the class-dropping rows draw their N images from P. Every row reports, per extractor, FID / floor, precision,
recall, novelty, and whether the default blessing thresholds (EvaluationConfig) would bless it.
tests/test_sensitivity.py asserts the margins; the README quotes the table.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import tfx_gan  # noqa: F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

CHECKERBOARD_AMPLITUDE = 0.2


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [N, H, W, C] in [-1, 1], int labels) of a bundled dataset."""
    if name == "digits":
        from tfx_gan.data.digits import digits_28x28

        images, labels = digits_28x28()
        images = images[..., None]
    elif name == "photo_patches":
        from tfx_gan.data.photo_patches import photo_patches

        images, labels = photo_patches()
    else:
        raise ValueError(f"unknown dataset {name!r}: digits or photo_patches")
    return (images.astype(np.float32) / 127.5 - 1.0), labels.astype(np.int64)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0)).astype(np.float32)


def checkerboard(images: np.ndarray, amplitude: float = CHECKERBOARD_AMPLITUDE) -> np.ndarray:
    rows, cols = np.indices(images.shape[1:3])
    pattern = np.where((rows + cols) % 2 == 0, amplitude, -amplitude)[None, :, :, None]
    return np.clip(images + pattern, -1, 1).astype(np.float32)


def shuffle_pixels(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, h, w, c = images.shape
    flat = images.reshape(n, h * w, c)
    return np.stack([pixels[rng.permutation(h * w)] for pixels in flat]).reshape(images.shape)


def mean_colour(images: np.ndarray) -> np.ndarray:
    return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)


def add_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(images + rng.normal(0, sigma, images.shape), -1, 1).astype(np.float32)


def candidate_sets(train: np.ndarray, floor: np.ndarray, unseen: np.ndarray, pool: np.ndarray,
                   pool_labels: np.ndarray, n: int, num_classes: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every row's N images; the degradations start from the floor set."""
    base = floor[:n]
    kept_one = pool[pool_labels != 0][:n]
    kept_half = pool[pool_labels < max(1, num_classes // 2)][:n]
    return {
        "unseen real": unseen[:n],
        "blur 1": blur(base, 1.0),
        "blur 2": blur(base, 2.0),
        "checkerboard": checkerboard(base),
        "shuffled pixels": shuffle_pixels(base, rng),
        "mean colour": mean_colour(base),
        "noise 0.1": add_noise(base, 0.1, rng),
        "noise 0.3": add_noise(base, 0.3, rng),
        "one class dropped": kept_one,
        "half the classes": kept_half,
        "training copies": train[:n],
    }


def run_suite(dataset: str, extractors: tuple[str, ...] = ("domain_cnn", "random_cnn"), seed: int = 0,
              classifier_epochs: int = 20, cache_dir: str | None = None, grid_png: str | None = None,
              log=print) -> dict:
    """Scores every candidate set of ``dataset`` with every extractor; returns the table as a dict.
    ``grid_png``: also writes the first 10 images of every candidate set, one row each."""
    import tempfile

    from tfx_gan.evaluation.config import EvaluationConfig
    from tfx_gan.evaluation.evaluate import decide_blessing
    from tfx_gan.metrics.extractors import EXTRACTORS
    from tfx_gan.evaluation.reference import build_extractor_reference, stratified_halves

    images, labels = load_dataset(dataset)
    num_classes = int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    train_idx, held_out_idx = order[:int(0.6 * len(images))], order[int(0.6 * len(images)):]
    keys = [str(i) for i in rng.permutation(len(images))]  # random keys: the seed picks the cut
    in_pool = stratified_halves([keys[i] for i in held_out_idx], labels[held_out_idx])
    ref_idx, pool_idx = held_out_idx[~in_pool], held_out_idx[in_pool]
    in_unseen = stratified_halves([keys[i] for i in pool_idx], labels[pool_idx])
    floor_idx, unseen_idx = pool_idx[~in_unseen], pool_idx[in_unseen]
    n = min(len(floor_idx), len(unseen_idx), int(np.sum(labels[pool_idx] < max(1, num_classes // 2))))
    sets = candidate_sets(images[train_idx], images[floor_idx], images[unseen_idx], images[pool_idx],
                          labels[pool_idx], n, num_classes, rng)

    if grid_png:
        from tfx_gan.training.samples import image_grid, save_png

        save_png(image_grid(np.concatenate([images[:10] for images in sets.values()]), columns=10), grid_png)
    table = {"dataset": dataset, "seed": seed, "n": n, "num_train": len(train_idx), "num_reference": len(ref_idx),
             "extractors": {}, "rows": {name: {} for name in sets}}
    config = EvaluationConfig.from_dict({"extractors": list(extractors)})
    with tempfile.TemporaryDirectory() as tmp:
        for name in extractors:
            started = time.time()
            extractor = EXTRACTORS.get(name)(cache_dir=cache_dir or tmp, data_fingerprint=f"{dataset}-{seed}",
                                             train_images=images[train_idx], train_labels=labels[train_idx],
                                             num_classes=num_classes, epochs=classifier_epochs)
            ref = build_extractor_reference(extractor, train_images=images[train_idx],
                                            reference_images=images[ref_idx], floor_images=images[floor_idx],
                                            num_samples=n, num_classes=num_classes, seed=seed)
            table["extractors"][name] = {"name": extractor.name, "floor": ref.floor}
            for row, candidate in sets.items():
                scores = ref.score(candidate, num_classes, seed)
                table["rows"][row][name] = {**scores, "fid_over_floor": scores["fid"] / ref.floor["fid"]}
            log(f"[sensitivity] {dataset} / {name}: floor FID {ref.floor['fid']:.4g} at N={n} "
                f"({time.time() - started:.0f} s)")
    floor = {name: entry["floor"] for name, entry in table["extractors"].items()}
    for row, by_extractor in table["rows"].items():
        as_summary = {name: {k: v if isinstance(v, list) else {"mean": v} for k, v in scores.items()}
                      for name, scores in by_extractor.items()}
        table["rows"][row]["blessed"], table["rows"][row]["reason"] = decide_blessing(as_summary, None, floor, config)
    return table


def markdown(tables: list[dict]) -> str:
    extractors = list(tables[0]["extractors"])
    head = ["dataset", "candidate (N images)"] + [f"{e} FID/floor" for e in extractors] + \
           ["precision / recall", "novelty", "blessed by defaults"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    datasets = sorted({t["dataset"] for t in tables}, key=[t["dataset"] for t in tables].index)
    for dataset in datasets:
        runs = [t for t in tables if t["dataset"] == dataset]
        primary = extractors[0]
        for row in runs[0]["rows"]:
            def spread(values, fmt="{:.2f}"):
                values = list(values)
                if len(values) == 1:
                    return fmt.format(values[0])
                return f"{fmt.format(np.mean(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"
            cells = [dataset, f"{row} (N={runs[0]['n']})"]
            cells += [spread(t["rows"][row][e]["fid_over_floor"] for t in runs) for e in extractors]
            cells.append(spread((t["rows"][row][primary]["precision"] for t in runs)) + " / "
                         + spread((t["rows"][row][primary]["recall"] for t in runs)))
            cells.append(spread(t["rows"][row][primary]["novelty"] for t in runs))
            blessed = [t["rows"][row]["blessed"] for t in runs]
            cells.append("yes" if all(blessed) else "no" if not any(blessed) else f"{sum(blessed)}/{len(blessed)} seeds")
            lines.append("| " + " | ".join(cells) + " |")
        floors = ", ".join(e + " " + spread([t["extractors"][e]["floor"]["fid"] for t in runs], "{:.4g}")
                           for e in extractors)
        lines.append(f"| {dataset} | floor FID (held-out vs reference) | {floors} |" + " |" * (len(head) - 3))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="digits,photo_patches")
    parser.add_argument("--extractors", default="domain_cnn,random_cnn")
    parser.add_argument("--seeds", default="0", help="comma-separated: the split, extractor and noise seeds")
    parser.add_argument("--out", default="outputs/benchmarks/sensitivity")
    args = parser.parse_args(argv)
    from benchmarks.machine import print_machine

    machine = print_machine()
    os.makedirs(args.out, exist_ok=True)
    tables = [run_suite(dataset, tuple(args.extractors.split(",")), seed=int(seed),
                        grid_png=os.path.join(args.out, f"{dataset}_seed{seed}.png"))
              for dataset in args.datasets.split(",") for seed in args.seeds.split(",")]
    with open(os.path.join(args.out, "sensitivity.json"), "w") as f:
        json.dump({"machine": machine, "tables": tables}, f, indent=2)
    text = markdown(tables)
    with open(os.path.join(args.out, "sensitivity.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

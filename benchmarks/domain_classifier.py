"""How well the evaluator's domain CNN classifies real images it never saw, per variant and dataset.

    python -m benchmarks.domain_classifier [--datasets digits,emoji,sprites] [--size 64] [--seeds 0,1,2]

The domain FID, the recognised-class shares and the CAS all rest on this classifier, so its
held-out accuracy says how far they can be trusted. Each variant trains on the benchmarks' 80%
split (benchmarks/train_quality.py ``split``) and is scored on the other 20%, which it never sees
(early stopping watches a 10% validation cut of the training images, not them):

  before     the shipped network of earlier versions: 32 filters, 20 epochs, no augmentation
  shift      + random shifts of up to 1/8 of the image
  wide       + 64 filters in the first block
  early      + up to 60 epochs, stopping after 8 without a better validation accuracy (best kept)

Prints one row per dataset and variant (accuracy mean and range over seeds, seconds) and writes the
JSON next to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

VARIANTS = {
    "before": dict(width=32, augment=False, epochs=20, patience=None),
    "shift": dict(width=32, augment=True, epochs=20, patience=None),
    "wide": dict(width=64, augment=True, epochs=20, patience=None),
    "early": dict(width=64, augment=True, epochs=60, patience=8),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="digits,emoji,sprites")
    parser.add_argument("--size", type=int, default=64, help="image size of the colour sets (digits stay 28x28)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="outputs/benchmarks/domain_classifier.json")
    args = parser.parse_args(argv)
    from benchmarks import datasets
    from benchmarks.machine import print_machine
    from benchmarks.train_quality import split, to_float
    from tfx_gan.metrics.domain_classifier import train_domain_classifier

    machine = print_machine()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name in args.datasets.split(","):
        images, labels, classes = datasets.load(name, None if name == "digits" else args.size)
        (train_x, train_y), (test_x, test_y) = split(images, labels)
        print(f"{name}: {len(train_x)} training, {len(test_x)} held-out images {images.shape[1:]}, "
              f"{len(classes)} classes (chance {1 / len(classes):.1%})", flush=True)
        for variant in args.variants.split(","):
            options = VARIANTS[variant]
            accuracies, seconds = [], []
            for seed in seeds:
                started = time.perf_counter()
                classifier = train_domain_classifier(to_float(train_x), train_y, len(classes), seed=seed,
                                                     progress=False, **options)
                seconds.append(time.perf_counter() - started)
                predicted = classifier.predict_proba(to_float(test_x)).argmax(axis=1)
                accuracies.append(float(np.mean(predicted == test_y)))
            row = {"dataset": name, "variant": variant, **options, "accuracy": float(np.mean(accuracies)),
                   "accuracy_range": [min(accuracies), max(accuracies)], "seconds": float(np.mean(seconds))}
            rows.append(row)
            print(f"  {variant:<8} held-out accuracy {row['accuracy']:.3f} ({min(accuracies):.3f}-{max(accuracies):.3f}"
                  f" over {len(seeds)} seeds), {row['seconds']:.0f} s", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "domain_classifier", "machine": machine, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training time per 1,000 steps for each image shape and architecture, on this CPU.

    python -m benchmarks.architecture_speed [--steps 10] [--out outputs/benchmarks/architecture_speed.json]

Each row is the pipeline's default training section (pipeline/configs/digits.yaml: batch 64, the
lean nets, ``mixed_precision: auto``) with the architecture and image shape of the row, trained
on random images of that shape (speed does not depend on the pixels): one warm-up call of 2 steps
(tracing), then ``--steps`` timed steps, reported as seconds per 1,000 steps (extrapolated from
the timed steps) with the nets' parameter counts. The CPU is printed first.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

# (architecture, size, channels, classes): conditional and unconditional, 28 to 128 px.
ROWS = (
    ("conditional_dcgan", 28, 1, 10),
    ("conditional_dcgan", 32, 3, 2),
    ("conditional_dcgan", 64, 3, 2),
    ("conditional_dcgan", 128, 3, 2),
    ("dcgan_28", 28, 1, None),
    ("dcgan", 64, 3, None),
    ("dcgan", 128, 3, None),
)


def seconds_per_1000_steps(architecture: str, size: int, channels: int, classes: int | None, steps: int,
                           tmp: str) -> dict:
    from benchmarks.train_throughput import make_ours, pipeline_training_config
    from tfx_gan.data.example_format import write_tfrecords

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (256, size, size, channels), dtype=np.uint8)
    labels = None if classes is None else (np.arange(len(images)) % classes).astype(np.int64)
    files = write_tfrecords(images, labels, os.path.join(tmp, f"{architecture}_{size}_{channels}.tfrecord.gz"))
    config = pipeline_training_config(architecture=architecture)
    run = make_ours(files, config, image_shape=(size, size, channels), num_classes=classes)
    run(2)  # trace and build
    started = time.perf_counter()
    run(steps)
    seconds = time.perf_counter() - started
    return {"architecture": architecture, "shape": [size, size, channels], "classes": classes,
            "batch_size": config.batch_size, "timed_steps": steps,
            "seconds_per_1000_steps": 1000 * seconds / steps,
            "generator_params": int(run.generator.count_params()),
            "discriminator_params": int(run.discriminator.count_params())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--out", default="outputs/benchmarks/architecture_speed.json")
    args = parser.parse_args(argv)
    from benchmarks.machine import print_machine

    machine = print_machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="architecture_speed_") as tmp:
        for architecture, size, channels, classes in ROWS:
            row = seconds_per_1000_steps(architecture, size, channels, classes, args.steps, tmp)
            rows.append(row)
            print(f"{architecture:<18} {size}x{size}x{channels}  {row['seconds_per_1000_steps']:7.0f} s / 1,000 steps  "
                  f"G {row['generator_params']:,} D {row['discriminator_params']:,} params", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "architecture_speed", "machine": machine, "rows": rows}, f, indent=2)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

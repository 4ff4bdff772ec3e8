"""Scaling of multi-worker training on this machine: two workers pinned to one core each against
one worker on one core, the same global batch, in one run.

    python -m benchmarks.multi_worker_scaling [--steps 600] [--batch 64] [--fid_steps 1500] [--seeds 0,1]

Every run uses the pipeline's multi-worker path (training/multi_worker.py: worker processes
with TF_CONFIG on loopback, MultiWorkerMirroredStrategy, float32 so both sides do the same maths),
the default config's conditional DCGAN on the bundled digits, each worker pinned with ``taskset``:
  1 worker,  batch B, core 0           the baseline
  2 workers, batch B (B/2 each), cores 0 and 1
  1 worker,  batch B/2, core 0         what each of the two workers computes, without all-reduce
images/s is the trainer's own (steps after the first log line, sample grids and checkpoints not
counted), median over the log lines. All-reduce share of a 2-worker step = 1 - (time of a
B/2 step alone / time of a 2-worker step): the part of a step that is communication and waiting.
Quality: --seeds runs of --fid_steps steps, 1 worker vs 2 workers, same global batch; the
trainer's training FID (random CNN features, EMA samples vs the training images) at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401

import numpy as np  # noqa: E402


def run(config, files, workers: int, cpus: list[list[int]], root: str) -> dict:
    from tfx_gan.training.multi_worker import train_on_workers

    shutil.rmtree(root, ignore_errors=True)
    print(f"training {config.train_steps} steps with {workers} worker(s), batch {config.batch_size}, cores {cpus} ...",
          flush=True)
    started = time.perf_counter()
    result = train_on_workers(config.replace(num_workers=workers), files, (28, 28, 1), 10,
                              run_dir=os.path.join(root, "run"), checkpoint_dir=os.path.join(root, "ckpt"),
                              serving_dir=os.path.join(root, "serving"),
                              config_path=os.path.join(root, "train_config.json"), log=lambda line: None,
                              cpus_per_worker=cpus)
    with open(os.path.join(root, "run", "history.json")) as f:
        history = json.load(f)
    rates = [r for r in history["images_per_sec"][1:] if np.isfinite(r)]
    fids = [row["fid_random_cnn"] for row in history.get("metrics", []) if "fid_random_cnn" in row]
    return {"workers": workers, "batch": config.batch_size, "cpus": cpus, "steps": result.steps,
            "images_per_sec": float(np.median(rates)), "wall_seconds": time.perf_counter() - started,
            "final_training_fid": fids[-1] if fids else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--fid_steps", type=int, default=1500)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default="outputs/benchmarks/multi_worker_scaling.json")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("error: needs 2 cores")
        return 2
    from benchmarks.machine import print_machine
    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.data.digits import digits_28x28
    from tfx_gan.pipeline.config import load_config

    machine = print_machine()
    base = load_config().training.replace(mixed_precision="off", log_every_steps=50, sample_every_steps=0,
                                          checkpoint_every_steps=10_000, fid_every_steps=0)
    tmp = tempfile.mkdtemp(prefix="scaling_")
    try:
        images, labels = digits_28x28()
        files = write_tfrecords(images, labels, os.path.join(tmp, "digits.tfrecord.gz"))
        speed = base.replace(train_steps=args.steps, batch_size=args.batch)
        one = run(speed, files, 1, [[0]], os.path.join(tmp, "one"))
        two = run(speed, files, 2, [[0], [1]], os.path.join(tmp, "two"))
        half = run(speed.replace(batch_size=args.batch // 2), files, 1, [[0]], os.path.join(tmp, "half"))
        for r in (one, two, half):
            print(f"{r['workers']} worker(s), batch {r['batch']}, cores {r['cpus']}: {r['images_per_sec']:.0f} images/s",
                  flush=True)
        step_two = args.batch / two["images_per_sec"]
        step_half = (args.batch // 2) / half["images_per_sec"]
        quality = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            cfg = base.replace(train_steps=args.fid_steps, batch_size=args.batch, seed=seed, fid_every_steps=args.fid_steps)
            for workers, cpus in ((1, [[0]]), (2, [[0], [1]])):
                r = run(cfg, files, workers, cpus, os.path.join(tmp, f"q{seed}-{workers}"))
                quality.append({"seed": seed, "workers": workers, "fid": r["final_training_fid"]})
                print(f"seed {seed}, {workers} worker(s): final training FID {r['final_training_fid']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = {"benchmark": "multi_worker_scaling", "machine": machine, "speed": [one, two, half],
              "speedup_2_over_1": two["images_per_sec"] / one["images_per_sec"],
              "all_reduce_share": 1 - step_half / step_two, "quality": quality}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"2 workers / 1 worker images/s: {report['speedup_2_over_1']:.2f}x; all-reduce and waiting "
          f"{100 * report['all_reduce_share']:.0f}% of a 2-worker step; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

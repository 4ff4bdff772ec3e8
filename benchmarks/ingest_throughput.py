"""Ingestion throughput: ImageExampleGen + StatisticsGen on many PNGs, Beam in-process vs 2 workers.

    python -m benchmarks.ingest_throughput [--images 50000] [--out outputs/benchmarks/ingest_throughput.json]

Writes ``--images`` 28x28 grayscale PNGs (the bundled digits, each shifted by a random offset so
the files differ) as one labelled span, then runs the pipeline's own ImageExampleGen and TFX's
StatisticsGen with LocalDagRunner twice, once per Beam setting, each in a fresh pipeline root:

    in_memory          --direct_running_mode=in_memory --direct_num_workers=1 (the local default)
    multi_processing   --direct_running_mode=multi_processing --direct_num_workers=2

The same Beam arguments reach every Beam-based component through ``data.beam_args`` in the
config. Then ``--photos`` photos as users have them (the bundled ``photo_crops``: JPEG and PNG of
48-240 px sides, grayscale, RGBA and EXIF-rotated among them) through the transform
``data.image_size: 64`` (centre crop, Lanczos, RGB), in_memory: what resizing costs per image.
Reported: seconds and images/s per component and setting.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

import tfx_gan  # noqa: F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402

SETTINGS = {
    "in_memory": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    "multi_processing": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def write_shifted_digits(span_dir: str, count: int, seed: int = 0) -> None:
    from PIL import Image

    from tfx_gan.data.digits import digits_28x28

    images, labels = digits_28x28()
    rng = np.random.default_rng(seed)
    for i in range(count):
        k = i % len(images)
        shifted = np.roll(images[k], shift=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
        folder = os.path.join(span_dir, str(labels[k]))
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(shifted).save(os.path.join(folder, f"{i:06d}.png"))
        if (i + 1) % 10_000 == 0:
            print(f"[ingest_throughput] wrote {i + 1} / {count} PNGs", flush=True)


def write_photos(span_dir: str, count: int) -> None:
    from tfx_gan.data.photo_patches import photo_crops

    for class_name, name, content in photo_crops(per_class=(count + 1) // 2):
        os.makedirs(os.path.join(span_dir, class_name), exist_ok=True)
        with open(os.path.join(span_dir, class_name, name), "wb") as f:
            f.write(content)


def run_ingestion(input_base: str, root: str, beam_args: list[str], transform=None) -> dict:
    """ImageExampleGen (+ ``transform``) + StatisticsGen under LocalDagRunner; returns seconds per component."""
    from tfx import v1 as tfx

    from tfx_gan.components.image_example_gen import ImageExampleGen

    example_gen = ImageExampleGen(input_base, transform=transform)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    seconds = {}
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest-throughput", pipeline_root=os.path.join(root, "pipeline_root"),
        components=[example_gen, statistics_gen], enable_cache=False, beam_pipeline_args=beam_args,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")))
    started = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    seconds["total"] = time.perf_counter() - started
    seconds.update(component_seconds(os.path.join(root, "metadata.sqlite")))
    return seconds


def component_seconds(metadata_path: str) -> dict:
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))
    result = {}
    for execution in store.get_executions():
        node = next(c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node")
        result[node.split(".", 1)[-1]] = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--photos", type=int, default=2_000, help="photos resized to 64x64 (0: skip)")
    parser.add_argument("--out", default="outputs/benchmarks/ingest_throughput.json")
    args = parser.parse_args(argv)
    from tfx_gan.data.image_transform import ImageTransform
    from benchmarks.machine import print_machine

    machine = print_machine()
    work = tempfile.mkdtemp(prefix="ingest_throughput_")
    try:
        input_base = os.path.join(work, "data")
        started = time.perf_counter()
        write_shifted_digits(os.path.join(input_base, "span-1"), args.images)
        print(f"[ingest_throughput] {args.images} PNGs written in {time.perf_counter() - started:.0f} s", flush=True)
        results = {}
        for name, beam_args in SETTINGS.items():
            seconds = run_ingestion(input_base, os.path.join(work, name), beam_args)
            results[name] = {"beam_args": beam_args, "seconds": seconds,
                             "images_per_second": {k: args.images / v for k, v in seconds.items() if v > 0}}
            print(f"[ingest_throughput] {name}: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()),
                  flush=True)
        if args.photos:
            photos_base = os.path.join(work, "photos")
            write_photos(os.path.join(photos_base, "span-1"), args.photos)
            count = sum(len(files) for _, _, files in os.walk(photos_base))
            seconds = run_ingestion(photos_base, os.path.join(work, "photos_root"), SETTINGS["in_memory"],
                                    ImageTransform(size=(64, 64)))
            results["photos_to_64x64_in_memory"] = {
                "beam_args": SETTINGS["in_memory"], "images": count, "seconds": seconds,
                "images_per_second": {k: count / v for k, v in seconds.items() if v > 0}}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "ingest_throughput", "images": args.images, "machine": machine,
                   "results": results}, f, indent=2)
    print(f"\n| setting | images | ImageExampleGen s (images/s) | StatisticsGen s (images/s) |\n|---|---|---|---|")
    for name, result in results.items():
        s, r = result["seconds"], result["images_per_second"]
        print(f"| {name} | {result.get('images', args.images)} | {s['ImageExampleGen']:.0f} ({r['ImageExampleGen']:.0f}) | "
              f"{s['StatisticsGen']:.0f} ({r['StatisticsGen']:.0f}) |")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

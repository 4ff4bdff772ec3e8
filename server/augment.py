"""Writes synthetic training data: N generated images of every class as a span folder of class
folders, the layout ImageExampleGen reads (data/ingest.py), so real and generated images train a
downstream model side by side.

    python -m tfx_gan.server.augment --push_dir serving/gan-digits --per_class 500 --out data/synthetic/span-1
    # -> data/synthetic/span-1/<class name>/00000.png ...  and .augment.json (model version, seed, counts;
    #    hidden, so ingestion skips it)

The images come from the generator's ``generate_png`` signature exactly as ``generate`` draws them
(server/generate.py); class folders are named by the model's class names (the data's folder
names) when it records them, else by the class index. The folder is written under a temporary
name and renamed into place, and an existing folder is never written into.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid

from tfx_gan.server.generate import GenerateError, PushDirSource, ServerSource, generate_pngs


def write_class_folders(source, per_class: int, out_dir: str, seed: int = 0, batch_size: int = 64) -> dict:
    """``per_class`` generated PNGs of every class of ``source`` in ``out_dir/<class>/``; returns
    the manifest also written to ``out_dir/.augment.json`` (hidden: ingestion ignores it)."""
    if not source.conditional or not source.num_classes:
        raise GenerateError(f"the model ({source.description}) is not class-conditional: synthetic training data "
                            "needs a generator that takes labels")
    if per_class <= 0:
        raise GenerateError(f"--per_class must be positive, got {per_class}")
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise GenerateError(f"{out_dir} already exists and is not empty: choose a new folder (nothing was written)")
    names = source.class_names or [str(k) for k in range(source.num_classes)]
    for name in names:
        # the names come from the model (or a server): each must be one plain folder name
        if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name
                or name.startswith(".")):
            raise GenerateError(f"the model's class name {name!r} is not a plain folder name; refusing to write it")
    if len(set(names)) != len(names):
        raise GenerateError(f"the model's class names repeat ({names}); each class needs its own folder")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(os.path.abspath(out_dir))}.{uuid.uuid4().hex}.partial")
    try:
        for label, name in enumerate(names):
            folder = os.path.join(staging, name)
            os.makedirs(folder)
            # one seed per class, derived from --seed: adding classes does not change the others' images
            for i, png in enumerate(generate_pngs(source, per_class, seed=seed * 1_000 + label, label=label,
                                                  batch_size=batch_size)):
                with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
                    f.write(png)
        manifest = {"source": source.description, "version": source.version, "seed": seed, "per_class": per_class,
                    "classes": names, "num_images": per_class * len(names)}
        with open(os.path.join(staging, ".augment.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty (checked above): replaced by the complete folder
        os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the `augment` command."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--push_dir", help="push directory; its newest complete version is loaded in-process")
    source.add_argument("--server", help="URL of a running server, e.g. http://127.0.0.1:8501")
    parser.add_argument("--model_name", default="gan", help="model name on the server (default: %(default)s)")
    parser.add_argument("--per_class", type=int, required=True, help="generated images per class")
    parser.add_argument("--out", "--out_dir", dest="out_dir", required=True,
                        help="new span folder to write the class folders into (must not exist or be empty)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per generate_png call (default: %(default)s)")
    parser.add_argument("--settle_s", type=float, default=1.0,
                        help="skip versions modified less than this many seconds ago (default: %(default)s)")


def run(args) -> int:
    try:
        source = PushDirSource(args.push_dir, settle_s=args.settle_s) if args.push_dir else ServerSource(args.server, args.model_name)
        manifest = write_class_folders(source, args.per_class, args.out_dir, seed=args.seed, batch_size=args.batch_size)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {manifest['num_images']} images ({args.per_class} per class, {len(manifest['classes'])} classes) "
          f"to {args.out_dir} ({manifest['source']})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfx_gan.server.augment", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

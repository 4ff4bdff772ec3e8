"""Real image sets nobody here made, at the resolution a benchmark asks for.

    python -m benchmarks.datasets [--name sprites] [--out outputs/benchmarks/datasets]   # write the span folder

``digits``   the bundled digits (./gan make-data): 1,797 scans, 28x28 grayscale, 10 classes.
``emoji``    the bundled Twemoji (./gan make-data --dataset emoji): 1,898 icons, 72x72 RGBA, 9 categories.
``sprites``  The Battle for Wesnoth's unit sprites from Debian's package ``wesnoth-1.16-data``
             (GPL-2+ art, fetched with ``apt-get download`` and unpacked, never installed): every
             72x72 image under ``data/core/images/units/<race>/`` of the races with at least 90 of
             them: 4,198 sprites (RGBA, characters on a transparent background, animation frames
             included) in 15 classes. Needs a Debian machine that reaches Debian's archive.

``load(name, size)`` reads a set's span folder with the pipeline's own image transform
(``data.image_size: size``: Lanczos, centre crop, transparency on white, RGB) and caches the uint8
arrays in ``outputs/benchmarks/datasets/``.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import tempfile

import numpy as np

CACHE = os.path.join("outputs", "benchmarks", "datasets")
SPRITES_PACKAGE = "wesnoth-1.16-data"
SPRITES_UNITS = "usr/share/games/wesnoth/1.16/data/core/images/units"
SPRITES_MIN_PER_CLASS = 90
SPRITE_SIZE = (72, 72)


def _write_sprites(span_dir: str) -> None:
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", SPRITES_PACKAGE], cwd=tmp, check=True, capture_output=True)
        package = glob.glob(os.path.join(tmp, "*.deb"))[0]
        subprocess.run(["dpkg-deb", "-x", package, os.path.join(tmp, "root")], check=True)
        units = os.path.join(tmp, "root", SPRITES_UNITS)
        by_class: dict[str, list[str]] = {}
        for race in sorted(os.listdir(units)):
            if not os.path.isdir(os.path.join(units, race)):
                continue
            for folder, _, files in sorted(os.walk(os.path.join(units, race))):
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    if name.endswith(".png") and Image.open(path).size == SPRITE_SIZE:
                        by_class.setdefault(race, []).append(path)
        staging = span_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        for race, paths in by_class.items():
            if len(paths) < SPRITES_MIN_PER_CLASS:
                continue
            os.makedirs(os.path.join(staging, race))
            for path in paths:
                relative = os.path.relpath(path, os.path.join(units, race)).replace(os.sep, "_")
                shutil.copy(path, os.path.join(staging, race, relative))
        os.rename(staging, span_dir)


def span_dir(name: str, out: str = CACHE) -> str:
    """The span folder of a set, written first when missing."""
    from tfx_gan.data.bundled import write_span

    if name in ("digits", "emoji"):
        return write_span(name)
    if name != "sprites":
        raise ValueError(f"unknown dataset {name!r}: digits, emoji or sprites")
    path = os.path.join(out, "sprites", "span-1")
    if not os.path.isdir(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_sprites(path)
    return path


def load(name: str, size: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 [N, H, W, C], int64 labels [N], class names) of a set, resized to ``size`` (None: as
    found), in the order of its sorted class folders and file names."""
    from PIL import Image

    from tfx_gan.data.image_transform import ImageTransform, apply

    cache = os.path.join(CACHE, f"{name}-{size or 'native'}.npz")
    if os.path.exists(cache):
        stored = np.load(cache)
        return stored["images"], stored["labels"], [str(c) for c in stored["classes"]]
    root = span_dir(name)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    transform = ImageTransform(size=(size, size)) if size else None
    images, labels = [], []
    for label, class_name in enumerate(classes):
        for file_name in sorted(os.listdir(os.path.join(root, class_name))):
            with Image.open(os.path.join(root, class_name, file_name)) as image:
                if transform is None:
                    array = np.asarray(image)
                else:
                    channels = 3 if name != "digits" else 1
                    array = apply(image, transform.with_channels(channels))
            images.append(array if array.ndim == 3 else array[..., None])
            labels.append(label)
    os.makedirs(CACHE, exist_ok=True)
    images_array, labels_array = np.stack(images).astype(np.uint8), np.array(labels, np.int64)
    np.savez(cache, images=images_array, labels=labels_array, classes=np.array(classes))
    return images_array, labels_array, classes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="sprites", choices=("digits", "emoji", "sprites"))
    args = parser.parse_args(argv)
    print(span_dir(args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

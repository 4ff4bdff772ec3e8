"""The datasets that ship with the project, written as span folders the pipeline ingests.

    ./gan make-data                          # data/digits/span-1/<0..9>/*.png
    ./gan make-data --dataset photo_patches  # data/photo_patches/span-1/{china,flower}/*.png
    ./gan make-data --dataset photo_crops    # data/photo_crops/span-1/{china,flower}/*.jpg|png:
                                             # mixed sizes and modes (train with data.image_size)
    ./gan make-data --dataset emoji          # data/emoji/span-1/<category>/*.png: 1,898 colour icons,
                                             # 72x72 RGBA in 9 categories (train with data.image_size)

All are built from images inside installed packages (nothing is downloaded): scikit-learn's
digit scans (data/digits.py) and its two sample photographs (data/photo_patches.py), and Twemoji's
icons (data/emoji.py).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
from tfx_gan.data import digits, emoji, photo_patches

DATA_DIR = os.path.dirname(os.path.abspath(__file__))


def _datasets() -> dict:

    # name -> function returning (uint8 images [N, H, W] or [N, H, W, 3], class folder name per
    # image), written as PNGs, or a list of (class folder, file name, file bytes), written as given.
    return {"digits": digits.digits_span, "photo_patches": photo_patches.photo_patches_span,
            "photo_crops": photo_patches.photo_crops, "emoji": emoji.emoji_icons}


def default_dir(name: str) -> str:
    return os.path.join(DATA_DIR, name)


def write_span(name: str, out_dir: str | None = None, span: int = 1, overwrite: bool = False) -> str:
    """Writes dataset ``name`` as ``<out_dir>/span-<span>/<class>/<index>.png``; returns the span dir.

    The span is written to a temporary folder first and renamed into place, so an interrupted
    run never leaves a half-written span for the pipeline to ingest.
    """
    datasets = _datasets()
    if name not in datasets:
        raise ValueError(f"unknown dataset {name!r}; bundled datasets: {', '.join(sorted(datasets))}")
    out_dir = out_dir or default_dir(name)
    span_dir = os.path.join(out_dir, f"span-{span}")
    if os.path.exists(span_dir):
        if not overwrite:
            return span_dir
        shutil.rmtree(span_dir)
    os.makedirs(out_dir, exist_ok=True)
    made = datasets[name]()
    tmp = tempfile.mkdtemp(prefix=".span-", dir=out_dir)
    if isinstance(made, list):  # files as they are
        for class_name, file_name, content in made:
            os.makedirs(os.path.join(tmp, class_name), exist_ok=True)
            with open(os.path.join(tmp, class_name, file_name), "wb") as f:
                f.write(content)
    else:
        for index, (image, class_name) in enumerate(zip(*made)):
            class_dir = os.path.join(tmp, str(class_name))
            os.makedirs(class_dir, exist_ok=True)
            Image.fromarray(np.asarray(image, np.uint8)).save(os.path.join(class_dir, f"{index:04d}.png"))
    os.rename(tmp, span_dir)
    return span_dir


def bundled_dataset_at(input_base: str) -> str | None:
    """The name of the bundled dataset whose default folder is ``input_base`` (any spelling of it:
    relative to the working directory, ``..`` or a symlink), else None."""
    for name in _datasets():
        if os.path.realpath(input_base) == os.path.realpath(default_dir(name)):
            return name
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits", choices=sorted(_datasets()), help="default: %(default)s")
    parser.add_argument("--out", "--out_dir", dest="out_dir", default=None,
                        help="where span-<N>/ is written (default: the repository's data/<dataset>)")
    parser.add_argument("--span", type=int, default=1, help="span number: writes span-<N>/ (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace span-<N>/ when it exists (default: keep it)")


def run(args: argparse.Namespace) -> int:
    print(f"{args.dataset}: {write_span(args.dataset, args.out_dir, args.span, args.overwrite)}")
    return 0

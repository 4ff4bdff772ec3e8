"""The bundled dataset: scikit-learn's 1,797 real handwritten digit scans at MNIST geometry.

`sklearn.datasets.load_digits` ships the UCI optdigits scans inside the wheel (8x8, 16 grey
levels, 10 classes), so nothing is downloaded. MNIST centres each digit in a 20x20 box inside a
28x28 frame; we do the same: bicubic upscaling of the 8x8 scan to 20x20, then 4 px of padding.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits")


def digits_28x28() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as (uint8 [N, 28, 28], int64 labels [N])."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    scans = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)  # 0..16 grey levels -> 0..255
    out = np.zeros((len(scans), 28, 28), np.uint8)
    for i, scan in enumerate(scans):
        big = Image.fromarray(scan, mode="L").resize((20, 20), Image.BICUBIC)
        out[i, 4:24, 4:24] = np.asarray(big)
    return out, bunch.target.astype(np.int64)


def write_digits(out_dir: str = DEFAULT_DIR, span: int = 1, overwrite: bool = False) -> str:
    """Writes `<out_dir>/span-<span>/<class>/<index>.png`; returns the span directory.

    The span is written to a temporary folder first and renamed into place, so an interrupted
    run never leaves a half-written span for the pipeline to ingest.
    """
    span_dir = os.path.join(out_dir, f"span-{span}")
    if os.path.exists(span_dir):
        if not overwrite:
            return span_dir
        shutil.rmtree(span_dir)
    os.makedirs(out_dir, exist_ok=True)
    images, labels = digits_28x28()
    tmp = tempfile.mkdtemp(prefix=".span-", dir=out_dir)
    for index, (image, label) in enumerate(zip(images, labels)):
        class_dir = os.path.join(tmp, str(label))
        os.makedirs(class_dir, exist_ok=True)
        Image.fromarray(image, mode="L").save(os.path.join(class_dir, f"{index:04d}.png"))
    os.rename(tmp, span_dir)
    return span_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out_dir", default=DEFAULT_DIR, help="where span-<N>/ is written")
    parser.add_argument("--span", type=int, default=1)
    parser.add_argument("--overwrite", action="store_true")


def run(args: argparse.Namespace) -> int:
    span_dir = write_digits(args.out_dir, args.span, args.overwrite)
    print(f"digits: {span_dir}")
    return 0

"""The bundled digits: scikit-learn's 1,797 real handwritten digit scans at MNIST geometry.

`sklearn.datasets.load_digits` ships the UCI optdigits scans inside the wheel (8x8, 16 grey
levels, 10 classes), so nothing is downloaded. MNIST centres each digit in a 20x20 box inside a
28x28 frame; we do the same: bicubic upscaling of the 8x8 scan to 20x20, then 4 px of padding.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


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


def digits_span() -> tuple[np.ndarray, list[str]]:
    """The images and their class folders ("0".."9") for data/bundled.py."""
    images, labels = digits_28x28()
    return images, [str(label) for label in labels]

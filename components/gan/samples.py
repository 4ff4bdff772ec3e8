"""Pictures people would rather see than read: sample grids and loss curves (Matplotlib, Agg)."""
from __future__ import annotations

import math
import os

import numpy as np


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tiles images in [-1, 1] ([N, H, W, C]) into one uint8 picture with 2 px gaps."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    pad = 2
    grid = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.uint8)
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for i, image in enumerate(pixels):
        r, col = divmod(i, columns)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = image
    return grid[..., 0] if c == 1 else grid


def save_image_grid(images: np.ndarray, path: str, columns: int | None = None, title: str | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = image_grid(images, columns)
    scale = 4 if grid.shape[0] < 200 else 2
    fig = plt.figure(figsize=(grid.shape[1] * scale / 100, grid.shape[0] * scale / 100 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1 if not title else 1 - 0.3 / fig.get_figheight()])
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    import io

    import tensorflow as tf

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    with tf.io.gfile.GFile(path, "wb") as f:  # local paths and gs:// artifact URIs alike
        f.write(buffer.getvalue())
    plt.close(fig)
    return path

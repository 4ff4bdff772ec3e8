"""Pictures people would rather see than read: sample grids and loss curves (Matplotlib, Agg)."""
from __future__ import annotations

import math
import os

import numpy as np


def _write(data: bytes, path: str) -> str:
    import tensorflow as tf

    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    with tf.io.gfile.GFile(path, "wb") as f:  # local paths and gs:// artifact URIs alike
        f.write(data)
    return path


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


def save_png(pixels: np.ndarray, path: str) -> str:
    """uint8 [H, W] or [H, W, C] -> PNG file, without Matplotlib (cheap enough to call every epoch)."""
    import tensorflow as tf

    pixels = np.asarray(pixels, np.uint8)
    return _write(tf.io.encode_png(pixels[..., None] if pixels.ndim == 2 else pixels).numpy(), path)


def save_image_grid(images: np.ndarray, path: str, columns: int | None = None, title: str | None = None) -> str:
    plt = pyplot()
    grid = image_grid(images, columns)
    scale = 4 if grid.shape[0] < 200 else 2
    fig = plt.figure(figsize=(grid.shape[1] * scale / 100, grid.shape[0] * scale / 100 + (0.3 if title else 0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1 if not title else 1 - 0.3 / fig.get_figheight()])
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def save_grid_strip(titled_grids: list[tuple[str, np.ndarray]], path: str) -> str:
    """Grids (uint8, from ``image_grid``) side by side in one PNG, each under its title."""
    plt = pyplot()
    scale = 2 if titled_grids[0][1].shape[0] < 400 else 1
    height = max(grid.shape[0] for _, grid in titled_grids) * scale / 100
    widths = [grid.shape[1] for _, grid in titled_grids]
    fig, axes = plt.subplots(1, len(titled_grids), squeeze=False, gridspec_kw={"width_ratios": widths},
                             figsize=(sum(widths) * scale / 100 + 0.1 * len(widths), height + 0.45), dpi=100)
    for ax, (title, grid) in zip(axes[0], titled_grids):
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=16)  # readable when the wide strip is shown scaled down
        ax.axis("off")
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.01, top=1 - 0.4 / (height + 0.45), wspace=0.05)
    return save_figure(fig, path)


def save_loss_curve(history: dict, path: str) -> str | None:
    """Losses and D's accuracies on real/fake against the step (``train_gan``'s history), and the
    training FID (its ``metrics`` rows) when there is one."""
    if not history.get("step"):
        return None
    plt = pyplot()
    fid_rows = history.get("metrics") or []
    fid_keys = sorted({k for row in fid_rows for k in row if k.startswith("fid_") and k != "fid_seconds"})
    fig, axes = plt.subplots(3 if fid_keys else 2, 1, figsize=(8, 8.5 if fid_keys else 6), sharex=True)
    ax1, ax2 = axes[0], axes[1]
    ax1.plot(history["step"], history["d_loss"], label="D loss")
    ax1.plot(history["step"], history["g_loss"], label="G loss")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(history["step"], history["d_real_acc"], label="D accuracy on real")
    ax2.plot(history["step"], history["d_fake_acc"], label="D accuracy on fake")
    ax2.set_ylim(-0.02, 1.02)
    ax2.legend()
    for key in fid_keys:
        rows = [row for row in fid_rows if key in row]
        axes[2].plot([row["step"] for row in rows], [row[key] for row in rows], marker="o", label=key)
    if fid_keys:
        axes[2].set_ylabel("training FID")
        axes[2].legend()
    axes[-1].set_xlabel("generator step")
    fig.tight_layout()
    return save_figure(fig, path)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> str:
    """Writes a Matplotlib figure as a PNG to ``path`` (local or a TF filesystem) and closes it."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    pyplot().close(fig)
    return _write(buffer.getvalue(), path)

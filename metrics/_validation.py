"""Input checks shared by the metrics: every bad input becomes a ValueError that names it."""
from __future__ import annotations

import numpy as np


def as_feature_matrix(x, name: str, min_rows: int = 1) -> np.ndarray:
    """Returns ``x`` as a finite float64 [N, d] array with N >= min_rows and d >= 1."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}: {e}") from None
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [num_samples, feature_dim], got shape {x.shape}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} has feature dimension 0 (shape {x.shape})")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} have different feature dimensions: {a.shape[-1]} vs {b.shape[-1]}"
        )


def as_images(images, name: str = "images") -> np.ndarray:
    """Returns ``images`` as a finite float32 [N, H, W, C] array in the generator range [-1, 1]."""
    try:
        images = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric array, got {type(images).__name__}: {e}") from None
    if images.ndim != 4:
        raise ValueError(f"{name} must be 4-D [N, H, W, C], got shape {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {images.shape})")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"{name} contains NaN or infinite values")
    # A little slack for rounding; anything further out is almost surely [0, 1] or [0, 255] data.
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"{name} must be scaled to [-1, 1] (the generator range), got values in [{lo:.3g}, {hi:.3g}]")
    return images


def as_int_positive(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)

"""Batched Euclidean k-nearest-neighbour helpers for the manifold metrics (precision/recall,
density/coverage). Distances are computed block by block, so memory stays O(block x N)."""
from __future__ import annotations

import numpy as np

_BLOCK_ROWS = 1024


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|^2 for all pairs, via |a|^2 + |b|^2 - 2 a.b (clipped at 0 against rounding)."""
    sq = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(sq, 0.0)


def kth_neighbour_radii_sq(points: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point in the same set."""
    if k >= points.shape[0]:
        raise ValueError(f"k={k} needs more than k points in a set, got {points.shape[0]}")
    radii = np.empty(points.shape[0])
    for start in range(0, points.shape[0], _BLOCK_ROWS):
        block = squared_distances(points[start:start + _BLOCK_ROWS], points)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        radii[start:start + _BLOCK_ROWS] = np.partition(block, k, axis=1)[:, k]
    return radii


def count_balls_containing(queries: np.ndarray, centres: np.ndarray, radii_sq: np.ndarray) -> np.ndarray:
    """For each query, how many balls B(centre_i, radius_i) contain it (boundary included)."""
    counts = np.empty(queries.shape[0], dtype=np.int64)
    for start in range(0, queries.shape[0], _BLOCK_ROWS):
        block = squared_distances(queries[start:start + _BLOCK_ROWS], centres)
        counts[start:start + _BLOCK_ROWS] = np.sum(block <= radii_sq[None, :], axis=1)
    return counts


def nearest_centre(queries: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to each query's nearest centre."""
    index = np.empty(queries.shape[0], dtype=np.int64)
    dist_sq = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], _BLOCK_ROWS):
        block = squared_distances(queries[start:start + _BLOCK_ROWS], centres)
        index[start:start + _BLOCK_ROWS] = np.argmin(block, axis=1)
        dist_sq[start:start + _BLOCK_ROWS] = block[np.arange(block.shape[0]), index[start:start + _BLOCK_ROWS]]
    return index, dist_sq

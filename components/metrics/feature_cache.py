"""A shared on-disk cache of FeatureStats, so the real (reference) side of FID is computed once.

Key: (extractor, data fingerprint, N) -> ``<root>/<extractor key>/<data fingerprint>/n<N>.npz``.
FID depends on all three, so a change in any one is a different entry. The extractor key is its
``name`` plus, for extractors trained on a data version (the domain classifier), its
``fingerprint``: two domain classifiers share a name but not a feature space.
Writes are atomic (temporary file + rename), so concurrent runs never read a partial file.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from components.metrics import _io
from components.metrics._validation import as_int_positive
from components.metrics.fid import FeatureStats

# Images per extractor call: features are folded into the statistics chunk by chunk, so memory
# does not grow with N.
CHUNK_SIZE = 2048


def _check_key_part(value, name: str) -> str:
    if not isinstance(value, str) or not value or value.startswith(".") or any(c in value for c in "/\\"):
        raise ValueError(f"{name} must be a non-empty string usable as a directory name, got {value!r}")
    return value


def extractor_key(extractor) -> str:
    """``name``, or ``name@fingerprint`` when the extractor was trained on a data version."""
    name = getattr(extractor, "name", extractor)
    fingerprint = getattr(extractor, "fingerprint", None)
    key = f"{name}@{fingerprint}" if fingerprint else name
    return _check_key_part(key, "extractor key")


def compute_feature_stats(extractor, images, batch_size: int = 256) -> FeatureStats:
    """FeatureStats of ``extractor.features`` over ``images``, computed chunk by chunk."""
    stats = FeatureStats.empty(int(extractor.feature_dim))
    for start in range(0, len(images), CHUNK_SIZE):
        chunk = extractor.features(images[start:start + CHUNK_SIZE], batch_size=batch_size)
        stats = stats.merge(FeatureStats.from_features(chunk))
    return stats


class FeatureStatsCache:
    """FeatureStats on disk (local or ``gs://``) under ``root``, keyed by extractor, data and N."""

    def __init__(self, root: str):
        if not isinstance(root, str) or not root:
            raise ValueError(f"root must be a non-empty path, got {root!r}")
        self.root = root

    def path(self, extractor, data_fingerprint: str, num_samples: int) -> str:
        num_samples = as_int_positive(num_samples, "num_samples")
        fingerprint = _check_key_part(data_fingerprint, "data_fingerprint")
        return os.path.join(self.root, extractor_key(extractor), fingerprint, f"n{num_samples}.npz")

    def get(self, extractor, data_fingerprint: str, num_samples: int) -> FeatureStats | None:
        path = self.path(extractor, data_fingerprint, num_samples)
        return FeatureStats.from_npz(path) if _io.exists(path) else None

    def put(self, extractor, data_fingerprint: str, stats: FeatureStats) -> str:
        if not isinstance(stats, FeatureStats):
            raise ValueError(f"stats must be FeatureStats, got {type(stats).__name__}")
        return stats.to_npz(self.path(extractor, data_fingerprint, stats.count))

    def get_or_compute(
        self,
        extractor,
        data_fingerprint: str,
        images: np.ndarray | Callable[[], np.ndarray],
        *,
        num_samples: int | None = None,
        batch_size: int = 256,
    ) -> FeatureStats:
        """Cached stats, or computes them with ``extractor`` and stores them.

        ``images`` may be a zero-argument function returning them, so a cache hit never loads
        the data; then ``num_samples`` (the N of the key) is required.
        """
        if callable(images):
            if num_samples is None:
                raise ValueError("num_samples is required when images is a function (it is part of the cache key)")
        else:
            num_samples = len(images) if num_samples is None else num_samples
        num_samples = as_int_positive(num_samples, "num_samples")
        cached = self.get(extractor, data_fingerprint, num_samples)
        if cached is not None:
            return cached
        if callable(images):
            images = images()
        if len(images) != num_samples:
            raise ValueError(f"expected {num_samples} images for this cache entry, got {len(images)}")
        stats = compute_feature_stats(extractor, images, batch_size=batch_size)
        self.put(extractor, data_fingerprint, stats)
        return stats

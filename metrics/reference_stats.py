"""Beam transforms that compute the reference FeatureStats of a (large) real image set.

    stats = images | ComputeReferenceStats("/cache/domain_cnn/<fingerprint>")

Images are batched, each worker loads the extractor once in ``DoFn.setup`` and emits one
FeatureStats per batch, and a CombineFn adds them up (count, sum, sum of outer products are
plain sums, so the merge order does not matter). The result is a one-element PCollection.
"""
from __future__ import annotations

import functools
from typing import Callable

import apache_beam as beam
import numpy as np

from tfx_gan.metrics.domain_classifier import DomainClassifier
from tfx_gan.metrics.fid import FeatureStats


class MergeFeatureStatsFn(beam.CombineFn):
    """Sums FeatureStats; the accumulator is (count, sum, outer_sum), with None sums until the first input."""

    def create_accumulator(self):
        return 0, None, None

    def add_input(self, accumulator, stats: FeatureStats):
        if not isinstance(stats, FeatureStats):
            raise ValueError(f"MergeFeatureStatsFn expects FeatureStats inputs, got {type(stats).__name__}")
        return self.merge_accumulators([accumulator, (stats.count, stats.feature_sum, stats.outer_sum)])

    def merge_accumulators(self, accumulators):
        count, total, outer = 0, None, None
        for acc_count, acc_sum, acc_outer in accumulators:
            if acc_sum is None:
                continue
            if total is None:
                total, outer = np.array(acc_sum, dtype=np.float64), np.array(acc_outer, dtype=np.float64)
            elif acc_sum.shape != total.shape:
                raise ValueError(f"cannot merge FeatureStats of dimensions {total.shape[0]} and {acc_sum.shape[0]}")
            else:
                total += acc_sum
                outer += acc_outer
            count += acc_count
        return count, total, outer

    def extract_output(self, accumulator):
        count, total, outer = accumulator
        if total is None:
            raise ValueError("ComputeReferenceStats received no images: reference statistics need at least one")
        return FeatureStats(count, total, outer)


def _as_loader(extractor_loader) -> Callable[[], object]:
    if isinstance(extractor_loader, str):
        return functools.partial(DomainClassifier.load, extractor_loader)
    if not callable(extractor_loader):
        raise ValueError(
            "extractor_loader must be a saved DomainClassifier directory or a picklable zero-argument "
            f"function returning an extractor, got {type(extractor_loader).__name__}"
        )
    return extractor_loader


class ExtractFeatureStatsFn(beam.DoFn):
    """Batch of [H, W, C] images -> one FeatureStats of their features."""

    def __init__(self, extractor_loader, batch_size: int = 256):
        self._loader = _as_loader(extractor_loader)
        self._batch_size = batch_size
        self._extractor = None

    def setup(self):
        self._extractor = self._loader()

    def process(self, batch):
        images = np.stack([np.asarray(image, dtype=np.float32) for image in batch])
        yield FeatureStats.from_features(self._extractor.features(images, batch_size=self._batch_size))


class ComputeReferenceStats(beam.PTransform):
    """PCollection of [H, W, C] float32 images in [-1, 1] -> PCollection of one FeatureStats.

    ``extractor_loader``: a saved DomainClassifier directory, or a picklable function that
    returns an object with ``features(images, batch_size)`` (called once per worker).
    """

    def __init__(self, extractor_loader, *, min_batch_size: int = 32, max_batch_size: int = 256):
        super().__init__()
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(f"need 1 <= min_batch_size <= max_batch_size, got {min_batch_size}, {max_batch_size}")
        self._loader = _as_loader(extractor_loader)
        self._min_batch_size = min_batch_size
        self._max_batch_size = max_batch_size

    def expand(self, images):
        return (
            images
            | "BatchImages" >> beam.BatchElements(min_batch_size=self._min_batch_size, max_batch_size=self._max_batch_size)
            | "ExtractFeatureStats" >> beam.ParDo(ExtractFeatureStatsFn(self._loader, self._max_batch_size))
            | "MergeFeatureStats" >> beam.CombineGlobally(MergeFeatureStatsFn())
        )

import os

import numpy as np
import pytest

from components.metrics.feature_cache import FeatureStatsCache, compute_feature_stats, extractor_key
from components.metrics.fid import FeatureStats


class FlattenExtractor:
    """Stand-in extractor: features = flattened pixels. Counts its calls."""

    name = "flatten"
    feature_dim = 16

    def __init__(self, fingerprint=None):
        self.calls = 0
        self.fingerprint = fingerprint

    def features(self, images, batch_size=256):
        self.calls += 1
        return np.asarray(images, np.float64).reshape(len(images), -1)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 4, 4, 1)).astype(np.float32)


def test_real_side_is_computed_once(tmp_path):
    cache, extractor = FeatureStatsCache(str(tmp_path)), FlattenExtractor()
    real = images(50)
    first = cache.get_or_compute(extractor, "mnist-v1", real)
    calls = extractor.calls
    second = cache.get_or_compute(extractor, "mnist-v1", lambda: pytest.fail("cache hit must not load images"),
                                  num_samples=50)
    assert extractor.calls == calls
    expected = FeatureStats.from_features(real.reshape(50, -1))
    assert second.count == first.count == 50
    np.testing.assert_allclose(second.covariance(), expected.covariance(), rtol=1e-12, atol=1e-12)
    assert os.listdir(tmp_path / "flatten" / "mnist-v1") == ["n50.npz"]


def test_key_separates_extractor_data_and_n(tmp_path):
    cache = FeatureStatsCache(str(tmp_path))
    paths = {
        cache.path(FlattenExtractor(), "d1", 10),
        cache.path(FlattenExtractor(), "d2", 10),
        cache.path(FlattenExtractor(), "d1", 20),
        cache.path(FlattenExtractor(fingerprint="clf-a"), "d1", 10),
        cache.path("inception_v3_pool3", "d1", 10),
    }
    assert len(paths) == 5
    assert extractor_key(FlattenExtractor(fingerprint="clf-a")) == "flatten@clf-a"
    assert cache.get(FlattenExtractor(), "d1", 10) is None


def test_chunked_stats_equal_one_pass(monkeypatch):
    import components.metrics.feature_cache as feature_cache

    monkeypatch.setattr(feature_cache, "CHUNK_SIZE", 7)
    real = images(30, seed=1)
    extractor = FlattenExtractor()
    stats = compute_feature_stats(extractor, real)
    assert extractor.calls == 5
    whole = FeatureStats.from_features(real.reshape(30, -1))
    np.testing.assert_allclose(stats.outer_sum, whole.outer_sum, rtol=1e-12)


def test_bad_inputs_raise(tmp_path):
    cache = FeatureStatsCache(str(tmp_path))
    with pytest.raises(ValueError, match="num_samples is required"):
        cache.get_or_compute(FlattenExtractor(), "d1", lambda: images(3))
    with pytest.raises(ValueError, match="expected 5 images"):
        cache.get_or_compute(FlattenExtractor(), "d1", lambda: images(3), num_samples=5)
    with pytest.raises(ValueError, match="data_fingerprint"):
        cache.path(FlattenExtractor(), "../escape", 3)
    with pytest.raises(ValueError, match="must be FeatureStats"):
        cache.put(FlattenExtractor(), "d1", np.zeros(3))

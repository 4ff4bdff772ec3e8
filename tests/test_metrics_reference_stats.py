import numpy as np
import pytest

apache_beam = pytest.importorskip("apache_beam")
import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from tfx_gan.metrics.domain_classifier import train_domain_classifier  # noqa: E402
from tfx_gan.metrics.fid import FeatureStats  # noqa: E402
from tfx_gan.metrics.reference_stats import ComputeReferenceStats, MergeFeatureStatsFn  # noqa: E402


def test_beam_reference_stats_equal_direct_stats(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(70, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 2, size=70)
    classifier = train_domain_classifier(images, labels, 2, epochs=1, feature_dim=12, validation_fraction=0.0)
    saved = classifier.save(str(tmp_path / "clf"))
    out = str(tmp_path / "stats.npz")

    with beam.Pipeline(runner="DirectRunner", options=PipelineOptions(direct_num_workers=1)) as pipeline:
        _ = (
            pipeline
            | beam.Create(list(images))
            | ComputeReferenceStats(saved, min_batch_size=8, max_batch_size=16)
            | beam.Map(lambda stats: stats.to_npz(out))
        )

    from_beam = FeatureStats.from_npz(out)
    direct = FeatureStats.from_features(classifier.features(images))
    assert from_beam.count == 70
    np.testing.assert_allclose(from_beam.mean(), direct.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_beam.covariance(), direct.covariance(), rtol=1e-4, atol=1e-6)


def test_combine_fn_merges_like_feature_stats():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    fn = MergeFeatureStatsFn()
    left = fn.add_input(fn.create_accumulator(), FeatureStats.from_features(x[:15]))
    right = fn.add_input(fn.add_input(fn.create_accumulator(), FeatureStats.from_features(x[15:30])),
                         FeatureStats.from_features(x[30:]))
    merged = fn.extract_output(fn.merge_accumulators([left, fn.create_accumulator(), right]))
    whole = FeatureStats.from_features(x)
    assert merged.count == 40
    np.testing.assert_allclose(merged.outer_sum, whole.outer_sum, rtol=1e-12)
    np.testing.assert_allclose(merged.feature_sum, whole.feature_sum, rtol=1e-12)


def test_combine_fn_bad_inputs_raise():
    fn = MergeFeatureStatsFn()
    with pytest.raises(ValueError, match="no images"):
        fn.extract_output(fn.create_accumulator())
    with pytest.raises(ValueError, match="expects FeatureStats"):
        fn.add_input(fn.create_accumulator(), np.zeros(3))
    acc = fn.add_input(fn.create_accumulator(), FeatureStats.from_features(np.ones((2, 3))))
    with pytest.raises(ValueError, match="dimensions 3 and 4"):
        fn.add_input(acc, FeatureStats.from_features(np.ones((2, 4))))
    with pytest.raises(ValueError, match="extractor_loader"):
        ComputeReferenceStats(42)

"""The evaluation options, the metric and extractor registries, the reference artifact, the
blessing decision and generator sampling, without TFX."""
import math

import numpy as np
import pytest

from components.evaluation import EvaluationConfig, decide_blessing, generate_images, score_samples
from components.metrics.extractors import EXTRACTORS, load_extractor
from components.metrics.sample_metrics import CONFIDENCE_THRESHOLD, METRICS
from components.options import ConfigError


def Thresholds(max_fid, max_fid_over_floor, min_recall, regression_tolerance):  # noqa: N802 (reads like a type)
    return EvaluationConfig.from_dict({"max_fid": max_fid, "max_fid_over_floor": max_fid_over_floor,
                                       "min_recall": min_recall, "regression_tolerance": regression_tolerance})


LOOSE = Thresholds(max_fid=None, max_fid_over_floor=None, min_recall=None, regression_tolerance=0.0)


def candidate(fid, floor=1.0, recall=0.5):
    return {"fid": fid, "fid_floor": floor, "recall": recall}


def test_first_model_is_judged_on_thresholds_alone():
    assert decide_blessing(candidate(10.0), None, LOOSE) == (
        True, "blessed: FID 10.00 is within the thresholds (no model is serving yet)")
    blessed, reason = decide_blessing(candidate(10.0), None, Thresholds(9.0, None, None, 0.0))
    assert not blessed and reason == "not blessed: FID 10.00 > max_fid 9.00"
    blessed, reason = decide_blessing(candidate(10.0, floor=2.0), None, Thresholds(None, 4.0, None, 0.0))
    assert not blessed and "4 x floor 2.00 = 8.00" in reason
    blessed, reason = decide_blessing(candidate(1.0, recall=0.1), None, Thresholds(None, None, 0.2, 0.0))
    assert not blessed and "recall 0.100 < min_recall 0.200" in reason


@pytest.mark.parametrize("fid", [math.nan, math.inf])
def test_non_finite_fid_is_never_blessed(fid):
    blessed, reason = decide_blessing(candidate(fid), None, LOOSE)
    assert not blessed and "FID is" in reason


def test_no_regression_against_the_serving_model():
    baseline = {"fid": 38.9}
    blessed, reason = decide_blessing(candidate(41.2), baseline, Thresholds(None, None, None, 1.0))
    assert not blessed and reason == "not blessed: FID 41.20 > baseline 38.90 + tolerance 1"
    blessed, _ = decide_blessing(candidate(39.5), baseline, Thresholds(None, None, None, 1.0))
    assert blessed
    blessed, _ = decide_blessing(candidate(38.9), baseline, LOOSE)
    assert blessed  # "at least as good": equal is enough


def test_generate_images_is_deterministic_and_balanced_for_conditional_models(tmp_path):
    import keras

    from components.gan.export import export_generator

    latent = keras.Input((4,))
    labels = keras.Input((), dtype="int32")
    x = keras.layers.Dense(16)(latent) + keras.layers.Embedding(3, 16)(labels)
    out = keras.layers.Reshape((4, 4, 1))(keras.layers.Activation("tanh")(x))
    export_generator(keras.Model([latent, labels], out), str(tmp_path / "g"), latent_dim=4, num_classes=3)
    first = generate_images(str(tmp_path / "g"), 7, seed=3, num_classes=3)
    again = generate_images(str(tmp_path / "g"), 7, seed=3, num_classes=3)
    other = generate_images(str(tmp_path / "g"), 7, seed=4, num_classes=3)
    assert first.shape == (7, 4, 4, 1) and np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError, match="conditional generator"):
        generate_images(str(tmp_path / "g"), 2, seed=0, num_classes=None)


def test_evaluation_options_name_the_key_and_the_registries():
    assert EvaluationConfig.from_dict(None).extractor == "domain_cnn"
    with pytest.raises(ConfigError, match="evaluation.extractor: 'inception_v9' is not one of: domain_cnn, inception$"):
        EvaluationConfig.from_dict({"extractor": "inception_v9"})
    with pytest.raises(ConfigError, match=r"evaluation.num_samples: must be >= 2"):
        EvaluationConfig.from_dict({"num_samples": 1})
    with pytest.raises(ConfigError, match=r"evaluation.min_recall: must be in \[0, 1\]"):
        EvaluationConfig.from_dict({"min_recall": 1.5})
    with pytest.raises(ConfigError, match=r"evaluation: unknown key\(s\) 'typo'"):
        EvaluationConfig.from_dict({"typo": 1})
    config = EvaluationConfig.from_dict({"max_fid": 3, "min_recall": None})
    assert EvaluationConfig.from_dict(config.to_dict()) == config  # the components' JSON parameter


def test_unknown_registry_names_list_the_registered_ones(tmp_path):
    assert EXTRACTORS.names() == ("domain_cnn", "inception")
    assert METRICS.names() == ("fid", "kid", "precision_recall", "density_coverage", "classifier_score")
    with pytest.raises(ConfigError, match="metric: 'inception_score' is not one of: fid, kid, precision_recall, "
                                          "density_coverage, classifier_score"):
        METRICS.entry("inception_score")
    with pytest.raises(ConfigError, match="extractor: 'clip' is not one of: domain_cnn, inception"):
        load_extractor("clip", str(tmp_path))


class FakeExtractor:
    """Features are the flattened pixels; with classes, the top-left pixel's sign picks one of two."""

    def __init__(self, classifies: bool):
        if classifies:
            self.predict_proba = lambda images: np.where(images[:, :1, 0, 0] > 0, [[0.05, 0.95]], [[0.95, 0.05]])

    def features(self, images):
        return images.reshape(len(images), -1).astype(np.float64)


def test_score_samples_runs_every_registered_metric_that_applies():
    from components.metrics.classifier_score import classifier_score, confident_class_shares, confident_fraction
    from components.metrics.density_coverage import density_coverage
    from components.metrics.fid import FeatureStats, frechet_distance_from_stats
    from components.metrics.kid import kernel_inception_distance
    from components.metrics.precision_recall import precision_recall

    rng = np.random.default_rng(0)
    fake = rng.uniform(-1, 1, size=(60, 3, 3, 1)).astype(np.float32)
    real = rng.uniform(-1, 1, size=(80, 9))
    reference = FeatureStats.from_features(real)
    extractor = FakeExtractor(classifies=True)
    scores = score_samples(fake, extractor, reference, real, num_classes=2, seed=3)

    # The same figures the evaluator computed before the registry, key for key.
    features, probabilities = extractor.features(fake), extractor.predict_proba(fake)
    kid, pr = kernel_inception_distance(features, real, seed=3), precision_recall(real, features)
    dc = density_coverage(real, features)
    shares = confident_class_shares(probabilities, CONFIDENCE_THRESHOLD)
    assert scores == {
        "fid": frechet_distance_from_stats(FeatureStats.from_features(features), reference),
        "kid": kid.mean, "kid_std": kid.std, "precision": pr.precision, "recall": pr.recall,
        "density": dc.density, "coverage": dc.coverage, "classifier_score": classifier_score(probabilities),
        "confident_fraction": confident_fraction(probabilities, CONFIDENCE_THRESHOLD),
        "confident_class_shares": [float(x) for x in shares], "min_confident_class_share": float(np.min(shares))}

    # Unlabelled data, or an extractor that does not classify the data's classes: no class figures.
    without_classes = {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    for extractor, num_classes in [(extractor, None), (FakeExtractor(classifies=False), 2)]:
        assert set(score_samples(fake, extractor, reference, real, num_classes, seed=3)) == without_classes


@pytest.mark.filterwarnings("ignore:FID is unreliable")  # N=10 < 128 features: fine for a layout test
def test_reference_artifact_loads_the_extractor_it_was_built_with(tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from components.gan.synthetic import write_tfrecords
    from components.metrics.domain_classifier import DomainClassifier
    from components.reference import build_reference, load_reference

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=48)
    images = (rng.uniform(0, 100, size=(48, 8, 8)) + 150 * labels[:, None, None]).astype(np.uint8)
    train = write_tfrecords(images[:32], labels[:32], str(tmp_path / "train.gz"))
    held_out = write_tfrecords(images[32:], labels[32:], str(tmp_path / "eval.gz"))
    info = build_reference(
        train_files=train, eval_files=held_out, image_shape=(8, 8, 1), num_classes=2, extractor="domain_cnn",
        num_samples=10, seed=0, classifier_epochs=1, cache_dir=str(tmp_path / "cache"), data_fingerprint="v1",
        out_dir=str(tmp_path / "reference"), log=lambda line: None,
        beam_pipeline=beam.Pipeline(runner="DirectRunner", options=PipelineOptions(direct_num_workers=1)))

    assert (info["extractor"], info["extractor_option"], info["num_samples"]) == ("domain_cnn", "domain_cnn", 10)
    assert (tmp_path / "cache" / "domain_classifier" / "v1").is_dir()  # trained once per data version
    reference = load_reference(str(tmp_path / "reference"))
    assert isinstance(reference.extractor, DomainClassifier) and reference.stats.count == 16
    assert reference.features.shape == (16, reference.extractor.feature_dim)

"""The evaluation options, the metric and extractor registries, the reference artifact, the
blessing decision and generator sampling, without TFX."""
import math

import numpy as np
import pytest

from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.evaluate import decide_blessing, summarise_draws
from tfx_gan.training.sampling import generate_images
from tfx_gan.metrics.extractors import EXTRACTORS, load_extractor
from tfx_gan.metrics.sample_metrics import CONFIDENCE_THRESHOLD, METRICS
from tfx_gan.common.options import ConfigError

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line


def Thresholds(**overrides):  # noqa: N802 (reads like a type)
    loose = {"max_fid": None, "max_fid_over_floor": None, "min_recall": None, "min_novelty": None,
             "min_class_share": None, "regression_tolerance": 0.0, "regression_z": 2.0}
    return EvaluationConfig.from_dict({**loose, **overrides})


LOOSE = Thresholds()
FLOOR = {"domain_cnn": {"fid": 1.0, "confident_class_shares": [0.5, 0.5]}, "random_cnn": {"fid": 0.1}}


def scores(fid, random_fid=0.1, recall=0.5, novelty=1.0, shares=(0.5, 0.5), spread=0.0):
    """Five draws per metric around the given means (``spread``: their deviation)."""
    offsets = spread * np.array([-2, -1, 0, 1, 2]) / np.std([-2, -1, 0, 1, 2], ddof=1)
    draw = lambda mean: [mean + o for o in offsets]  # noqa: E731
    draws = [{"fid": f, "recall": recall, "novelty": novelty, "confident_class_shares": list(shares)}
             for f in draw(fid)]
    return {"domain_cnn": summarise_draws(draws),
            "random_cnn": summarise_draws([{"fid": f} for f in draw(random_fid)])}


def test_summarise_draws_gives_mean_std_and_values():
    summary = summarise_draws([{"fid": 1.0, "shares": [0.2, 0.8]}, {"fid": 3.0, "shares": [0.4, 0.6]}])
    assert summary["fid"] == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "values": [1.0, 3.0]}
    assert summary["shares"] == pytest.approx([0.3, 0.7])


def test_first_model_is_judged_on_thresholds_alone():
    blessed, reason = decide_blessing(scores(2.0), None, FLOOR, LOOSE)
    assert blessed and reason == ("blessed: domain_cnn FID 2 (2.00x floor), random_cnn FID 0.1 (1.00x floor), "
                                  "within the thresholds (no model is serving yet)")
    blessed, reason = decide_blessing(scores(10.0), None, FLOOR, Thresholds(max_fid=9.0))
    assert not blessed and reason == "not blessed: domain_cnn FID 10 > max_fid 9"
    blessed, reason = decide_blessing(scores(1.0, recall=0.1), None, FLOOR, Thresholds(min_recall=0.2))
    assert not blessed and "recall 0.100 < min_recall 0.200" in reason


def test_every_feature_space_must_be_within_the_bound_over_its_floor():
    assert decide_blessing(scores(2.9, random_fid=0.29), None, FLOOR, Thresholds(max_fid_over_floor=3.0))[0]
    blessed, reason = decide_blessing(scores(1.0, random_fid=0.5), None, FLOOR, Thresholds(max_fid_over_floor=3.0))
    assert not blessed and reason.startswith("not blessed: random_cnn FID 0.5 is 5.00x the floor 0.1")


def test_copies_and_dropped_classes_are_not_blessed():
    blessed, reason = decide_blessing(scores(1.0, novelty=0.02), None, FLOOR, Thresholds(min_novelty=0.5))
    assert not blessed and "novelty 0.020 < min_novelty 0.5" in reason
    blessed, reason = decide_blessing(scores(1.0, shares=(1.0, 0.0)), None, FLOOR, Thresholds(min_class_share=0.5))
    assert not blessed and "class 1 is 0.0% of the recognised samples against 50.0% of real ones" in reason
    assert decide_blessing(scores(1.0, shares=(0.6, 0.4)), None, FLOOR, Thresholds(min_class_share=0.5))[0]


def test_samples_that_teach_a_classifier_too_little_are_not_blessed():
    cas = {"generated": 0.6, "real": 0.95, "ratio": 0.6 / 0.95}
    assert decide_blessing(scores(1.0), None, FLOOR, Thresholds(min_cas_ratio=0.5), cas=cas)[0]
    blessed, reason = decide_blessing(scores(1.0), None, FLOOR, Thresholds(min_cas_ratio=0.9), cas=cas)
    assert not blessed and reason == ("not blessed: CAS ratio 0.632 (a classifier trained on its samples 0.600 vs on "
                                      "real images 0.950) < min_cas_ratio 0.9")
    dropped = {"skipped": "CAS ratio 0: class 4 has no generated images", "ratio": 0.0}
    blessed, reason = decide_blessing(scores(1.0), None, FLOOR, Thresholds(min_cas_ratio=0.9), cas=dropped)
    assert not blessed and "class 4 has no generated images" in reason
    assert decide_blessing(scores(1.0), None, FLOOR, LOOSE, cas=dropped)[0]  # no threshold: CAS only reported


@pytest.mark.parametrize("fid", [math.nan, math.inf])
def test_non_finite_fid_is_never_blessed(fid):
    blessed, reason = decide_blessing(scores(fid), None, FLOOR, LOOSE)
    assert not blessed and "FID is" in reason


def test_a_candidate_is_worse_than_the_serving_model_only_beyond_the_noise():
    baseline = scores(10.0, spread=1.0)  # s.e. 1/sqrt(5) = 0.447 per side; noise = 2 * 0.632 = 1.26
    blessed, reason = decide_blessing(scores(11.0, spread=1.0), baseline, FLOOR, LOOSE)
    assert blessed and "no worse than the serving model beyond the noise (2 s.e. + tolerance 0)" in reason
    blessed, reason = decide_blessing(scores(11.5, spread=1.0), baseline, FLOOR, LOOSE)
    assert not blessed and reason == ("not blessed: domain_cnn FID 11.5 > serving 10 by 1.5, more than the noise "
                                      "1.26 (2 s.e.) + tolerance 0")
    # Without noise, equal is enough ("at least as good"); the tolerance adds to the noise.
    assert decide_blessing(scores(10.0), scores(10.0), FLOOR, LOOSE)[0]
    assert not decide_blessing(scores(10.5), scores(10.0), FLOOR, LOOSE)[0]
    assert decide_blessing(scores(10.5), scores(10.0), FLOOR, Thresholds(regression_tolerance=1.0))[0]


def test_generate_images_is_deterministic_and_balanced_for_conditional_models(tmp_path):
    import keras

    from tfx_gan.training.export import export_generator

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
    assert EvaluationConfig.from_dict(None).extractors == ("domain_cnn", "random_cnn")
    assert EvaluationConfig.from_dict({"extractors": "random_cnn, domain_cnn"}).extractors == ("random_cnn", "domain_cnn")
    with pytest.raises(ConfigError, match="evaluation.extractors: 'inception_v9' is not one of: domain_cnn, "
                                          "random_cnn, pixels_8x8, inception$"):
        EvaluationConfig.from_dict({"extractors": ["domain_cnn", "inception_v9"]})
    with pytest.raises(ConfigError, match="evaluation.extractors: expected a non-empty list of names, got \\[\\]"):
        EvaluationConfig.from_dict({"extractors": []})
    with pytest.raises(ConfigError, match="names an extractor twice"):
        EvaluationConfig.from_dict({"extractors": ["random_cnn", "random_cnn"]})
    with pytest.raises(ConfigError, match=r"evaluation.num_samples: must be >= 2"):
        EvaluationConfig.from_dict({"num_samples": 1})
    with pytest.raises(ConfigError, match=r"evaluation.min_recall: must be in \[0, 1\]"):
        EvaluationConfig.from_dict({"min_recall": 1.5})
    with pytest.raises(ConfigError, match=r"evaluation: unknown key\(s\) 'typo'"):
        EvaluationConfig.from_dict({"typo": 1})
    config = EvaluationConfig.from_dict({"max_fid": 3, "min_recall": None})
    assert EvaluationConfig.from_dict(config.to_dict()) == config  # the components' JSON parameter


def test_unknown_registry_names_list_the_registered_ones(tmp_path):
    assert EXTRACTORS.names() == ("domain_cnn", "random_cnn", "pixels_8x8", "inception")
    assert METRICS.names() == ("fid", "kid", "precision_recall", "density_coverage", "novelty", "classifier_score",
                              "class_variety")
    with pytest.raises(ConfigError, match="metric: 'inception_score' is not one of: fid, kid, precision_recall, "
                                          "density_coverage, novelty, classifier_score, class_variety"):
        METRICS.entry("inception_score")
    with pytest.raises(ConfigError, match="extractor: 'clip' is not one of: domain_cnn, random_cnn, pixels_8x8, inception"):
        load_extractor("clip", str(tmp_path))


class FakeExtractor:
    """Features are the flattened pixels; with classes, the top-left pixel's sign picks one of two."""

    def __init__(self, classifies: bool):
        if classifies:
            self.predict_proba = lambda images: np.where(images[:, :1, 0, 0] > 0, [[0.05, 0.95]], [[0.95, 0.05]])

    def features(self, images):
        return images.reshape(len(images), -1).astype(np.float64)


def test_scoring_runs_every_registered_metric_that_applies():
    from tfx_gan.metrics.classifier_score import classifier_score, confident_class_shares, confident_fraction
    from tfx_gan.metrics.density_coverage import density_coverage
    from tfx_gan.metrics.fid import FeatureStats, frechet_distance_from_stats
    from tfx_gan.metrics.kid import kernel_inception_distance
    from tfx_gan.metrics.novelty import distance_to_train, novelty
    from tfx_gan.metrics.precision_recall import precision_recall
    from tfx_gan.evaluation.reference import ExtractorReference

    rng = np.random.default_rng(0)
    fake = rng.uniform(-1, 1, size=(60, 3, 3, 1)).astype(np.float32)
    real, train = rng.uniform(-1, 1, size=(80, 9)), rng.uniform(-1, 1, size=(70, 9))
    held_out = distance_to_train(rng.uniform(-1, 1, size=(50, 9)), train)
    extractor = FakeExtractor(classifies=True)
    reference = ExtractorReference(extractor=extractor, stats=FeatureStats.from_features(real),
                                   reference_features=real, train_features=train, held_out_distances=held_out,
                                   floor={})
    scores = reference.score(fake, num_classes=2, seed=3)

    # The same figures as calling each metric module directly, key for key.
    features, probabilities = extractor.features(fake), extractor.predict_proba(fake)
    pr, dc = precision_recall(real, features), density_coverage(real, features)
    shares = confident_class_shares(probabilities, CONFIDENCE_THRESHOLD)
    assert scores == {
        "fid": frechet_distance_from_stats(FeatureStats.from_features(features), reference.stats),
        "kid": kernel_inception_distance(features, real, seed=3), "precision": pr.precision, "recall": pr.recall,
        "density": dc.density, "coverage": dc.coverage, **novelty(features, train, held_out)._asdict(),
        "classifier_score": classifier_score(probabilities),
        "confident_fraction": confident_fraction(probabilities, CONFIDENCE_THRESHOLD),
        "confident_class_shares": [float(x) for x in shares], "min_confident_class_share": float(np.min(shares))}

    # Unlabelled data, or an extractor that does not classify the data's classes: no class figures.
    without_classes = {"fid", "kid", "precision", "recall", "density", "coverage", "novelty", "near_copy_fraction"}
    assert set(reference.score(fake, None, seed=3)) == without_classes
    reference.extractor = FakeExtractor(classifies=False)
    assert set(reference.score(fake, 2, seed=3)) == without_classes


@pytest.mark.filterwarnings("ignore:FID is unreliable")  # N=12 < 128 features: fine for a layout test
def test_reference_artifact_uses_a_floor_no_extractor_saw(tmp_path):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.metrics.domain_classifier import DomainClassifier
    from tfx_gan.metrics.random_cnn import RandomCNN
    from tfx_gan.evaluation.reference import build_reference, load_reference, read_held_out, stratified_halves

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 36)
    images = (rng.uniform(0, 100, size=(72, 8, 8)) + 150 * labels[:, None, None]).astype(np.uint8)
    is_train = np.tile(np.arange(36) < 12, 2)  # 12 training and 24 held-out images per class
    train = write_tfrecords(images[is_train], labels[is_train], str(tmp_path / "train.gz"))
    held_out = write_tfrecords(images[~is_train], labels[~is_train], str(tmp_path / "eval.gz"))
    info = build_reference(
        train_files=train, eval_files=held_out, image_shape=(8, 8, 1), num_classes=2,
        extractors=("domain_cnn", "random_cnn"), num_samples=100, num_draws=3, seed=0, classifier_epochs=1,
        cache_dir=str(tmp_path / "cache"), data_fingerprint="v1", out_dir=str(tmp_path / "reference"),
        log=lambda line: None,
        beam_pipeline=beam.Pipeline(runner="DirectRunner", options=PipelineOptions(direct_num_workers=1)))

    # 48 held-out images, 24 per class: two halves of 24 with 12 of each class; N capped at 24.
    assert (info["num_reference"], info["num_floor"], info["num_samples"], info["num_draws"]) == (24, 24, 24, 3)
    assert list(info["extractors"]) == ["domain_cnn", "random_cnn"]
    assert (tmp_path / "cache" / "domain_cnn_v3" / "v1").is_dir()  # trained once per data version
    reference = load_reference(str(tmp_path / "reference"))
    domain, random_cnn = reference.extractors["domain_cnn"], reference.extractors["random_cnn"]
    assert isinstance(domain.extractor, DomainClassifier) and isinstance(random_cnn.extractor, RandomCNN)
    assert domain.stats.count == 24 and domain.reference_features.shape == (24, domain.extractor.feature_dim)

    # The floor is the held-out floor half scored against the reference half (Beam's stats of the
    # reference half agree with the in-memory ones), never training images.
    held, held_labels, keys = read_held_out(held_out, (8, 8, 1))
    in_floor = stratified_halves(keys, held_labels)
    assert np.bincount(held_labels[in_floor]).tolist() == [12, 12]
    np.testing.assert_allclose(domain.stats.mean(), domain.extractor.features(held[~in_floor]).mean(axis=0), atol=1e-6)
    floor = domain.score(held[in_floor], num_classes=2, seed=0)
    assert floor["fid"] == pytest.approx(info["extractors"]["domain_cnn"]["floor"]["fid"], rel=1e-6)
    assert floor["novelty"] == pytest.approx(1.0, abs=0.1)
    train_images = np.concatenate([x for x in _decoded(train)])
    assert domain.score(train_images[:24], 2, seed=0)["novelty"] == 0.0  # copies of training images


def _decoded(files):
    from tfx_gan.data.example_format import load_arrays

    yield load_arrays(files, (8, 8, 1))[0]

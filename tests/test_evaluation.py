"""The blessing decision and generator sampling, without TFX."""
import math

import numpy as np
import pytest

from components.evaluation import METRICS, EvaluationConfig, decide_blessing, generate_images
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
    with pytest.raises(ConfigError, match=r"evaluation.extractor: 'inception_v9' is not one of: domain_cnn"):
        EvaluationConfig.from_dict({"extractor": "inception_v9"})
    with pytest.raises(ConfigError, match=r"evaluation.num_samples: must be >= 2"):
        EvaluationConfig.from_dict({"num_samples": 1})
    with pytest.raises(ConfigError, match=r"evaluation.min_recall: must be in \[0, 1\]"):
        EvaluationConfig.from_dict({"min_recall": 1.5})
    assert set(METRICS) == {"fid", "kid", "precision_recall", "density_coverage", "classifier_score"}

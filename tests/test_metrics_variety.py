"""Within-class variety and the pixel feature space: inputs whose answer is known."""
import numpy as np
import pytest
from PIL import Image

from tfx_gan.evaluation.class_sheets import nearest_training_ratios, save_class_sheets
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.evaluate import decide_blessing
from tfx_gan.metrics.class_variety import class_variety
from tfx_gan.metrics.pixels import PixelFeatures, area_downsample


def test_area_downsample_averages_cells_exactly():
    image = np.arange(16 * 16, dtype=np.float64).reshape(1, 16, 16, 1)
    expected = image[0, :, :, 0].reshape(8, 2, 8, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(area_downsample(image)[0, :, :, 0], expected)


def test_area_downsample_keeps_the_mean_of_sides_that_are_not_multiples():
    # 28 -> 8 splits pixels between cells: each cell's share of a pixel is what it covers.
    image = np.random.default_rng(0).uniform(-1, 1, size=(2, 28, 28, 3))
    small = area_downsample(image)
    assert small.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), image.mean(axis=(1, 2)), atol=1e-12)
    np.testing.assert_allclose(area_downsample(np.full((1, 28, 28, 1), 0.25)), 0.25)


def test_area_downsample_matches_pillow_box_filter():
    image = np.random.default_rng(1).integers(0, 256, size=(32, 32)).astype(np.uint8)
    pillow = np.asarray(Image.fromarray(image).resize((8, 8), Image.BOX), np.float64)
    ours = area_downsample(image[None, :, :, None].astype(np.float64))[0, :, :, 0]
    assert np.abs(ours - pillow).max() <= 1.0  # Pillow computes in fixed point and rounds to integers


def test_pixel_features_shape_and_round_trip(tmp_path):
    extractor = PixelFeatures((28, 28, 1))
    features = extractor.features(np.zeros((3, 28, 28, 1)))
    assert features.shape == (3, 64) and extractor.feature_dim == 64
    loaded = PixelFeatures.load(extractor.save(str(tmp_path / "pixels")))
    assert loaded.image_shape == (28, 28, 1)
    with pytest.raises(ValueError, match="expects"):
        extractor.features(np.zeros((1, 32, 32, 1)))


def _two_classes(rng, n):
    """Real features of two classes far apart, each a spread-out cloud."""
    real = np.concatenate([rng.normal(0, 1, size=(n, 4)), rng.normal(20, 1, size=(n, 4))])
    return real, np.repeat([0, 1], n)


def test_class_variety_sees_a_collapsed_class_that_overall_recall_would_not():
    rng = np.random.default_rng(2)
    real, labels = _two_classes(rng, 60)
    varied, _ = _two_classes(rng, 60)
    # Class 1 drawn as three prototypes: still inside class 1's region, but covering little of it.
    collapsed = varied.copy()
    collapsed[60:] = np.repeat(rng.normal(20, 1, size=(3, 4)), 20, axis=0) + rng.normal(0, 1e-3, size=(60, 4))
    good = class_variety(real, labels, varied, labels, 2)
    bad = class_variety(real, labels, collapsed, labels, 2)
    assert min(good.recall) > 0.6 and min(good.coverage) > 0.6
    assert bad.recall[0] > 0.6 and bad.recall[1] < 0.3 and bad.coverage[1] < 0.3
    assert bad.summary()["min_class_recall"] == bad.recall[1]


def test_class_variety_gives_nan_for_a_class_too_small_to_judge():
    rng = np.random.default_rng(3)
    real, labels = _two_classes(rng, 20)
    fake_labels = np.array([0] * 38 + [1] * 2)  # two samples of class 1: fewer than k + 1
    result = class_variety(real, labels, real[np.r_[0:38, 20:22]], fake_labels, 2)
    assert np.isfinite(result.recall[0]) and np.isnan(result.recall[1])
    assert result.summary()["min_class_recall"] == result.recall[0]


def test_class_variety_bad_labels_raise():
    with pytest.raises(ValueError, match="one label per feature row"):
        class_variety(np.zeros((4, 2)), [0, 1], np.zeros((4, 2)), [0, 1, 0, 1], 2)


def _scores(fid, class_recall):
    return {"domain_cnn": {"fid": {"mean": fid, "std": 0.1, "values": [fid] * 5}, "class_recall": class_recall}}


def test_blessing_can_require_variety_within_every_class():
    floor = {"domain_cnn": {"fid": 10.0, "class_recall": [0.8, 0.6]}}
    config = EvaluationConfig(min_class_recall=0.5, min_novelty=None, min_class_share=None)
    blessed, reason = decide_blessing(_scores(12.0, [0.7, 0.2]), None, floor, config)
    assert not blessed and "within class 1" in reason and "0.33x" in reason
    assert decide_blessing(_scores(12.0, [0.7, 0.4]), None, floor, config)[0]
    assert decide_blessing(_scores(12.0, [0.7, 0.2]), None, floor, EvaluationConfig(min_novelty=None,
                                                                                    min_class_share=None))[0]


def test_nearest_training_ratio_is_zero_for_a_copy_and_about_one_for_new_images():
    rng = np.random.default_rng(4)
    train, held_out, new = (rng.uniform(-1, 1, size=(n, 8, 8, 3)) for n in (50, 20, 10))
    index, ratio = nearest_training_ratios(np.concatenate([train[7:8], new]), train, held_out)
    assert index[0] == 7 and ratio[0] == 0.0
    assert 0.8 < np.median(ratio[1:]) < 1.2


def test_class_sheets_picture_and_figures(tmp_path):
    rng = np.random.default_rng(5)
    train = rng.uniform(-1, 1, size=(40, 16, 16, 3))
    labels = np.arange(40) % 2
    path = str(tmp_path / "classes.png")
    figures = save_class_sheets(train[:8], labels[:8], train, labels, train[20:30], labels[20:30], ["a", "b"], path)
    assert figures["min"] == 0.0  # the samples are training images
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 300

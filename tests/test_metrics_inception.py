import numpy as np
import pytest

from tfx_gan.metrics.extractors import load_extractor
from tfx_gan.metrics.inception import (
    NOTOP_WEIGHTS_FILENAME,
    InceptionFeatureExtractor,
    find_inception_weights,
    preprocess_for_inception,
)


def test_preprocessing_resizes_grayscale_to_rgb_and_keeps_range():
    images = np.linspace(-1, 1, 2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8, 1)
    out = preprocess_for_inception(images).numpy()
    assert out.shape == (2, 299, 299, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.min() < -0.9 and out.max() > 0.9  # still [-1, 1], not rescaled to [0, 1]
    constant = preprocess_for_inception(np.full((1, 5, 7, 3), 0.25, np.float32)).numpy()
    np.testing.assert_allclose(constant, 0.25, atol=1e-6)


@pytest.mark.parametrize(
    "images, message",
    [(np.zeros((1, 8, 8, 2), np.float32), "1 \\(grayscale\\) or 3"), (np.full((1, 8, 8, 3), 255.0), r"\[-1, 1\]")],
)
def test_preprocessing_bad_inputs_raise(images, message):
    with pytest.raises(ValueError, match=message):
        preprocess_for_inception(images)


def test_missing_weights_error_names_where_it_looked(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}/models/{NOTOP_WEIGHTS_FILENAME}"):
        find_inception_weights(search_dirs=[str(tmp_path / "models")])
    with pytest.raises(ValueError, match="weights file not found: /nonexistent.h5"):
        find_inception_weights("/nonexistent.h5")


def test_extractor_loads_weights_from_a_local_file(tmp_path):
    import keras

    reference = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3))
    path = str(tmp_path / "inception_notop.weights.h5")
    reference.save_weights(path)

    extractor = InceptionFeatureExtractor(weights_path=path)
    assert (extractor.name, extractor.feature_dim) == ("inception_v3_pool3", 2048)
    for loaded, saved in zip(extractor.model.weights, reference.weights):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 28, 28, 1)).astype(np.float32)
    features = extractor.features(images)
    assert features.shape == (2, 2048) and features.dtype == np.float64
    expected = extractor.model(preprocess_for_inception(images), training=False).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)

    # The reference artifact records the weights file; the evaluator loads it back by registry name.
    loaded = load_extractor("inception", extractor.save(str(tmp_path / "saved")))
    assert loaded.weights_path == path
    np.testing.assert_allclose(loaded.features(images), features, rtol=1e-5, atol=1e-6)


def test_extractor_wraps_a_wrong_weights_file(tmp_path):
    path = tmp_path / "broken.weights.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="could not load InceptionV3"):
        InceptionFeatureExtractor(weights_path=str(path))

import logging
import os
import re
import time

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from tfx_gan.metrics import domain_classifier as dc
from tfx_gan.metrics.domain_classifier import (
    DomainClassifier,
    load_or_train_domain_classifier,
    train_domain_classifier,
)


def digits_28x28():
    """sklearn's 8x8 digits, bicubic-resized to 20x20, padded 4 px to 28x28, scaled to [-1, 1]."""
    digits = load_digits()
    images = []
    for image in digits.images:
        pixels = Image.fromarray(np.uint8(np.round(image / 16.0 * 255.0)))
        resized = np.asarray(pixels.resize((20, 20), Image.BICUBIC), dtype=np.float32)
        images.append(np.pad(resized, 4) / 127.5 - 1.0)
    return np.stack(images)[..., None], digits.target.astype(np.int64)


@pytest.fixture(scope="module")
def digits():
    images, labels = digits_28x28()
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[:1500]], labels[order[:1500]], images[order[1500:]], labels[order[1500:]]


@pytest.fixture(scope="module")
def digits_classifier(digits):
    train_x, train_y, _, _ = digits
    start = time.perf_counter()
    classifier = train_domain_classifier(train_x, train_y, 10, seed=0)
    classifier.train_seconds = time.perf_counter() - start
    return classifier


def test_digits_classifier_is_accurate_and_fast(digits, digits_classifier):
    _, _, test_x, test_y = digits
    probabilities = digits_classifier.predict_proba(test_x)
    assert probabilities.shape == (len(test_x), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    accuracy = np.mean(probabilities.argmax(axis=1) == test_y)
    assert accuracy > 0.95, accuracy
    assert digits_classifier.metadata["val_accuracy"] > 0.9
    assert digits_classifier.train_seconds < 60  # ~8 s alone on 2 cores; slack for a busy machine


def test_features_interface(digits, digits_classifier):
    _, _, test_x, _ = digits
    assert digits_classifier.name == "domain_cnn"
    assert digits_classifier.feature_dim == 128
    features = digits_classifier.features(test_x[:50], batch_size=16)
    assert features.shape == (50, 128) and features.dtype == np.float64
    np.testing.assert_allclose(features, digits_classifier.features(test_x[:50]), rtol=1e-5, atol=1e-6)


def test_save_load_round_trip(tmp_path, digits, digits_classifier):
    _, _, test_x, _ = digits
    digits_classifier.save(str(tmp_path / "clf"))
    loaded = DomainClassifier.load(str(tmp_path / "clf"))
    assert (loaded.name, loaded.feature_dim, loaded.num_classes) == ("domain_cnn", 128, 10)
    np.testing.assert_allclose(loaded.features(test_x[:20]), digits_classifier.features(test_x[:20]), rtol=1e-5, atol=1e-6)


def test_rotation_mode_without_labels(caplog):
    images = np.random.default_rng(0).uniform(-1, 1, size=(32, 12, 12, 1)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger=dc.__name__):
        classifier = train_domain_classifier(images, None, None, epochs=1, feature_dim=16)
    assert classifier.name == "domain_cnn_rotation"
    # Progress lines instead of silence: what trains, each epoch (at most PROGRESS_LINES), the held-out result.
    messages = [record.getMessage() for record in caplog.records if record.name == dc.__name__]
    assert messages[0] == "domain classifier: training on 29 images for 1 epochs", messages
    assert re.fullmatch(r"domain classifier: epoch 1/1, loss [\d.]+, rotation accuracy [\d.]+, \d+ s elapsed",
                        messages[1]), messages
    assert re.fullmatch(r"domain classifier: held-out rotation accuracy [\d.]+ on 3 images", messages[2]), messages
    assert classifier.predict_proba(images[:5]).shape == (5, 4)
    assert classifier.features(images[:5]).shape == (5, 16)


def test_rotations_are_labelled_by_quarter_turns():
    image = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    rotated, labels = dc.rotate_images(image)
    assert labels.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(rotated[2], image[0, ::-1, ::-1])


def test_load_or_train_caches_once(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, size=(40, 8, 8, 1)).astype(np.float32)
    labels = rng.integers(0, 3, size=40)
    calls = []
    real_train = dc.train_domain_classifier
    monkeypatch.setattr(dc, "train_domain_classifier", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    cache = str(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger=dc.__name__):
        first = load_or_train_domain_classifier(cache, "data-v1", images, labels, 3, epochs=1, feature_dim=8)
    assert any(re.search(r"epoch 1/1, .*, class accuracy [\d.]+, rotation accuracy [\d.]+", record.getMessage())
               for record in caplog.records), caplog.text
    second = load_or_train_domain_classifier(cache, "data-v1", images, labels, 3, epochs=1, feature_dim=8)
    assert len(calls) == 1
    assert second.fingerprint == first.fingerprint == "data-v1"
    assert sorted(os.listdir(cache)) == ["data-v1"]  # no temporary directory left behind
    np.testing.assert_allclose(second.features(images[:4]), first.features(images[:4]), rtol=1e-5, atol=1e-6)
    load_or_train_domain_classifier(cache, "data-v2", images, labels, 3, epochs=1, feature_dim=8)
    assert len(calls) == 2


def test_half_written_cache_is_not_read(tmp_path):
    os.makedirs(tmp_path / "fp" / "junk")  # e.g. a crashed copy: no metadata file, so it is no cache
    with pytest.raises(ValueError, match="no saved DomainClassifier"):
        DomainClassifier.load(str(tmp_path / "fp"))


@pytest.mark.parametrize(
    "images, labels, num_classes, message",
    [
        (np.zeros((4, 8, 8)), [0, 1, 0, 1], 2, "4-D"),
        (np.full((4, 8, 8, 1), 200.0), [0, 1, 0, 1], 2, r"\[-1, 1\]"),
        (np.zeros((4, 8, 8, 1)), [0, 1, 0], 2, "one label per image"),
        (np.zeros((4, 8, 8, 1)), [0, 1, 0, 5], 2, r"labels must lie in \[0, 2\)"),
        (np.zeros((4, 8, 8, 1)), [0.0, 1.0, 0.0, 1.0], 2, "integers"),
        (np.zeros((4, 8, 6, 1)), None, None, "square"),
        (np.zeros((4, 8, 8, 1)), [0, 1, 0, 1], 1, "num_classes"),
    ],
)
def test_bad_training_inputs_raise(images, labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        train_domain_classifier(images, labels, num_classes, epochs=1)


def test_bad_fingerprint_and_image_shape_raise(tmp_path, digits_classifier):
    with pytest.raises(ValueError, match="fingerprint"):
        load_or_train_domain_classifier(str(tmp_path), "../x", np.zeros((4, 8, 8, 1)), [0, 1, 0, 1], 2)
    with pytest.raises(ValueError, match="expects"):
        digits_classifier.features(np.zeros((2, 14, 14, 1), np.float32))

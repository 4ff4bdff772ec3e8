"""The small-data levers against answers worked out by hand: the relativistic loss, ADA's
probability and its update, lazy R1/R2, class-conditional batch norm, and keeping the best
generator / stopping on the training FID."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.training import augment, losses
from tfx_gan.training.config import ConfigError, TrainConfig
from tfx_gan.training.models import ClassAffine, build_generator
from tfx_gan.training.step import GanTraining


def t(values):
    return tf.constant(values, tf.float32)


def test_relativistic_pairing_loss_values():
    # D: -log sigmoid(r - f) per pair; G: the same with the roles swapped.
    real, fake = t([2.0, 0.0]), t([0.0, 1.0])
    expected_d = np.mean([math.log1p(math.exp(-2.0)), math.log1p(math.exp(1.0))])
    expected_g = np.mean([math.log1p(math.exp(2.0)), math.log1p(math.exp(-1.0))])
    assert losses.rpgan_d_loss(real, fake).numpy() == pytest.approx(expected_d, rel=1e-6)
    assert losses.rpgan_g_loss(fake, real).numpy() == pytest.approx(expected_g, rel=1e-6)
    d_loss, g_loss = losses.get("rpgan")
    assert d_loss is losses.rpgan_d_loss and g_loss is losses.rpgan_g_loss
    # the other G losses ignore the real logits they are given
    assert losses.bce_g_loss(fake, real).numpy() == pytest.approx(losses.bce_g_loss(fake).numpy())


@pytest.mark.parametrize("p, expected_share", [(0.0, 0.0), (1.0, 1.0), (0.5, 0.5)])
def test_augmentation_probability_is_the_share_of_images_changed(p, expected_share):
    x = tf.random.uniform([2000, 8, 8, 1], 0.5, 1.0)  # no zero pixel: cutout always changes an image
    y = augment.diff_augment(x, "cutout", tf.random.Generator.from_seed(0), probability=tf.constant(p))
    changed = np.mean(np.any(y.numpy() != x.numpy(), axis=(1, 2, 3)))
    assert changed == pytest.approx(expected_share, abs=0.04)


def _trainer(**options):
    config = TrainConfig(**{"architecture": "mlp", "mixed_precision": "off", "ema_decay": 0.0, **options})
    return GanTraining(config, (28, 28, 1), None, "float32")


def test_ada_moves_p_by_batch_over_ada_images_towards_the_target():
    trainer = _trainer(diffaugment="translation", ada_target=0.6, ada_images=1000)
    assert float(trainer.augment_p.numpy()) == 0.0
    overfit = t([1.0] * 10)  # E[sign D(real)] = 1 > 0.6: more augmentation
    trainer.update_augment_p(overfit)
    assert float(trainer.augment_p.numpy()) == pytest.approx(10 / 1000)
    unsure = t([-1.0] * 6 + [1.0] * 4)  # E[sign] = -0.2 < 0.6: less
    trainer.update_augment_p(unsure)
    trainer.update_augment_p(unsure)
    assert float(trainer.augment_p.numpy()) == 0.0  # clipped at 0
    assert _trainer(diffaugment="translation").augment_p is None  # no ADA: DiffAugment, p = 1
    assert _trainer(diffaugment="", ada_target=0.6).augment_p is None  # nothing to apply


def _linear_critic(trainer):
    w = np.linspace(-0.01, 0.01, 784).astype(np.float32).reshape(784, 1)
    linear = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    linear.set_weights([w])
    trainer.discriminator = linear
    return float(np.sum(w ** 2))


@pytest.mark.parametrize("step, interval, weight", [(0, 4, 4.0), (1, 4, 0.0), (8, 4, 4.0), (3, 1, 1.0)])
def test_lazy_penalties_apply_every_interval_steps_weighted_by_it(step, interval, weight):
    # a linear critic's input gradient is its weight vector at every image: R1 = R2 = |w|^2
    trainer = _trainer(r1_gamma=2.0, r2_gamma=1.0, r_interval=interval)
    norm = _linear_critic(trainer)
    trainer.step.assign(step)
    real, fake = tf.random.uniform([4, 28, 28, 1], -1, 1), tf.random.uniform([4, 28, 28, 1], -1, 1)
    d_loss, real_logits, fake_logits = trainer.discriminator_loss(real, fake, tf.zeros([4], tf.int32))
    plain = losses.bce_d_loss(real_logits, fake_logits).numpy()
    assert d_loss.numpy() == pytest.approx(plain + weight * 0.5 * (2.0 + 1.0) * norm, rel=1e-5)


def test_class_affine_scales_and_shifts_per_class():
    layer = ClassAffine(2)
    x = tf.ones([2, 3, 3, 4])
    layer([x, tf.constant([0, 1])])
    layer.set_weights([np.array([[1.0] * 4, [2.0] * 4], np.float32), np.array([[0.0] * 4, [0.5] * 4], np.float32)])
    out = layer([x, tf.constant([0, 1])]).numpy()
    np.testing.assert_allclose(out[0], 1.0)
    np.testing.assert_allclose(out[1], 2.5)


def test_class_norm_makes_the_generator_listen_to_the_label_in_every_layer():
    g = build_generator("conditional_dcgan", (32, 32, 3), 8, 3, class_norm=True)
    affines = [layer for layer in g.layers if isinstance(layer, ClassAffine)]
    assert len(affines) >= 3  # after every batch norm
    plain = build_generator("conditional_dcgan", (32, 32, 3), 8, 3)
    assert not any(isinstance(layer, ClassAffine) for layer in plain.layers)


def test_keep_best_and_stop_patience_need_the_training_fid():
    with pytest.raises(ConfigError, match="fid_every_steps"):
        TrainConfig.from_dict({"keep_best": True, "fid_every_steps": 0})
    with pytest.raises(ConfigError, match="stop_patience"):
        TrainConfig.from_dict({"stop_patience": 0})

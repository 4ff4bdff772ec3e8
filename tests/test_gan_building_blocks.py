"""The GAN library's building blocks: DiffAugment, EMA, spectral normalisation, R1 inside the D step, minibatch
standard deviation, upsampling, model shapes and saving."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.training import augment
from tfx_gan.training.config import TrainConfig
from tfx_gan.training.devices import resolve_precision
from tfx_gan.training.models import (FastDropout, FusedBatchNorm, MinibatchStd, SpectralNormConv2D, SpectralNormDense,
                                   build_discriminator, build_generator)
from tfx_gan.training.step import GanTraining


# ------------------------------------------------------------------------------ DiffAugment
@pytest.mark.parametrize("policy", ["translation", "cutout", "color", "translation,cutout,color"])
@pytest.mark.parametrize("shape", [(4, 28, 28, 1), (3, 32, 32, 3)])
def test_diffaugment_keeps_shape_and_is_differentiable(policy, shape):
    x = tf.random.uniform(shape, -1.0, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.diff_augment(x, policy, tf.random.Generator.from_seed(1))
        total = tf.reduce_sum(y * y)
    assert y.shape == x.shape and y.dtype == x.dtype
    grad = tape.gradient(total, x)
    assert grad is not None and np.all(np.isfinite(grad.numpy())) and np.any(grad.numpy() != 0)
    assert not np.allclose(y.numpy(), x.numpy())


def test_diffaugment_transforms():
    x = tf.random.uniform([64, 28, 28, 1], -1.0, 1.0)
    # Translation only moves pixels (edge-replicated), by at most 1/8 of the size.
    moved = augment.rand_translation(x, tf.random.Generator.from_seed(0)).numpy()
    assert np.isin(moved[0], x.numpy()[0]).all()
    # Cutout zeroes one square of side 14 (fewer pixels where it overlaps the border).
    ones = tf.ones([64, 28, 28, 1])
    cut = augment.rand_cutout(ones, tf.random.Generator.from_seed(0)).numpy()
    zeros = (cut == 0).sum(axis=(1, 2, 3))
    assert zeros.max() == 14 * 14 and zeros.min() > 0
    # Same generator seed -> same augmentation; empty policy -> identity.
    a = augment.diff_augment(x, "translation,cutout", tf.random.Generator.from_seed(5))
    b = augment.diff_augment(x, "translation,cutout", tf.random.Generator.from_seed(5))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert augment.diff_augment(x, "") is x
    with pytest.raises(ValueError, match="translation, cutout, color"):
        augment.diff_augment(x, "flip")


def test_diffaugment_is_applied_in_the_generator_step():
    # The G step's gradient must flow through the augmentation: with cutout, generator
    # gradients still reach every output pixel on average, and the trainer uses the policy.
    config = TrainConfig(architecture="mlp", diffaugment="translation,cutout", mixed_precision="off")
    trainer = GanTraining(config, (28, 28, 1), None, "float32")
    assert trainer.augment_policy == ("translation", "cutout")
    fake = tf.random.uniform([8, 28, 28, 1])
    with tf.GradientTape() as tape:
        tape.watch(fake)
        logits = trainer._discriminate(trainer._augment(fake), None)
    assert tape.gradient(logits, fake) is not None


# ------------------------------------------------------------------------------ EMA
def test_ema_update_formula_and_warmup():
    config = TrainConfig(architecture="mlp", ema_decay=0.9, mixed_precision="off")
    trainer = GanTraining(config, (28, 28, 1), None, "float32")
    g, ema = trainer.generator, trainer.ema_generator
    for a, b in zip(g.get_weights(), ema.get_weights()):
        np.testing.assert_array_equal(a, b)  # starts as a copy
    ema.set_weights([np.zeros_like(w) for w in ema.get_weights()])
    g.set_weights([np.ones_like(w) for w in g.get_weights()])
    trainer.step.assign(0)  # warm-up: decay = min(0.9, 1/10) = 0.1
    trainer.update_ema()
    np.testing.assert_allclose(ema.get_weights()[0], 0.9, rtol=1e-6)
    ema.set_weights([np.zeros_like(w) for w in ema.get_weights()])
    trainer.step.assign(10_000)  # decay = 0.9
    trainer.update_ema()
    np.testing.assert_allclose(ema.get_weights()[0], 0.1, rtol=1e-5)
    assert trainer.export_generator is ema
    assert GanTraining(config.replace(ema_decay=0.0), (28, 28, 1), None, "float32").ema_generator is None


def test_ema_warmup_leaves_little_of_the_initial_weights_after_a_short_run():
    # Without the warm-up a 0.999 EMA is still 0.999**200 = 82% initial weights after 200 steps
    # (near-black samples from a 200-step run); with it, under 0.001%.
    trainer = GanTraining(TrainConfig(architecture="mlp", ema_decay=0.999, mixed_precision="off"), (28, 28, 1), None,
                          "float32")
    trainer.ema_generator.set_weights([np.zeros_like(w) for w in trainer.ema_generator.get_weights()])
    trainer.generator.set_weights([np.ones_like(w) for w in trainer.generator.get_weights()])
    for step in range(200):
        trainer.step.assign(step)
        trainer.update_ema()
    initial_share = 1.0 - trainer.ema_generator.get_weights()[0]
    assert np.all(initial_share < 1e-5)


# ------------------------------------------------------------------------------ spectral norm
def _largest_singular_value(kernel):
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


@pytest.mark.parametrize("layer, shape", [(lambda: SpectralNormDense(32), (4, 50)),
                                          (lambda: SpectralNormConv2D(16, 5, strides=2), (4, 14, 14, 8))])
def test_spectral_norm_makes_largest_singular_value_one(layer, shape):
    layer = layer()
    x = tf.random.normal(shape)
    layer(x, training=False)
    layer.kernel.assign(layer.kernel * 7.0)  # sigma well above 1 before normalisation
    assert _largest_singular_value(layer.kernel.numpy()) > 2.0
    for _ in range(100):  # power iteration, one step per training call
        layer(x, training=True)
    normalized = layer.normalized_kernel(training=False).numpy()
    # Power iteration converges from below/above at the rate of the singular-value gap; an
    # unnormalised kernel of this shape is far from 1, so 3% still separates the two.
    assert _largest_singular_value(normalized) == pytest.approx(1.0, abs=0.03)
    # Gradients reach the raw kernel.
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x, training=True))
    assert tape.gradient(y, layer.kernel) is not None


def test_spectral_norm_models_save_and_load(tmp_path):
    # The precision this CPU trains in (bfloat16 where it has AVX512-BF16/AMX): oneDNN has no
    # bfloat16 convolution on an AVX2-only CPU.
    d = build_discriminator("dcgan_28", (28, 28, 1), spectral_norm=True, dtype=resolve_precision("auto"))
    assert any(isinstance(layer, SpectralNormConv2D) for layer in d.layers)
    x = tf.random.uniform([2, 28, 28, 1], -1, 1)
    path = str(tmp_path / "d.keras")
    d.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), d(x, training=False).numpy(), atol=1e-5)


# ------------------------------------------------------------------------------ R1 in the D step
def test_r1_is_added_to_the_discriminator_loss():
    config = TrainConfig(architecture="mlp", diffaugment="", r1_gamma=2.0, mixed_precision="off", ema_decay=0.0)
    trainer = GanTraining(config, (28, 28, 1), None, "float32")
    w = np.linspace(-0.01, 0.01, 784).astype(np.float32).reshape(784, 1)
    linear = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)])
    linear.set_weights([w])
    trainer.discriminator = linear
    trainer.d_optimizer = keras.optimizers.SGD(0.0)
    real = tf.random.uniform([4, 28, 28, 1], -1, 1)
    fake = tf.random.uniform([4, 28, 28, 1], -1, 1)
    d_loss, _, _ = trainer.discriminator_update(real, fake, tf.zeros([4], tf.int32))
    real_logits, fake_logits = linear(real), linear(fake)
    from tfx_gan.training.losses import bce_d_loss
    expected = bce_d_loss(real_logits, fake_logits).numpy() + 0.5 * 2.0 * float(np.sum(w ** 2))
    assert d_loss.numpy() == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------ model shapes
@pytest.mark.parametrize("architecture, shape, classes", [
    ("mlp", (28, 28, 1), None), ("dcgan_28", (28, 28, 1), None),
    ("dcgan_rgb", (28, 28, 3), None), ("dcgan_rgb", (32, 32, 3), None), ("dcgan_rgb", (64, 64, 3), None),
    ("conditional_dcgan", (28, 28, 1), 10), ("conditional_dcgan", (64, 64, 3), 3),
])
def test_model_shapes(architecture, shape, classes):
    g = build_generator(architecture, shape, 16, classes)
    d = build_discriminator(architecture, shape, classes)
    z = tf.random.normal([2, 16])
    labels = tf.constant([0, 1], tf.int32)
    images = g([z, labels] if classes else z, training=False)
    assert images.shape == (2,) + shape and images.dtype == tf.float32
    assert np.abs(images.numpy()).max() <= 1.0
    logits = d([images, labels] if classes else images, training=False)
    assert logits.shape == (2, 1) and logits.dtype == tf.float32


def test_dcgan_28_is_the_tensorflow_tutorial_model():
    g = build_generator("dcgan_28", (28, 28, 1), 100)
    d = build_discriminator("dcgan_28", (28, 28, 1))
    from benchmarks.train_throughput import make_discriminator_model, make_generator_model  # the tutorial's code
    assert g.count_params() == make_generator_model().count_params() == 2_330_944
    assert d.count_params() == make_discriminator_model().count_params() == 212_865
    kinds = [type(layer).__name__ for layer in g.layers[1:]]
    assert kinds[:4] == ["Dense", "FusedBatchNorm", "LeakyReLU", "Reshape"]  # same math as Keras BN, below
    assert kinds.count("Conv2DTranspose") == 3


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 6)])
def test_fused_batch_norm_matches_keras_batch_normalization(shape):
    x = tf.random.normal(shape, 0.5, 2.0)
    fused, reference = FusedBatchNorm(), keras.layers.BatchNormalization()
    fused.build(shape)
    reference.build(shape)
    gamma = np.linspace(0.5, 1.5, shape[-1]).astype(np.float32)
    for layer in (fused, reference):
        layer.gamma.assign(gamma)
        layer.beta.assign(gamma - 1.0)
    np.testing.assert_allclose(fused(x, training=True).numpy(), reference(x, training=True).numpy(), atol=1e-4)
    n = np.prod(shape[:-1])  # the fused kernel's moving variance uses the unbiased batch variance
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy() - 0.99, (reference.moving_variance.numpy() - 0.99)
                               * n / (n - 1), atol=1e-4)
    fused.moving_variance.assign(reference.moving_variance)
    np.testing.assert_allclose(fused(x, training=False).numpy(), reference(x, training=False).numpy(), atol=1e-4)


def test_fast_dropout_rate_scaling_and_inference_identity():
    x = tf.ones([64, 14, 14, 8])
    layer = FastDropout(0.3, seed=1)
    y = layer(x, training=True).numpy()
    dropped = np.mean(y == 0)
    assert dropped == pytest.approx(0.3, abs=0.01)
    np.testing.assert_allclose(y[y != 0], 1.0 / 0.7, rtol=1e-6)
    assert not np.array_equal(y, layer(x, training=True).numpy())  # a new mask every call
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = tf.reduce_sum(layer(x, training=True))
    grad = tape.gradient(out, x).numpy()
    assert np.all(np.isclose(grad, 0.0) | np.isclose(grad, 1.0 / 0.7))



# ------------------------------------------------------------------------------ minibatch std, upsampling
def test_minibatch_std_appends_the_batch_mean_standard_deviation():
    varied = tf.random.normal([8, 4, 4, 3], seed=1)
    out = MinibatchStd()(varied).numpy()
    assert out.shape == (8, 4, 4, 4)
    np.testing.assert_array_equal(out[..., :3], varied.numpy())
    expected = np.mean(np.sqrt(np.var(varied.numpy(), axis=0) + 1e-8))
    np.testing.assert_allclose(out[..., 3], expected, rtol=1e-5)
    identical = MinibatchStd()(tf.repeat(varied[:1], 8, axis=0)).numpy()
    assert np.all(identical[..., 3] < 1e-3)  # a collapsed batch is visible to D


@pytest.mark.parametrize("architecture, shape, classes", [
    ("dcgan_28", (28, 28, 1), None), ("conditional_dcgan", (28, 28, 1), 10), ("dcgan_rgb", (32, 32, 3), None)])
def test_resize_upsampling_and_minibatch_std_models(architecture, shape, classes, tmp_path):
    config = TrainConfig(architecture=architecture, g_upsampling="resize", d_minibatch_std=True, latent_dim=16)
    from tfx_gan.training.models import build_models
    g, d = build_models(config, shape, classes)
    kinds = [type(layer).__name__ for layer in g.layers]
    assert "UpSampling2D" in kinds
    assert all(layer.strides == (1, 1) for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose))
    assert "MinibatchStd" in [type(layer).__name__ for layer in d.layers]
    z, labels = tf.random.normal([4, 16]), tf.constant([0, 1, 2, 0])
    images = g([z, labels] if classes else z, training=False)
    assert images.shape == (4,) + shape and np.abs(images.numpy()).max() <= 1.0
    logits = d([images, labels] if classes else images, training=False)
    assert logits.shape == (4, 1)
    d.save(tmp_path / "d.keras")  # the exported Keras copies must load with the new layer
    reloaded = keras.saving.load_model(tmp_path / "d.keras", compile=False)
    np.testing.assert_allclose(reloaded([images, labels] if classes else images, training=False).numpy(),
                               logits.numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ mode seeking
def test_mode_seeking_penalty_punishes_pairs_of_equal_images():
    from tfx_gan.training.losses import mode_seeking_penalty
    latent = tf.random.normal([8, 4], seed=2)
    images = tf.random.uniform([8, 5, 5, 1], -1.0, 1.0, seed=3)
    collapsed = tf.concat([images[:4], images[:4]], 0)
    expected = 1.0 / (np.mean(np.abs(images.numpy()[:4] - images.numpy()[4:])) /
                      np.mean(np.abs(latent.numpy()[:4] - latent.numpy()[4:])) + 1e-5)
    assert float(mode_seeking_penalty(images, latent)) == pytest.approx(expected, rel=1e-4)
    assert float(mode_seeking_penalty(collapsed, latent)) == pytest.approx(1e5, rel=1e-3)


def test_mode_seeking_step_pairs_fakes_of_the_same_class():
    config = TrainConfig(architecture="conditional_dcgan", mode_seeking=1.0, mixed_precision="off", batch_size=6,
                         latent_dim=8, ema_decay=0.0)
    trainer = GanTraining(config, (28, 28, 1), 3, "float32")
    seen = []
    generate = trainer._generate
    trainer._generate = lambda latent, labels, training: seen.append(labels) or generate(latent, labels, training)
    images = tf.random.uniform([6, 28, 28, 1], -1.0, 1.0)
    metrics = trainer.train_step(images, tf.constant([0, 1, 2, 2, 1, 0]))
    assert np.isfinite(float(metrics["g_loss"]))
    np.testing.assert_array_equal(seen[-1].numpy(), [0, 1, 2, 0, 1, 2])


# ------------------------------------------------------------------------------ late learning-rate decay
def _rates_at(optimizer, iterations):
    rates = []
    for i in iterations:
        optimizer.iterations.assign(i)
        rates.append(float(optimizer.learning_rate))
    return rates


def test_late_lr_decay_holds_then_falls_linearly_to_zero_for_both_optimizers():
    config = TrainConfig(architecture="mlp", mixed_precision="off", train_steps=100, lr_decay_from=0.6,
                         g_learning_rate=1e-3, d_learning_rate=2e-3, d_steps_per_g_step=2, ema_decay=0.0)
    trainer = GanTraining(config, (28, 28, 1), None, "float32")
    # G makes one update per step, D two: both hold until step 60, then fall to 0 at step 100.
    assert _rates_at(trainer.g_optimizer, (0, 60, 80, 100, 120)) == pytest.approx([1e-3, 1e-3, 5e-4, 0.0, 0.0])
    assert _rates_at(trainer.d_optimizer, (0, 120, 160, 200)) == pytest.approx([2e-3, 2e-3, 1e-3, 0.0])
    constant = GanTraining(config.replace(lr_decay_from=1.0), (28, 28, 1), None, "float32")
    assert _rates_at(constant.g_optimizer, (0, 100)) == pytest.approx([1e-3, 1e-3])


# ------------------------------------------------------------------------------ truncation
def test_truncation_psi_scales_the_latent_of_the_exported_model_and_the_trainer(tmp_path):
    import json

    from tfx_gan.common import layout
    from tfx_gan.training.export import export_generator
    from tfx_gan.common.options import ConfigError
    config = TrainConfig(architecture="conditional_dcgan", g_upsampling="resize", latent_dim=8, mixed_precision="off",
                         truncation_psi=0.5)
    trainer = GanTraining(config, (28, 28, 1), 3, "float32")
    generator = trainer.export_generator
    z, labels = tf.random.normal([4, 8], seed=5), tf.constant([0, 1, 2, 0])
    expected = generator([0.5 * z, labels], training=False).numpy()
    assert not np.allclose(expected, generator([z, labels], training=False).numpy(), atol=1e-3)
    np.testing.assert_allclose(trainer.generate(z, labels).numpy(), expected, rtol=1e-5, atol=1e-6)
    export_generator(generator, str(tmp_path / "g"), 8, num_classes=3, truncation_psi=config.truncation_psi)
    served = tf.saved_model.load(str(tmp_path / "g")).signatures["serving_default"](latent=z, labels=labels)
    np.testing.assert_allclose(served["images"].numpy(), expected, rtol=1e-5, atol=1e-6)
    with open(layout.metadata_path(str(tmp_path / "g"))) as f:
        assert json.load(f)["truncation_psi"] == 0.5
    for bad in (0, 1.5):
        with pytest.raises(ConfigError, match="truncation_psi: must be in"):
            TrainConfig.from_dict({"truncation_psi": bad})

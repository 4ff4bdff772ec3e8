"""Generators and discriminators, chosen by name (``TrainConfig.architecture``) from the
``ARCHITECTURES`` registry below, which also records each one's image shapes and whether it
needs labels (config validation and the README's table read it).

Generators output float32 images in [-1, 1] (tanh) and take ``latent`` (or ``[latent, labels]``
for conditional models, labels int32 [N]) -- the contract of ``export.py``.
Discriminators output one float32 *logit* per image (no sigmoid) and take ``images`` (or
``[images, labels]``).

``dtype`` is a Keras dtype policy name ("float32", "mixed_bfloat16", "mixed_float16") applied per
layer, so building a mixed-precision model never changes Keras' global policy. The last layers run
in float32 so outputs (and losses) stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers, ops

from tfx_gan.common.registry import Registry

PACKAGE = "gan"


# ---------------------------------------------------------------------------- spectral norm
def _l2_normalize(x, eps=1e-12):
    return x / ops.sqrt(ops.sum(ops.square(x)) + eps)


def spectral_normalize(kernel, u, training):
    """Returns (kernel / sigma, new_u): one power iteration estimates sigma, the largest singular
    value of the kernel reshaped to [fan_in, units]. Gradients flow through sigma (u, v fixed),
    as in Miyato et al. 2018. All in float32."""
    units = kernel.shape[-1]
    w = ops.reshape(ops.cast(kernel, "float32"), (-1, units))
    u = ops.stop_gradient(ops.cast(u, "float32"))
    v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(w))))
    u_new = ops.stop_gradient(_l2_normalize(ops.matmul(v, w)))
    sigma = ops.sum(ops.matmul(v, w) * u_new)
    return ops.cast(kernel, "float32") / sigma, u_new


class _SpectralNormMixin:
    def _add_u(self, units):
        self.sn_u = self.add_weight(shape=(1, units), initializer=keras.initializers.RandomNormal(seed=None),
                                    trainable=False, autocast=False, name="sn_u")

    def normalized_kernel(self, training=False):
        kernel, u_new = spectral_normalize(self.kernel, self.sn_u, training)
        if training:
            self.sn_u.assign(u_new)
        return kernel


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectralNormDense(_SpectralNormMixin, layers.Layer):
    """Dense layer whose kernel is divided by its spectral norm in every forward pass."""

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
                                      autocast=False, name="kernel")
        self.bias = (self.add_weight(shape=(self.units,), initializer="zeros", autocast=False, name="bias")
                     if self.use_bias else None)
        self._add_u(self.units)

    def call(self, inputs, training=False):
        kernel = ops.cast(self.normalized_kernel(training), self.compute_dtype)
        outputs = ops.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpectralNormConv2D(_SpectralNormMixin, layers.Layer):
    """Conv2D (channels_last, 'same' padding) with a spectrally normalised kernel."""

    def __init__(self, filters, kernel_size, strides=1, use_bias=True, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=self.kernel_size + (input_shape[-1], self.filters),
                                      initializer=self.kernel_initializer, autocast=False, name="kernel")
        self.bias = (self.add_weight(shape=(self.filters,), initializer="zeros", autocast=False, name="bias")
                     if self.use_bias else None)
        self._add_u(self.filters)

    def call(self, inputs, training=False):
        kernel = ops.cast(self.normalized_kernel(training), self.compute_dtype)
        outputs = ops.conv(inputs, kernel, strides=self.strides, padding="same")
        if self.bias is not None:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        h = None if input_shape[1] is None else -(-input_shape[1] // self.strides[0])
        w = None if input_shape[2] is None else -(-input_shape[2] // self.strides[1])
        return (input_shape[0], h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


# ---------------------------------------------------------------------------- fast layers
# Measured on this 2-core CPU (batch 256, see benchmarks/train_throughput.py): Keras 3's
# BatchNormalization (moments + normalise as separate ops) and Dropout (one float32 uniform per
# element) cost as much as a convolution here. These layers compute the same functions faster.
def _int32_seed(seed):
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FastDropout(layers.Layer):
    """Dropout whose mask uses 16 random bits per element (two elements per uint32 draw), half the
    random-number work of keras.layers.Dropout. The drop probability is round(rate * 65536) / 65536
    (0.3 -> 0.300003). Inputs are scaled by 1 / (1 - rate) in training, as in Keras."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate <= 0.0:
            return inputs
        seed = _int32_seed(self.seed_generator.next())
        size = tf.size(inputs)
        bits = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
        halves = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])  # a free reinterpretation, no copy
        keep = tf.reshape(halves[:size] >= int(round(self.rate * 65536)), tf.shape(inputs))
        return tf.where(keep, inputs * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype), tf.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNorm(layers.Layer):
    """Batch normalisation over the last axis with TF's fused kernel (one op, ~2x faster on CPU
    than keras.layers.BatchNormalization). Same weights (gamma, beta, moving_mean,
    moving_variance), momentum 0.99 and epsilon 1e-3 defaults. Accepts [N, C] or [N, H, W, C]."""

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = (int(input_shape[-1]),)
        self.gamma = self.add_weight(shape=channels, initializer="ones", autocast=False, name="gamma")
        self.beta = self.add_weight(shape=channels, initializer="zeros", autocast=False, name="beta")
        self.moving_mean = self.add_weight(shape=channels, initializer="zeros", trainable=False, autocast=False,
                                           name="moving_mean")
        self.moving_variance = self.add_weight(shape=channels, initializer="ones", trainable=False,
                                               autocast=False, name="moving_variance")

    def call(self, inputs, training=False):
        x = inputs
        if len(inputs.shape) == 2:
            x = tf.reshape(x, [-1, 1, 1, inputs.shape[-1]])
        gamma = tf.convert_to_tensor(self.gamma)
        beta = tf.convert_to_tensor(self.beta)
        if training:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon,
                                                                  is_training=True)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + tf.stop_gradient(mean) * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + tf.stop_gradient(variance) * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance), epsilon=self.epsilon, is_training=False)
        return tf.reshape(y, tf.shape(inputs)) if len(inputs.shape) == 2 else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinibatchStd(layers.Layer):
    """Appends one channel holding the batch's mean standard deviation of the features (Karras et
    al. 2018, over the whole batch): a discriminator that sees it can tell a batch of near-identical
    fakes from a batch of varied real images, which pushes the generator towards variety. The
    trainer scores real and fake images in separate calls, so each batch is all real or all fake."""

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        std = tf.sqrt(tf.math.reduce_variance(x, axis=0) + 1e-8)  # [H, W, C]
        stat = tf.fill(tf.concat([tf.shape(x)[:-1], [1]], 0), tf.reduce_mean(std))
        return tf.concat([inputs, tf.cast(stat, inputs.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (input_shape[-1] + 1,)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClassAffine(layers.Layer):
    """Class-conditional scale and shift of normalised features (BigGAN's conditional batch norm,
    after a batch norm): x * gamma[y] + beta[y], gamma starting at 1 and beta at 0 for every class.
    Takes [features [N, C] or [N, H, W, C], labels int [N]]."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def build(self, input_shape):
        channels = int(input_shape[0][-1])
        self.gamma = self.add_weight(shape=(self.num_classes, channels), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(self.num_classes, channels), initializer="zeros", name="beta")

    def call(self, inputs):
        x, labels = inputs
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        gamma = ops.cast(ops.take(self.gamma, labels, axis=0), x.dtype)
        beta = ops.cast(ops.take(self.beta, labels, axis=0), x.dtype)
        if len(x.shape) == 4:
            gamma, beta = gamma[:, None, None, :], beta[:, None, None, :]
        return x * gamma + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@dataclass(frozen=True)
class LayerOptions:
    """Layer choices made for speed on CPUs with bf16 (each measured by
    benchmarks/train_throughput.py, which builds models with other values to compare)."""
    fused_batch_norm: bool = True     # TF's fused kernel instead of Keras' BatchNormalization
    fast_dropout: bool = True         # 16-bit dropout masks
    float32_input_conv: bool = True   # the first conv (1-3 input channels) in float32
    dropout_dtype: str | None = "float32"
    # LeakyReLU's gradient kernel has no fast bfloat16 path here: in float32 (with the casts it
    # implies) forward+backward measured 3x faster than in bfloat16.
    activation_dtype: str | None = "float32"


SHIPPED_LAYERS = LayerOptions()


class _Layers:
    """Makes the layers of one network: one dtype policy, spectral norm or not, LayerOptions."""

    def __init__(self, dtype: str, spectral_norm: bool = False, options: LayerOptions = SHIPPED_LAYERS,
                 upsampling: str = "transposed", minibatch_std: bool = False, shape: "DcganShape | None" = None,
                 class_norm: tuple | None = None):
        self.dtype, self.spectral_norm, self.options = dtype, spectral_norm, options
        self.upsampling, self.minibatch_std = upsampling, minibatch_std
        self.shape = shape or DcganShape()
        self.class_norm = class_norm  # (labels input, num_classes): batch norms followed by ClassAffine
        self.d_dropout = 0.3

    def leaky_relu(self, dtype=None, **kwargs):
        return layers.LeakyReLU(dtype=self.options.activation_dtype or dtype or self.dtype, **kwargs)

    def batch_norm(self):
        norm = FusedBatchNorm(dtype=self.dtype) if self.options.fused_batch_norm else layers.BatchNormalization(dtype=self.dtype)
        if self.class_norm is None:
            return norm
        labels, num_classes = self.class_norm
        affine = ClassAffine(num_classes, dtype=self.dtype)
        return lambda x: affine([norm(x), labels])

    def dropout(self, rate):
        dtype = self.options.dropout_dtype or self.dtype
        return FastDropout(rate, dtype=dtype) if self.options.fast_dropout else layers.Dropout(rate, dtype=dtype)

    def dense(self, units, dtype=None, **kwargs):
        dtype = dtype or self.dtype
        if self.spectral_norm:
            return SpectralNormDense(units, dtype=dtype, **kwargs)
        return layers.Dense(units, dtype=dtype, **kwargs)

    def upsample(self, filters, name=None):
        """x2 upsampling to ``filters`` channels. "transposed": the tutorial's 5x5 stride-2
        transposed convolution, whose kernel overlaps unevenly and draws checkerboards (Odena et al.
        2016); "resize": nearest-neighbour x2 then a 3x3 convolution, which cannot."""
        if self.upsampling == "resize":
            up = layers.UpSampling2D(2, interpolation="nearest", dtype=self.dtype)
            conv = layers.Conv2D(filters, 3, padding="same", use_bias=False, dtype=self.dtype, name=name)
            return lambda x: conv(up(x))
        return layers.Conv2DTranspose(filters, 5, strides=2, padding="same", use_bias=False, dtype=self.dtype,
                                      name=name)

    def conv(self, filters, kernel_size, strides, dtype=None):
        dtype = dtype or self.dtype
        if self.spectral_norm:
            return SpectralNormConv2D(filters, kernel_size, strides=strides, dtype=dtype)
        return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", dtype=dtype)


# ---------------------------------------------------------------------------- bodies
@dataclass(frozen=True)
class DcganShape:
    """How big the DCGAN nets are (TrainConfig's g_width, g_base_kernel, d_kernel). The defaults are
    TF's DCGAN tutorial model; most of its compute is the stride-1 5x5 transposed convolution at the
    base resolution (40M of G's 57M multiply-adds per 28x28 image), which a 3x3 kernel cuts by 64%."""
    g_width: float = 1.0       # G's channels relative to the tutorial's (256, 128, 64 at 28 px)
    g_base_kernel: int = 5     # kernel of G's stride-1 convolution at the base resolution
    d_kernel: int = 5          # kernel of D's stride-2 convolutions
    g_skip: bool = False       # G: an RGB output at every resolution, upsampled and summed (StyleGAN2's skips)
    d_residual: bool = False   # D: each stride-2 block plus an average-pooled 1x1 shortcut (StyleGAN2's resnet D)


def _dcgan_plan(size: int, g_width: float = 1.0):
    """(base resolution, channels of the projected base, number of stride-2 upsamplings)."""
    base, width, n_up = {28: (7, 256, 2), 32: (8, 256, 2), 64: (8, 512, 3), 128: (8, 512, 4)}[size]
    return base, max(2 ** n_up, int(round(width * g_width))), n_up


def _dcgan_generator_body(x, image_shape, nets: _Layers):
    """TF DCGAN tutorial generator, generalised: Dense -> BN -> LReLU -> reshape -> ConvT (s1) ->
    x2 upsampling ... -> x2 upsampling to ``channels`` -> tanh (``nets.upsample``). With
    ``g_skip``, the last upsampling keeps features too, and every block adds its own 1x1 "to RGB"
    output to the (bilinearly upsampled) sum of the coarser ones: the coarse layout trains from the
    first steps, as in StyleGAN2's skip generator."""
    height, _, channels = image_shape
    base, width, n_up = _dcgan_plan(height, nets.shape.g_width)
    dtype = nets.dtype
    skip = nets.shape.g_skip
    x = layers.Dense(base * base * width, use_bias=False, dtype=dtype)(x)
    x = nets.batch_norm()(x)
    x = nets.leaky_relu()(x)
    x = layers.Reshape((base, base, width), dtype=dtype)(x)
    width //= 2
    x = layers.Conv2DTranspose(width, nets.shape.g_base_kernel, strides=1, padding="same", use_bias=False,
                               dtype=dtype)(x)
    x = nets.batch_norm()(x)
    x = nets.leaky_relu()(x)

    def to_rgb(features, rgb):
        out = layers.Conv2D(channels, 1, dtype="float32")(features)
        return out if rgb is None else layers.Add(dtype="float32")(
            [layers.UpSampling2D(2, interpolation="bilinear", dtype="float32")(rgb), out])

    rgb = to_rgb(x, None) if skip else None
    for _ in range(n_up - 1):
        width //= 2
        x = nets.upsample(width)(x)
        x = nets.batch_norm()(x)
        x = nets.leaky_relu()(x)
        if skip:
            rgb = to_rgb(x, rgb)
    if skip:
        x = nets.upsample(max(channels, width // 2))(x)
        x = nets.batch_norm()(x)
        x = nets.leaky_relu()(x)
        x = to_rgb(x, rgb)
    else:
        x = nets.upsample(channels)(x)
    return layers.Activation("tanh", dtype="float32", name="images")(x)


def _dcgan_discriminator_features(x, image_shape, nets: _Layers):
    """TF DCGAN tutorial discriminator: Conv 64, 128 (5x5, s2) each LReLU + Dropout 0.3 (+ Conv 256
    at 64 px, + Conv 512 at 128 px), (MinibatchStd,) Flatten."""
    n_conv = {64: 3, 128: 4}.get(image_shape[0], 2)
    for i, filters in enumerate((64, 128, 256, 512)[:n_conv]):
        # The first conv sees 1 or 3 input channels: oneDNN's bfloat16 path is slower than float32
        # there, so under a mixed policy that layer (and the dropout masks) stay float32.
        layer_dtype = "float32" if i == 0 and nets.options.float32_input_conv else nets.dtype
        shortcut = x
        x = nets.conv(filters, nets.shape.d_kernel, 2, dtype=layer_dtype)(x)
        x = nets.leaky_relu(layer_dtype)(x)
        if nets.d_dropout > 0:
            x = nets.dropout(nets.d_dropout)(x)
        if nets.shape.d_residual:  # (block + shortcut) / sqrt(2), the shortcut average-pooled and 1x1-projected
            shortcut = layers.AveragePooling2D(2, dtype=layer_dtype)(shortcut)
            shortcut = layers.Conv2D(filters, 1, use_bias=False, dtype=nets.dtype)(shortcut)
            x = layers.Add(dtype=nets.dtype)([x, shortcut])
            x = layers.Rescaling(2 ** -0.5, dtype=nets.dtype)(x)
    if nets.minibatch_std:
        x = MinibatchStd(dtype=nets.dtype)(x)
    return layers.Flatten(dtype=nets.dtype)(x)


# ---------------------------------------------------------------------------- the architectures
# Each entry: the generator builder (latent, labels, image_shape, num_classes, nets) -> output
# tensor, with the discriminator builder (images, labels, image_shape, num_classes, nets) -> logits
# in its info, the image shapes it can produce (H, W, C) and whether it needs class labels.
ARCHITECTURES = Registry("architecture")
DCGAN_SIZES = (28, 32, 64, 128)
DCGAN_RGB_SHAPES = tuple((size, size, 3) for size in DCGAN_SIZES)
DCGAN_SHAPES = tuple((size, size, c) for size in DCGAN_SIZES for c in (1, 3))


def _mlp_discriminator(images, labels, image_shape, num_classes, nets: _Layers):
    x = layers.Flatten(dtype=nets.dtype)(images)
    for units in (512, 256, 128):
        x = nets.dense(units)(x)
        x = nets.leaky_relu(negative_slope=0.2)(x)
    return nets.dense(1, "float32", name="logits")(x)


@ARCHITECTURES.register(
    "mlp", "fully connected GAN: G 100-128-256-512-1024-784 (tanh), D 784-512-256-128-1, LeakyReLU",
    shapes=((28, 28, 1),), conditional=False, discriminator=_mlp_discriminator)
def _mlp_generator(latent, labels, image_shape, num_classes, nets: _Layers):
    x = latent
    for units in (128, 256, 512, 1024):
        x = layers.Dense(units, dtype=nets.dtype)(x)
        x = nets.leaky_relu(negative_slope=0.2)(x)
    h, w, c = image_shape
    x = layers.Dense(h * w * c, dtype=nets.dtype)(x)
    x = layers.Activation("tanh", dtype="float32")(x)
    return layers.Reshape(image_shape, dtype="float32", name="images")(x)


def _dcgan_discriminator(images, labels, image_shape, num_classes, nets: _Layers):
    return nets.dense(1, "float32", name="logits")(_dcgan_discriminator_features(images, image_shape, nets))


def _dcgan_generator(latent, labels, image_shape, num_classes, nets: _Layers):
    return _dcgan_generator_body(latent, image_shape, nets)


ARCHITECTURES.register("dcgan_28", "TF's DCGAN tutorial model, layer for layer", shapes=((28, 28, 1),),
                       conditional=False, discriminator=_dcgan_discriminator)(_dcgan_generator)
ARCHITECTURES.register("dcgan_rgb", "the DCGAN for colour images, one more upsampling block per size",
                       shapes=DCGAN_RGB_SHAPES, conditional=False, discriminator=_dcgan_discriminator)(_dcgan_generator)
ARCHITECTURES.register("dcgan", "the same DCGAN for grayscale or colour images of any size it supports",
                       shapes=DCGAN_SHAPES, conditional=False, discriminator=_dcgan_discriminator)(_dcgan_generator)


def _projection_discriminator(images, labels, image_shape, num_classes, nets: _Layers):
    features = _dcgan_discriminator_features(images, image_shape, nets)
    features = layers.Activation("linear", dtype="float32")(features)
    unconditional = nets.dense(1, "float32")(features)
    # Projection (Miyato & Koyama 2018): logit = psi(h) + <embed(y), h>.
    embedded = layers.Embedding(num_classes, features.shape[-1], dtype="float32",
                                embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
                                name="class_projection")(labels)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])
    return layers.Add(dtype="float32", name="logits")([unconditional, projection])


@ARCHITECTURES.register(
    "conditional_dcgan", "the DCGAN with a label embedding into G and a projection discriminator: "
    '"500 more images of class 3"', shapes=DCGAN_SHAPES,
    conditional=True, discriminator=_projection_discriminator)
def _conditional_dcgan_generator(latent, labels, image_shape, num_classes, nets: _Layers, label_embedding_dim=50):
    embedded = layers.Embedding(num_classes, label_embedding_dim, dtype=nets.dtype, name="label_embedding")(labels)
    x = layers.Concatenate(dtype=nets.dtype)([latent, embedded])
    if nets.class_norm is not None:
        nets.class_norm = (labels, num_classes)
    return _dcgan_generator_body(x, image_shape, nets)


def _entry_and_labels(architecture: str):
    """The registry entry and, for a conditional architecture, the ``labels`` input."""
    entry = ARCHITECTURES.entry(architecture, "training.architecture")
    labels = keras.Input((), dtype="int32", name="labels") if entry.info["conditional"] else None
    return entry, labels


def build_generator(architecture: str, image_shape, latent_dim: int, num_classes: int | None = None,
                    dtype: str = "float32", layer_options: LayerOptions = SHIPPED_LAYERS,
                    upsampling: str = "transposed", shape: DcganShape | None = None,
                    class_norm: bool = False) -> keras.Model:
    """The generator: ``latent`` (+ ``labels``) -> float32 images in [-1, 1]. Inputs are trusted:
    TrainConfig.validate_for_data checks the shape and labels before anything is built."""
    entry, labels = _entry_and_labels(architecture)
    latent = keras.Input((latent_dim,), name="latent")
    images = entry.build(latent, labels, tuple(int(d) for d in image_shape), num_classes,
                         _Layers(dtype, options=layer_options, upsampling=upsampling, shape=shape,
                                 class_norm=(labels, num_classes) if class_norm and labels is not None else None))
    return keras.Model(latent if labels is None else [latent, labels], images, name="generator")


def build_discriminator(architecture: str, image_shape, num_classes: int | None = None, spectral_norm: bool = False,
                        dtype: str = "float32", layer_options: LayerOptions = SHIPPED_LAYERS,
                        minibatch_std: bool = False, shape: DcganShape | None = None, dropout: float = 0.3) -> keras.Model:
    """The discriminator: ``images`` (+ ``labels``) -> one float32 logit per image."""
    entry, labels = _entry_and_labels(architecture)
    image_shape = tuple(int(d) for d in image_shape)
    images = keras.Input(image_shape, name="images")
    nets = _Layers(dtype, spectral_norm, layer_options, minibatch_std=minibatch_std, shape=shape)
    nets.d_dropout = dropout
    logits = entry.info["discriminator"](images, labels, image_shape, num_classes, nets)
    return keras.Model(images if labels is None else [images, labels], logits, name="discriminator")


def build_models(config, image_shape, num_classes: int | None, dtype: str = "float32",
                 layer_options: LayerOptions = SHIPPED_LAYERS):
    """(generator, discriminator) for a TrainConfig."""
    classes = num_classes if config.conditional else None
    shape = DcganShape(config.g_width, config.g_base_kernel, config.d_kernel, config.g_skip, config.d_residual)
    generator = build_generator(config.architecture, image_shape, config.latent_dim, classes, dtype, layer_options,
                                config.g_upsampling, shape, config.g_class_norm)
    discriminator = build_discriminator(config.architecture, image_shape, classes, config.spectral_norm, dtype,
                                        layer_options, config.d_minibatch_std, shape, config.d_dropout)
    return generator, discriminator

"""GAN losses as small pure functions of discriminator logits (float32 scalars, batch means).

``bce``      non-saturating GAN (Goodfellow et al. 2014, the practical variant; TF DCGAN tutorial):
             D: -log s(r) - log(1 - s(f)),  G: -log s(f)          (s = sigmoid, from logits)
``minimax``  the original saturating objective: D as bce, G minimises log(1 - s(f))
``lsgan``    least squares (Mao et al. 2017):
             D: 0.5 (r - 1)^2 + 0.5 f^2,  G: 0.5 (f - 1)^2
``wgan_gp``  Wasserstein with gradient penalty (Gulrajani et al. 2017): D: f - r + lambda * GP,
             G: -f; interpolation weight ~ U(0, 1), epsilon inside the norm's sqrt
``hinge``    D: relu(1 - r) + relu(1 + f),  G: -f
``rpgan``    relativistic pairing (Jolicoeur-Martineau 2019; R3GAN, Huang et al. 2024), each real
             image paired with one fake: D: softplus(f - r),  G: softplus(r - f)

Penalties take the gradient of D w.r.t. its input, computed by the caller's GradientTape.
"""
from __future__ import annotations

import tensorflow as tf

from tfx_gan.common.registry import Registry

GP_EPSILON = 1e-10


def _f32(x):
    return tf.cast(x, tf.float32)


def _mean(x):
    return tf.reduce_mean(_f32(x))


# ---------------------------------------------------------------- discriminator losses
def bce_d_loss(real_logits, fake_logits):
    """-log sigmoid(real) - log(1 - sigmoid(fake)), computed stably with softplus."""
    return _mean(tf.nn.softplus(-_f32(real_logits))) + _mean(tf.nn.softplus(_f32(fake_logits)))


def lsgan_d_loss(real_logits, fake_logits):
    return 0.5 * _mean(tf.square(_f32(real_logits) - 1.0)) + 0.5 * _mean(tf.square(_f32(fake_logits)))


def wgan_d_loss(real_logits, fake_logits):
    """Critic loss without the penalty (add ``gp_weight * gradient_penalty(...)``)."""
    return _mean(fake_logits) - _mean(real_logits)


def hinge_d_loss(real_logits, fake_logits):
    return _mean(tf.nn.relu(1.0 - _f32(real_logits))) + _mean(tf.nn.relu(1.0 + _f32(fake_logits)))


def rpgan_d_loss(real_logits, fake_logits):
    """Relativistic pairing: -log sigmoid(r - f) over pairs (the i-th real with the i-th fake)."""
    return _mean(tf.nn.softplus(_f32(fake_logits) - _f32(real_logits)))


# ---------------------------------------------------------------- generator losses
# Each takes D's logits on the fakes and on the real images of the same step (only the
# relativistic loss reads the latter).
def rpgan_g_loss(fake_logits, real_logits):
    return _mean(tf.nn.softplus(_f32(real_logits) - _f32(fake_logits)))


def bce_g_loss(fake_logits, real_logits=None):
    """Non-saturating: -log sigmoid(fake)."""
    return _mean(tf.nn.softplus(-_f32(fake_logits)))


def minimax_g_loss(fake_logits, real_logits=None):
    """Saturating: log(1 - sigmoid(fake)) = -softplus(fake); G minimises it."""
    return -_mean(tf.nn.softplus(_f32(fake_logits)))


def lsgan_g_loss(fake_logits, real_logits=None):
    return 0.5 * _mean(tf.square(_f32(fake_logits) - 1.0))


def wgan_g_loss(fake_logits, real_logits=None):
    return -_mean(fake_logits)


hinge_g_loss = wgan_g_loss

# name -> the G loss, with the D loss and the logit above which D calls an image real (for the
# accuracy metrics) in its info. TrainConfig's choices and the README's table read it.
LOSSES = Registry("loss")
LOSSES.register("bce", "non-saturating, from logits", d_loss=bce_d_loss, real_threshold=0.0)(bce_g_loss)
LOSSES.register("minimax", "the original saturating objective", d_loss=bce_d_loss, real_threshold=0.0)(minimax_g_loss)
LOSSES.register("lsgan", "least squares", d_loss=lsgan_d_loss, real_threshold=0.5)(lsgan_g_loss)
LOSSES.register("wgan_gp", "Wasserstein with gradient penalty", d_loss=wgan_d_loss, real_threshold=0.0)(wgan_g_loss)
LOSSES.register("hinge", "hinge", d_loss=hinge_d_loss, real_threshold=0.0)(hinge_g_loss)
LOSSES.register("rpgan", "relativistic pairing (R3GAN's loss; use with r1_gamma and r2_gamma)", d_loss=rpgan_d_loss,
                real_threshold=0.0)(rpgan_g_loss)


def get(name: str):
    """(d_loss_fn, g_loss_fn) by name."""
    entry = LOSSES.entry(name, "training.loss")
    return entry.info["d_loss"], entry.build


# ---------------------------------------------------------------- penalties
def interpolate(real, fake, alpha):
    """Random points on lines between real and fake images; alpha [N] ~ U(0, 1)."""
    alpha = tf.reshape(_f32(alpha), [-1] + [1] * (len(real.shape) - 1))
    return _f32(real) + alpha * (_f32(fake) - _f32(real))


def gradient_penalty(input_gradients, epsilon: float = GP_EPSILON):
    """WGAN-GP: mean over the batch of (||grad D(x_hat)||_2 - 1)^2, with epsilon inside the sqrt so
    the gradient of the norm is finite where the input gradient is zero."""
    g = _f32(input_gradients)
    norms = tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(g, [tf.shape(g)[0], -1])), axis=1) + epsilon)
    return tf.reduce_mean(tf.square(norms - 1.0))


def r1_penalty(real_input_gradients):
    """R1 (Mescheder et al. 2018): mean over real images of ||grad D(x)||^2; the caller multiplies
    by gamma / 2. Given the gradients at fake images, the same function is R2 (Roth et al. 2017)."""
    g = _f32(real_input_gradients)
    return tf.reduce_mean(tf.reduce_sum(tf.square(tf.reshape(g, [tf.shape(g)[0], -1])), axis=1))


def mode_seeking_penalty(images, latent, epsilon: float = 1e-5):
    """Mode seeking (Mao et al. 2019, MSGAN): the first and second halves of the batch are pairs
    of images of the same class from different latents; 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2| +
    epsilon) grows when G maps different latents to the same image (within-class collapse)."""
    half = tf.shape(images)[0] // 2
    images, latent = _f32(images), _f32(latent)
    image_distance = tf.reduce_mean(tf.abs(images[:half] - images[half:2 * half]))
    latent_distance = tf.reduce_mean(tf.abs(latent[:half] - latent[half:2 * half]))
    return 1.0 / (image_distance / latent_distance + epsilon)


# ---------------------------------------------------------------- metrics
def accuracies(real_logits, fake_logits, loss: str = "bce"):
    """(fraction of real images D calls real, fraction of fakes D calls fake)."""
    t = LOSSES.entry(loss).info["real_threshold"]
    real_acc = tf.reduce_mean(tf.cast(_f32(real_logits) > t, tf.float32))
    fake_acc = tf.reduce_mean(tf.cast(_f32(fake_logits) <= t, tf.float32))
    return real_acc, fake_acc

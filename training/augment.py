"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Random translation, cutout and colour transforms built from differentiable TF ops. The trainer
applies the same policy to real and generated images, in the discriminator step and in the
generator step (gradients flow through the augmentation into G), so D never sees un-augmented
images and G is not taught to produce augmented ones.

Images are NHWC in [-1, 1]. Translation fills the uncovered border by repeating the edge pixels
(the original pads with 0 = mid-grey, which in [-1, 1] would paint grey bars on black digits);
cutout fills with 0 as in the original.
"""
from __future__ import annotations

import tensorflow as tf

POLICIES = ("translation", "cutout", "color")


def _uniform(rng, shape, minval=0.0, maxval=1.0, dtype=tf.float32):
    if rng is None:
        return tf.random.uniform(shape, minval, maxval, dtype=dtype)
    return rng.uniform(shape, minval, maxval, dtype=dtype)


def rand_brightness(x, rng=None):
    return x + (_uniform(rng, [tf.shape(x)[0], 1, 1, 1], dtype=x.dtype) - 0.5)


def rand_saturation(x, rng=None):
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return (x - mean) * (_uniform(rng, [tf.shape(x)[0], 1, 1, 1], dtype=x.dtype) * 2.0) + mean


def rand_contrast(x, rng=None):
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (_uniform(rng, [tf.shape(x)[0], 1, 1, 1], dtype=x.dtype) + 0.5) + mean


def rand_color(x, rng=None):
    return rand_contrast(rand_saturation(rand_brightness(x, rng), rng), rng)


def rand_translation(x, rng=None, ratio: float = 0.125):
    """Shifts each image by up to ratio * size pixels in x and y (integers, edge-replicated)."""
    batch = tf.shape(x)[0]
    height, width = x.shape[1], x.shape[2]
    shift_h, shift_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = tf.cast(tf.floor(_uniform(rng, [batch, 1]) * (2 * shift_h + 1)), tf.int32) - shift_h
    dx = tf.cast(tf.floor(_uniform(rng, [batch, 1]) * (2 * shift_w + 1)), tf.int32) - shift_w
    rows = tf.clip_by_value(tf.range(height)[None, :] + dy, 0, height - 1)  # [N, H]
    cols = tf.clip_by_value(tf.range(width)[None, :] + dx, 0, width - 1)  # [N, W]
    x = tf.gather(x, rows, axis=1, batch_dims=1)
    x = tf.gather(x, cols, axis=2, batch_dims=1)
    return x


def rand_cutout(x, rng=None, ratio: float = 0.5):
    """Zeroes one square of side ratio * size at a random place in each image."""
    batch = tf.shape(x)[0]
    height, width = x.shape[1], x.shape[2]
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    cy = tf.cast(tf.floor(_uniform(rng, [batch, 1, 1]) * (height + (1 - cut_h % 2))), tf.int32)
    cx = tf.cast(tf.floor(_uniform(rng, [batch, 1, 1]) * (width + (1 - cut_w % 2))), tf.int32)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = ((ys >= cy - cut_h // 2) & (ys < cy - cut_h // 2 + cut_h) &
              (xs >= cx - cut_w // 2) & (xs < cx - cut_w // 2 + cut_w))
    mask = 1.0 - tf.cast(inside, x.dtype)
    return x * mask[..., None]


_FUNCTIONS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def parse_policy(policy) -> tuple[str, ...]:
    if isinstance(policy, str):
        names = tuple(p.strip() for p in policy.split(",") if p.strip())
    else:
        names = tuple(policy or ())
    for name in names:
        if name not in _FUNCTIONS:
            raise ValueError(f"diffaugment policy {name!r} is not one of: {', '.join(POLICIES)}")
    return names


def diff_augment(x, policy="translation,cutout", rng: tf.random.Generator | None = None, probability=None):
    """Applies the policies in the canonical order (color, translation, cutout). ``probability``
    (a scalar, may be a tf.Variable): each policy is applied to each image with this probability
    (ADA's p, Karras et al. 2020); None: always (DiffAugment)."""
    names = parse_policy(policy)
    if not names:
        return x
    for name in ("color", "translation", "cutout"):  # the paper's order, whatever order the config uses
        if name in names:
            augmented = _FUNCTIONS[name](x, rng)
            if probability is None:
                x = augmented
            else:
                chosen = _uniform(rng, [tf.shape(x)[0], 1, 1, 1]) < tf.cast(probability, tf.float32)
                x = tf.where(chosen, augmented, x)
    return x

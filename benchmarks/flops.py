"""FLOPs of a train step and the machine's measured fp32 peak, so a throughput figure can be read as
"how much of this CPU does the step use".

Counting: a layer's forward multiply-adds per image (Dense: in x out; Conv2D: output pixels x
kernel area x in x out channels; Conv2DTranspose: input pixels x kernel area x in x out). A training
pass costs 3x its forward pass (the forward pass, the gradient with respect to the layer's input and
the one with respect to its kernel: each the same multiply-adds), and one multiply-add is 2 FLOPs.
A GAN step runs G once and D twice (real and fake) that way, so its FLOPs per image are
6 x (G's forward multiply-adds + 2 x D's). This slightly overcounts (D's first layer needs no input
gradient on real images) and ignores the element-wise work (batch norm, activations, Adam, EMA).
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

TRAINING_PASSES = 3  # forward, input gradient, kernel gradient


def _spatial(shape):
    return int(np.prod([d for d in shape[1:-1]]))


def layer_macs(layer, input_shape, output_shape) -> int:
    """Forward multiply-adds per image of one Keras layer (0 for layers without a kernel)."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    k = [int(d) for d in kernel.shape]
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return _spatial(input_shape) * int(np.prod(k))
    if len(k) == 4:  # Conv2D and SpectralNormConv2D: kernel [kh, kw, in, out]
        return _spatial(output_shape) * int(np.prod(k))
    return int(np.prod(k))  # Dense: [in, out]


def conv_layers(model: keras.Model):
    """(layer, input shape, output shape) of the layers with a kernel, in order."""
    found = []
    for layer in model.layers:
        if getattr(layer, "kernel", None) is None or isinstance(layer, keras.layers.Embedding):
            continue
        found.append((layer, tuple(layer.input.shape), tuple(layer.output.shape)))
    return found


def forward_macs(model: keras.Model) -> int:
    return sum(layer_macs(layer, i, o) for layer, i, o in conv_layers(model))


def step_flops_per_image(generator: keras.Model, discriminator: keras.Model) -> int:
    return 2 * TRAINING_PASSES * (forward_macs(generator) + 2 * forward_macs(discriminator))


def best_seconds(fn, repeats: int) -> float:
    fn()  # trace
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peak(repeats: int = 5) -> dict:
    """fp32 GFLOP/s of a large matmul (2048^3) and a large 3x3 convolution (64x28x28, 128 -> 128
    channels), best of ``repeats``: what this process can get from the CPU, measured, not the data
    sheet's figure."""
    a, b = tf.random.normal([2048, 2048]), tf.random.normal([2048, 2048])
    x, k = tf.random.normal([64, 28, 28, 128]), tf.random.normal([3, 3, 128, 128])
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    conv = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")))
    matmul_flops = 2 * 2048 ** 3
    conv_flops = 2 * 64 * 28 * 28 * 9 * 128 * 128
    result = {"matmul_gflops": matmul_flops / best_seconds(lambda: float(matmul()), repeats) / 1e9,
              "conv_gflops": conv_flops / best_seconds(lambda: float(conv()), repeats) / 1e9}
    result["peak_gflops"] = max(result["matmul_gflops"], result["conv_gflops"])
    return result


def _train_pass(layer, x):
    """A tf.function: ``layer`` forward on ``x`` and both of its gradients (input and weights)."""
    variables = layer.trainable_variables

    @tf.function
    def train_pass():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        grads = tape.gradient(y, [x] + variables)
        # y is returned too: the gradient of a sum does not need the forward output, so without it
        # TF prunes the forward pass and the layer would seem to run at 3/2 of its real rate.
        return y + tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads])

    return train_pass


def layer_efficiency(model: keras.Model, batch: int, repeats: int = 5) -> list[dict]:
    """Each kernel layer of ``model`` trained alone at its real shapes (forward, both gradients, one
    tf.function): milliseconds per batch and achieved GFLOP/s."""
    rows = []
    for layer, in_shape, out_shape in conv_layers(model):
        x = tf.random.normal((batch,) + tuple(int(d) for d in in_shape[1:]), dtype=layer.compute_dtype)
        train_pass = _train_pass(layer, x)
        seconds = best_seconds(lambda: float(train_pass()), repeats)
        flops = 2 * TRAINING_PASSES * layer_macs(layer, in_shape, out_shape) * batch
        rows.append({"model": model.name, "layer": layer.name, "kind": type(layer).__name__,
                     "input": "x".join(str(int(d)) for d in in_shape[1:]),
                     "kernel": "x".join(str(int(d)) for d in layer.kernel.shape),
                     "mflops_per_batch": flops / 1e6, "ms": seconds * 1000, "gflops": flops / seconds / 1e9})
    return rows

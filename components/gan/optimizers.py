"""Adam with TensorFlow's fused kernel.

keras.optimizers.Adam updates each variable with about ten element-wise ops (square, subtract,
multiply, sqrt, divide, three assigns), each a full pass over the variable; the DCGAN generator
has 2.3M weights, so on a CPU that is a visible share of a train step. ``ResourceApplyAdam`` does
the same update in one pass. The arithmetic is Adam's, as Keras writes it:

    m <- m + (g - m)(1 - beta_1);  v <- v + (g^2 - v)(1 - beta_2)
    w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

The slot variables are Keras's own, so checkpoints of this optimizer and of keras.optimizers.Adam
are interchangeable.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from components.gan.models import PACKAGE


def _handle(variable):
    # KerasVariable -> tf.Variable (or the replica's component of a distributed one, which is what
    # ``.handle`` returns inside a tf.distribute update).
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose dense update is one ``ResourceApplyAdam`` op per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype), use_locking=False)

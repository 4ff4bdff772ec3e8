"""One GAN training step and what it updates: ``GanTraining`` holds the models, optimizers, the EMA
generator and the compiled step.

One step (``GanTraining.train_step``), read top to bottom, as the ``train_step`` of TF's DCGAN
tutorial and keras-io's DCGAN example:

1. (``d_steps_per_g_step`` > 1 only) extra discriminator updates on fresh fakes;
2. the generator draws a batch of fakes; the discriminator scores (DiffAugment-ed) real and fake
   images; D's loss (plus the R1 or WGAN-GP penalty) and G's loss (plus the mode-seeking term)
   come from those logits;
3. both nets are updated from that one forward pass (two GradientTapes);
4. the EMA generator moves towards the generator.

Everything in the step runs in one ``tf.function`` (``make_step_fn``), distributed with the
caller's ``tf.distribute`` strategy.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from tfx_gan.training import augment as augment_lib
from tfx_gan.training import losses as losses_lib
from tfx_gan.training.config import TrainConfig
from tfx_gan.training.export import generator_inputs
from tfx_gan.training.models import SHIPPED_LAYERS, LayerOptions, build_models


class LateLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``initial`` until update ``start``, then linearly down to 0 at update ``end``. ``start`` and
    ``end`` are variables: a time-budgeted run sets them once it has measured how many updates fit
    (``GanTraining.set_horizon``)."""

    def __init__(self, initial: float, start: int, end: int):
        self.initial = float(initial)
        self.start = tf.Variable(float(start), trainable=False, dtype=tf.float32, name="decay_start")
        self.end = tf.Variable(float(end), trainable=False, dtype=tf.float32, name="decay_end")

    def __call__(self, step):
        progress = (tf.cast(step, tf.float32) - self.start) / tf.maximum(1.0, self.end - self.start)
        return self.initial * (1.0 - tf.clip_by_value(progress, 0.0, 1.0))

    def get_config(self):
        return {"initial": self.initial, "start": float(self.start.numpy()), "end": float(self.end.numpy())}


class GanTraining:
    """Models, optimizers, EMA and the compiled train step. Create inside ``strategy.scope()``."""

    def __init__(self, config: TrainConfig, image_shape, num_classes: int | None, precision: str,
                 num_replicas: int = 1, layer_options: LayerOptions = SHIPPED_LAYERS):
        self.config = config
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = config.net_classes(num_classes)  # the labels the nets take
        self.clusters = None  # a self-conditioned run's Clusters: train_gan sets them before training
        self.precision = precision
        self.num_replicas = num_replicas
        self.generator, self.discriminator = build_models(config, image_shape, self.num_classes, precision, layer_options)
        self.ema_generator = None
        if config.ema_decay > 0:
            self.ema_generator, _ = build_models(config, image_shape, self.num_classes, precision, layer_options)
            self.ema_generator.set_weights(self.generator.get_weights())
        self.g_optimizer = self._optimizer(config.g_learning_rate, "g_optimizer")
        self.d_optimizer = self._optimizer(config.d_learning_rate, "d_optimizer", config.d_steps_per_g_step)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.rng = tf.random.Generator.from_seed(config.seed + 1)
        self.d_loss_fn, self.g_loss_fn = losses_lib.get(config.loss)
        self.augment_policy = config.diffaugment_policies
        # ADA's augmentation probability (None: DiffAugment, every image augmented).
        self.augment_p = (tf.Variable(0.0, trainable=False, name="augment_p",
                                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
                          if config.ada_target is not None and self.augment_policy else None)

    def _optimizer(self, learning_rate, name, updates_per_step: int = 1):
        cfg = self.config
        if cfg.lr_decay_from < 1:
            learning_rate = LateLinearDecay(learning_rate, int(cfg.lr_decay_from * cfg.train_steps) * updates_per_step,
                                            cfg.train_steps * updates_per_step)
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2, name=name)
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        return optimizer

    def set_horizon(self, steps: int) -> None:
        """Where the late learning-rate decay ends: ``steps`` generator steps (a time budget's measured
        estimate, when it ends training before train_steps); the decay starts at lr_decay_from of it."""
        for optimizer, updates in ((self.g_optimizer, 1), (self.d_optimizer, self.config.d_steps_per_g_step)):
            schedule = getattr(getattr(optimizer, "inner_optimizer", optimizer), "_learning_rate", None)
            if isinstance(schedule, LateLinearDecay):
                schedule.start.assign(float(int(self.config.lr_decay_from * steps) * updates))
                schedule.end.assign(float(steps * updates))

    def checkpoint(self) -> tf.train.Checkpoint:
        parts = dict(step=self.step, generator=self.generator, discriminator=self.discriminator,
                     g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer, rng=self.rng)
        if self.augment_p is not None:
            parts["augment_p"] = self.augment_p
        if self.ema_generator is not None:
            parts["ema_generator"] = self.ema_generator
        return tf.train.Checkpoint(**parts)

    @property
    def served_classes(self) -> int | None:
        """The labels callers give the generator: None when unconditional or self-conditioned."""
        return self.config.served_classes(self.num_classes)

    @property
    def export_generator(self) -> keras.Model:
        return self.ema_generator if self.ema_generator is not None else self.generator

    # -- small helpers used by the step ------------------------------------------------
    def _generate(self, latent, labels, training):
        inputs = [latent, labels] if self.num_classes else latent
        return self.generator(inputs, training=training)

    def _discriminate(self, images, labels, training=True):
        inputs = [images, labels] if self.num_classes else images
        return tf.cast(self.discriminator(inputs, training=training), tf.float32)

    def _augment(self, images):
        return augment_lib.diff_augment(images, self.augment_policy, self.rng, self.augment_p)

    def _penalty(self, images, labels, gamma):
        """gamma / 2 * E||grad_x D(x)||^2 at ``images`` (R1 at real images, R2 at fakes), from its
        own forward pass; with lazy regularisation only every ``r_interval`` steps, weighted by it."""
        images = tf.stop_gradient(tf.cast(images, tf.float32))
        interval = self.config.r_interval

        def penalty():
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(images)
                total = tf.reduce_sum(self._discriminate(self._augment(images), labels))
            return 0.5 * gamma * interval * losses_lib.r1_penalty(tape.gradient(total, images))

        if interval == 1:
            return penalty()
        return tf.cond(self.step % interval == 0, penalty, lambda: tf.constant(0.0))

    def update_augment_p(self, real_logits):
        """ADA: p up when D is too sure of the real images (E[sign D(real)] above the target), down
        otherwise, by batch / ada_images per step, within [0, 1]."""
        if self.augment_p is None:
            return
        threshold = losses_lib.LOSSES.entry(self.config.loss).info["real_threshold"]
        overfit = tf.reduce_mean(tf.sign(tf.cast(real_logits, tf.float32) - threshold))
        step = tf.cast(tf.shape(real_logits)[0], tf.float32) / self.config.ada_images
        self.augment_p.assign(tf.clip_by_value(
            self.augment_p + tf.sign(overfit - self.config.ada_target) * step, 0.0, 1.0))

    def _scaled(self, optimizer, loss):
        """Mean-over-global-batch scaling for tf.distribute (gradients are summed over replicas),
        then loss scaling for float16."""
        loss = loss / self.num_replicas
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
        return loss

    def discriminator_loss(self, real, fake, labels, fake_labels=None):
        """D's loss (with the R1 / WGAN-GP penalty) and its logits on real and fake images.
        Runs inside the caller's GradientTape(s); real and fake go through D in separate calls
        (measured faster here than one call on the concatenated batch). ``fake_labels``: the fakes'
        classes when they are not ``labels``."""
        cfg = self.config
        fake_labels = labels if fake_labels is None else fake_labels
        eager_r1 = cfg.r1_gamma > 0 and cfg.r_interval == 1
        if eager_r1:  # R1: gradient of D at the real images, from this forward pass
            with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                r1_tape.watch(real)
                real_logits = self._discriminate(self._augment(real), labels)
                real_sum = tf.reduce_sum(real_logits)
        else:
            real_logits = self._discriminate(self._augment(real), labels)
        fake_logits = self._discriminate(self._augment(fake), fake_labels)
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        if eager_r1:
            d_loss += 0.5 * cfg.r1_gamma * losses_lib.r1_penalty(r1_tape.gradient(real_sum, real))
        elif cfg.r1_gamma > 0:
            d_loss += self._penalty(real, labels, cfg.r1_gamma)
        if cfg.r2_gamma > 0:
            d_loss += self._penalty(fake, fake_labels, cfg.r2_gamma)
        if cfg.loss == "wgan_gp":  # gradient penalty at random points between real and fake
            alpha = self.rng.uniform([tf.shape(real)[0]], 0.0, 1.0)
            mixed = losses_lib.interpolate(real, tf.stop_gradient(fake), alpha)
            with tf.GradientTape(watch_accessed_variables=False) as gp_tape:
                gp_tape.watch(mixed)
                mixed_sum = tf.reduce_sum(self._discriminate(self._augment(mixed), labels))
            d_loss += cfg.gp_weight * losses_lib.gradient_penalty(gp_tape.gradient(mixed_sum, mixed))
        return d_loss, real_logits, fake_logits

    def discriminator_update(self, real, fake, labels):
        """One D-only step (used for the extra steps of d_steps_per_g_step > 1)."""
        with tf.GradientTape() as tape:
            d_loss, real_logits, fake_logits = self.discriminator_loss(real, tf.stop_gradient(fake), labels)
            scaled = self._scaled(self.d_optimizer, d_loss)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        real_acc, fake_acc = losses_lib.accuracies(real_logits, fake_logits, self.config.loss)
        return d_loss, real_acc, fake_acc

    def update_ema(self):
        # TF's ExponentialMovingAverage warm-up: short runs still get a useful average.
        step = tf.cast(self.step, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_weight, weight in zip(self.ema_generator.weights, self.generator.weights):
            ema_weight.assign(decay * ema_weight + (1.0 - decay) * tf.cast(weight, ema_weight.dtype))

    # -- the step ---------------------------------------------------------------------
    def train_step(self, images, labels):
        """d_steps_per_g_step discriminator updates and one generator update (per replica).

        The last D update and the G update come from one forward pass, as in TF's DCGAN tutorial:
        both losses are computed from D's logits on the same fakes and both nets step together.
        """
        cfg = self.config
        k = cfg.d_steps_per_g_step
        batch = tf.shape(images)[0] // k
        chunks = [(images[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch]) for i in range(k)]

        # Extra discriminator steps (d_steps_per_g_step > 1), each on its own real batch.
        for real, real_labels in chunks[:-1]:
            latent = self.rng.normal([batch, cfg.latent_dim])
            self.discriminator_update(real, self._generate(latent, real_labels, training=True), real_labels)

        # One forward pass, then both updates.
        real, real_labels = chunks[-1]
        latent = self.rng.normal([batch, cfg.latent_dim])
        fake_labels = real_labels
        if cfg.mode_seeking > 0:  # the second half of the fakes: the first half's classes, other latents
            half = batch // 2
            fake_labels = tf.concat([real_labels[:half], real_labels[:half], real_labels[2 * half:]], 0)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self._generate(latent, fake_labels, training=True)
            d_loss, real_logits, fake_logits = self.discriminator_loss(real, fake, real_labels, fake_labels)
            g_loss = self.g_loss_fn(fake_logits, tf.stop_gradient(real_logits))
            if cfg.mode_seeking > 0:
                g_loss += cfg.mode_seeking * losses_lib.mode_seeking_penalty(fake, latent)
            d_scaled = self._scaled(self.d_optimizer, d_loss)
            g_scaled = self._scaled(self.g_optimizer, g_loss)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = g_tape.gradient(g_scaled, g_vars)
        d_grads = d_tape.gradient(d_scaled, d_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars))

        if self.ema_generator is not None:
            self.update_ema()
        self.update_augment_p(real_logits)
        real_acc, fake_acc = losses_lib.accuracies(real_logits, fake_logits, cfg.loss)
        metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc}
        if self.augment_p is not None:
            metrics["augment_p"] = tf.identity(self.augment_p)
        return metrics

    def make_step_fn(self, strategy):
        """The compiled, distributed step: batch -> metrics averaged over replicas."""
        replica_step = self.train_step
        if self.config.jit_compile:
            replica_step = tf.function(self.train_step, jit_compile=True)

        @tf.function
        def step_fn(batch):
            images, labels = batch
            per_replica = strategy.run(replica_step, args=(images, labels))
            metrics = {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                       for k, v in per_replica.items()}
            self.step.assign_add(1)
            return metrics

        return step_fn

    def generate(self, latent, labels=None, use_ema=True):
        """Images as the exported generator draws them from z ~ N(0, I) (``latent``): its weights
        (the EMA copy unless ``use_ema`` is False), the truncation psi and, self-conditioned, the
        cluster drawn from z unless ``labels`` name it."""
        model = self.export_generator if use_ema else self.generator
        inputs = generator_inputs(latent, labels, self.config.truncation_psi, self.clusters)
        return tf.cast(model(inputs, training=False), tf.float32)

"""GAN training: ``train_gan`` (resumable, distributable) and ``save_trained_models``.

The library behind the GanTrainer component; plain TensorFlow/Keras 3, no TFX imports.

One training step (``GanTraining.train_step``), read top to bottom:

1. (``d_steps_per_g_step`` > 1 only) extra discriminator updates on fresh fakes;
2. the generator draws a batch of fakes; the discriminator scores (DiffAugment-ed) real and fake
   images; D's loss (plus the R1 or WGAN-GP penalty) and G's loss come from those logits;
3. both nets are updated from that one forward pass (two GradientTapes, as in TF's DCGAN tutorial);
4. the EMA generator moves towards the generator.

Everything in the step runs in one ``tf.function``; the Python loop around it only logs, writes
samples and checkpoints. Losses are checked for NaN/inf at every log line and before every
checkpoint: a diverged run raises ``TrainingDivergedError`` and saves nothing.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf
import keras

from components import layout
from components.gan import augment as augment_lib
from components.gan import losses as losses_lib
from components.gan.config import TrainConfig
from components.gan.example_format import training_dataset
from components.gan.export import export_generator, load_keras_model, save_keras_models
from components.gan.models import SHIPPED_LAYERS, LayerOptions, build_models  # also registers the custom layers
from components.gan.samples import image_grid, save_loss_curve, save_png

HISTORY_KEYS = ("step", "d_loss", "g_loss", "d_real_acc", "d_fake_acc", "images_per_sec")
HISTORY_FILENAME = "history.json"
SAMPLE_GRID_SIZE = 64


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; nothing was saved."""

    def __init__(self, step: int, loss_name: str, value: float):
        super().__init__(f"training diverged at step {step}: {loss_name} is {value} "
                         "(nothing was saved; try lower learning rates, spectral_norm or r1_gamma)")
        self.step, self.loss_name, self.value = step, loss_name, value


@dataclass
class TrainResult:
    generator: keras.Model  # the EMA generator when ema_decay > 0: the one to export
    discriminator: keras.Model
    history: dict = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})
    steps: int = 0
    seconds: float = 0.0
    resumed_from_step: int = 0
    precision: str = "float32"
    strategy: str = "none"
    sample_paths: list = field(default_factory=list)
    warm_started_from: str | None = None  # the serving dir whose weights training started from
    live_generator: keras.Model | None = None  # the trained (non-EMA) generator


# ---------------------------------------------------------------------------- environment choices
def cpu_supports_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str) -> str:
    """The Keras dtype policy for ``mixed_precision``. "auto": mixed_float16 (with loss scaling) on a
    GPU; on CPU mixed_bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX: measured ~1.4x faster
    here, see benchmarks/train_throughput.py), else float32."""
    if setting == "off":
        return "float32"
    if setting != "auto":
        return setting
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bf16() else "float32"


def resolve_strategy(setting: str) -> tf.distribute.Strategy:
    """"none": the default (no-op) strategy; "mirrored": MirroredStrategy over the local GPUs (or the
    CPU when there are none); "multi_worker": MultiWorkerMirroredStrategy from TF_CONFIG (create it
    at program start, before other TF work, as TF requires); "auto": multi_worker when TF_CONFIG
    names several workers, mirrored with >1 GPU, else none."""
    if setting == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        if workers > 1:
            setting = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            setting = "mirrored"
        else:
            setting = "none"
    if setting == "none":
        return tf.distribute.get_strategy()
    if setting == "mirrored":
        devices = None if tf.config.list_logical_devices("GPU") else ["/cpu:0"]
        return tf.distribute.MirroredStrategy(devices=devices)
    if setting == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"distribution {setting!r} is not one of: auto, none, mirrored, multi_worker")


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


# ---------------------------------------------------------------------------- the trainer
class GanTraining:
    """Models, optimizers, EMA and the compiled train step. Create inside ``strategy.scope()``."""

    def __init__(self, config: TrainConfig, image_shape, num_classes: int | None, precision: str,
                 num_replicas: int = 1, layer_options: LayerOptions = SHIPPED_LAYERS):
        self.config = config
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_classes = num_classes if config.conditional else None
        self.precision = precision
        self.num_replicas = num_replicas
        self.generator, self.discriminator = build_models(config, image_shape, self.num_classes, precision, layer_options)
        self.ema_generator = None
        if config.ema_decay > 0:
            self.ema_generator, _ = build_models(config, image_shape, self.num_classes, precision, layer_options)
            self.ema_generator.set_weights(self.generator.get_weights())
        self.g_optimizer = self._optimizer(config.g_learning_rate, "g_optimizer")
        self.d_optimizer = self._optimizer(config.d_learning_rate, "d_optimizer")
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.rng = tf.random.Generator.from_seed(config.seed + 1)
        self.d_loss_fn, self.g_loss_fn = losses_lib.get(config.loss)
        self.augment_policy = config.diffaugment_policies
        self._step_fn = None

    def _optimizer(self, learning_rate, name):
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=self.config.beta_1, beta_2=self.config.beta_2,
                                          name=name)
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
        return optimizer

    def checkpoint(self) -> tf.train.Checkpoint:
        parts = dict(step=self.step, generator=self.generator, discriminator=self.discriminator,
                     g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer, rng=self.rng)
        if self.ema_generator is not None:
            parts["ema_generator"] = self.ema_generator
        return tf.train.Checkpoint(**parts)

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
        return augment_lib.diff_augment(images, self.augment_policy, self.rng)

    def _scaled(self, optimizer, loss):
        """Mean-over-global-batch scaling for tf.distribute (gradients are summed over replicas),
        then loss scaling for float16."""
        loss = loss / self.num_replicas
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
        return loss

    def discriminator_loss(self, real, fake, labels):
        """D's loss (with the R1 / WGAN-GP penalty) and its logits on real and fake images.
        Runs inside the caller's GradientTape(s); real and fake go through D in separate calls
        (measured faster here than one call on the concatenated batch)."""
        cfg = self.config
        if cfg.r1_gamma > 0:  # R1: gradient of D at the real images
            with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
                r1_tape.watch(real)
                real_logits = self._discriminate(self._augment(real), labels)
                real_sum = tf.reduce_sum(real_logits)
        else:
            real_logits = self._discriminate(self._augment(real), labels)
        fake_logits = self._discriminate(self._augment(fake), labels)
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        if cfg.r1_gamma > 0:
            d_loss += 0.5 * cfg.r1_gamma * losses_lib.r1_penalty(r1_tape.gradient(real_sum, real))
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
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self._generate(latent, real_labels, training=True)
            d_loss, real_logits, fake_logits = self.discriminator_loss(real, fake, real_labels)
            g_loss = self.g_loss_fn(fake_logits)
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
        real_acc, fake_acc = losses_lib.accuracies(real_logits, fake_logits, cfg.loss)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc}

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
        model = self.export_generator if use_ema else self.generator
        inputs = [latent, labels] if self.num_classes else latent
        return tf.cast(model(inputs, training=False), tf.float32)


# ---------------------------------------------------------------------------- sample grids
def _fixed_latent(config: TrainConfig, num_classes: int | None):
    """The fixed latent batch (and labels) every sample grid is drawn from, and the grid's columns
    (one row per class for a conditional generator)."""
    rs = np.random.RandomState(config.seed + 12345)
    if num_classes:
        per_class = max(1, SAMPLE_GRID_SIZE // num_classes)
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
        return rs.normal(size=(len(labels), config.latent_dim)).astype(np.float32), labels, per_class
    return rs.normal(size=(SAMPLE_GRID_SIZE, config.latent_dim)).astype(np.float32), None, None


def _count_examples(files) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(list(files), compression_type="GZIP"))


# ---------------------------------------------------------------------------- warm start
def _warm_start(trainer: GanTraining, warm_start_dir: str, log) -> bool:
    pairs = [("generator", trainer.generator), ("discriminator", trainer.discriminator)]
    loaded = {}
    for name, model in pairs:
        path = layout.keras_model_path(warm_start_dir, name)
        if not tf.io.gfile.exists(path):
            log(f"WARNING: warm start skipped: {path} does not exist; training from scratch")
            return False
        source = load_keras_model(warm_start_dir, name)
        src, dst = source.get_weights(), model.get_weights()
        mismatch = len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst))
        if mismatch:
            log(f"WARNING: warm start skipped: the {name} in {warm_start_dir} has weight shapes "
                f"{[a.shape for a in src][:6]}... but this config builds {[b.shape for b in dst][:6]}... "
                "(different architecture, latent_dim, spectral_norm or image shape); training from scratch")
            return False
        loaded[name] = src
    trainer.generator.set_weights(loaded["generator"])
    trainer.discriminator.set_weights(loaded["discriminator"])
    if trainer.ema_generator is not None:
        trainer.ema_generator.set_weights(loaded["generator"])
    log(f"warm start: generator and discriminator weights loaded from {warm_start_dir}")
    return True


# ---------------------------------------------------------------------------- train_gan
def train_gan(config: TrainConfig, train_files: list[str], image_shape: tuple[int, int, int],
              num_classes: int | None, run_dir: str, checkpoint_dir: str, warm_start_dir: str | None = None,
              log: Callable[[str], None] = print, on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Trains (or resumes training of) a GAN on gzipped TFRecords of the project's Example format.

    run_dir: TensorBoard scalars/images, PNG sample grids (``samples/``) and ``loss_curve.png``.
    checkpoint_dir: a stable directory; a restarted run resumes from its latest checkpoint, and a
    finished run only rebuilds the models (nothing is trained again).
    warm_start_dir: a serving dir written by ``save_trained_models`` (or a pushed version of one); used
    only when there is no checkpoint; mismatching weight shapes give a warning and training from scratch.
    on_step: called with the step number after every step (tests use it to simulate a kill).
    """
    image_shape = tuple(int(d) for d in image_shape)
    started = time.perf_counter()
    precision = resolve_precision(config.mixed_precision)
    strategy = resolve_strategy(config.distribution)
    chief = _is_chief(strategy)
    if not chief:  # non-chief workers write to private scratch dirs, as tf.distribute requires
        checkpoint_dir = os.path.join(checkpoint_dir, f"worker-tmp-{strategy.cluster_resolver.task_id}")
        run_dir = os.path.join(run_dir, f"worker-tmp-{strategy.cluster_resolver.task_id}")
    strategy_name = {"_DefaultDistributionStrategy": "none", "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"
                     }.get(type(strategy).__name__, type(strategy).__name__)

    with strategy.scope():
        trainer = GanTraining(config, image_shape, num_classes, precision, strategy.num_replicas_in_sync)
    checkpoint = trainer.checkpoint()
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
    history = {k: [] for k in HISTORY_KEYS}
    history_path = os.path.join(checkpoint_dir, HISTORY_FILENAME)
    warm_started_from = None
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if tf.io.gfile.exists(history_path):
            with tf.io.gfile.GFile(history_path) as f:
                saved = json.load(f)
            keep = [i for i, s in enumerate(saved.get("step", [])) if s <= int(trainer.step.numpy())]
            history = {k: [saved[k][i] for i in keep] for k in HISTORY_KEYS}
        log(f"resuming from checkpoint {manager.latest_checkpoint} at step {int(trainer.step.numpy())}")
    elif warm_start_dir and _warm_start(trainer, warm_start_dir, log):
        warm_started_from = warm_start_dir
    resumed_from = int(trainer.step.numpy())

    log(f"training {config.architecture}/{config.loss} on {image_shape} images, {num_classes or 'no'} classes: "
        f"{config.train_steps} steps of batch {config.batch_size}, precision {precision}, "
        f"strategy {strategy_name} ({strategy.num_replicas_in_sync} replica(s)), "
        f"diffaugment '{config.diffaugment}', ema {config.ema_decay}, "
        f"G {trainer.generator.count_params():,} / D {trainer.discriminator.count_params():,} parameters")

    writer = tf.summary.create_file_writer(run_dir) if chief else tf.summary.create_noop_writer()
    fixed_latent, fixed_labels, grid_columns = _fixed_latent(config, trainer.num_classes)
    sample_paths = []

    def write_samples(step, name=None):
        images = trainer.generate(tf.constant(fixed_latent),
                                  None if fixed_labels is None else tf.constant(fixed_labels))
        path = os.path.join(run_dir, "samples", name or f"step_{step:06d}.png")
        if chief:
            save_png(image_grid(images.numpy(), grid_columns), path)
            with writer.as_default(step=step):
                tf.summary.image("samples", (images[:16] + 1.0) / 2.0, max_outputs=16)
        sample_paths.append(path)

    def save_checkpoint(step):
        # TF writes a checkpoint's files first and its index ("checkpoint") last, so a failed
        # save leaves the previous checkpoint as the latest: a rerun resumes from it.
        try:
            manager.save(checkpoint_number=step)
            if chief:
                with tf.io.gfile.GFile(history_path, "w") as f:
                    json.dump(history, f)
        except (tf.errors.OpError, OSError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise CheckpointWriteError(f"cannot write the checkpoint of step {step} to {checkpoint_dir}: "
                                       f"{message.splitlines()[0] if message else type(exc).__name__}") from None

    step = resumed_from
    if step < config.train_steps:
        sample_every = config.sample_every_steps
        if sample_every == 0:  # once per epoch
            sample_every = max(1, math.ceil(_count_examples(train_files) /
                                            (config.batch_size * config.d_steps_per_g_step)))
        global_batch = config.batch_size * config.d_steps_per_g_step
        dataset = training_dataset(train_files, image_shape, global_batch, seed=config.seed)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        step_fn = trainer.make_step_fn(strategy)

        pending = []  # (step, metrics tensors) not yet checked for divergence
        window = {k: [] for k in ("d_loss", "g_loss", "d_real_acc", "d_fake_acc")}
        window_start, window_steps, excluded = time.perf_counter(), 0, 0.0

        def drain():
            """Fetches pending metrics; raises on the first NaN/inf loss."""
            for s, metrics in pending:
                values = {k: float(v.numpy()) for k, v in metrics.items()}
                for name in ("d_loss", "g_loss"):
                    if not math.isfinite(values[name]):
                        raise TrainingDivergedError(s, name, values[name])
                for k in window:
                    window[k].append(values[k])
            pending.clear()

        while step < config.train_steps:
            metrics = step_fn(next(iterator))
            step += 1
            window_steps += 1
            pending.append((step, metrics))
            if on_step is not None:
                on_step(step)
            if step == resumed_from + 1:  # leave tracing/compilation out of images/s
                drain()
                window_start, window_steps = time.perf_counter(), 0
            last = step == config.train_steps
            if step % config.log_every_steps == 0 or last:
                drain()
                seconds = time.perf_counter() - window_start - excluded
                means = {k: float(np.mean(v)) for k, v in window.items()}
                images_per_sec = window_steps * global_batch / max(seconds, 1e-9) if window_steps else float("nan")
                history["step"].append(step)
                for k, v in means.items():
                    history[k].append(v)
                history["images_per_sec"].append(images_per_sec)
                log(f"step {step}/{config.train_steps}  d_loss {means['d_loss']:.4f}  g_loss {means['g_loss']:.4f}  "
                    f"D acc real {means['d_real_acc']:.2f} fake {means['d_fake_acc']:.2f}  "
                    f"{images_per_sec:.0f} images/s")
                with writer.as_default(step=step):
                    for k, v in means.items():
                        tf.summary.scalar(k, v)
                    tf.summary.scalar("images_per_sec", images_per_sec)
                writer.flush()
                window = {k: [] for k in window}
                window_start, window_steps, excluded = time.perf_counter(), 0, 0.0
            t0 = time.perf_counter()
            if step % sample_every == 0 and not last:
                write_samples(step)
            if step % config.checkpoint_every_steps == 0 or last:
                drain()
                save_checkpoint(step)
            excluded += time.perf_counter() - t0
        log(f"trained {step - resumed_from} steps in {time.perf_counter() - started:.1f} s")
    else:
        log(f"checkpoint is already at step {step} >= train_steps {config.train_steps}: nothing to train")

    write_samples(step, "final.png")
    if chief:
        save_loss_curve(history, os.path.join(run_dir, "loss_curve.png"))
    writer.close()
    return TrainResult(generator=trainer.export_generator, discriminator=trainer.discriminator,
                       history=history, steps=step, seconds=time.perf_counter() - started,
                       resumed_from_step=resumed_from, precision=precision, strategy=strategy_name,
                       sample_paths=sample_paths, live_generator=trainer.generator,
                       warm_started_from=warm_started_from)


# ---------------------------------------------------------------------------- saving
def save_trained_models(result: TrainResult, config: TrainConfig, serving_dir: str, config_path: str, image_shape,
                        num_classes: int | None) -> str:
    """Writes the generator's serving SavedModel to ``serving_dir`` (carrying float32 Keras copies
    of the generator and discriminator, whatever precision trained them: see
    ``components.gan.export.save_keras_models``) and the training options, image shape and class
    count to ``config_path``. Returns ``serving_dir``."""
    classes = num_classes if config.conditional else None
    g32, d32 = build_models(config, image_shape, classes, dtype="float32")
    g32.set_weights(result.generator.get_weights())
    d32.set_weights(result.discriminator.get_weights())
    export_generator(g32, serving_dir, config.latent_dim, classes,
                     extra_metadata={"architecture": config.architecture, "loss": config.loss,
                                     "steps": int(result.steps), "ema": config.ema_decay > 0,
                                     "trained_precision": result.precision})
    save_keras_models(g32, d32, serving_dir)
    with tf.io.gfile.GFile(config_path, "w") as f:
        json.dump({"config": config.to_dict(), "image_shape": [int(d) for d in image_shape],
                   "num_classes": classes, "steps": int(result.steps)}, f, indent=2)
    return serving_dir

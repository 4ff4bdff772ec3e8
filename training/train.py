"""GAN training: ``train_gan`` (resumable, distributable) and ``save_trained_models``.

The library behind the GanTrainer component; plain TensorFlow/Keras 3, no TFX imports. Each job
has its module: ``step.py`` (models, optimizers, EMA and the compiled train step), ``devices.py``
(precision and tf.distribute strategy), ``warm_start.py``, and ``hooks.py`` (what the loop does
around the steps: log lines, sample grids, checkpoints, the divergence guard).

The TrainConfig is trusted: its values were checked when it was parsed, and its architecture
against the data (``TrainConfig.resolve_for_data``) by the caller, where the data's shape is known;
``train_gan`` given ``architecture: auto`` resolves the recipe for its data itself.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import keras
import tensorflow as tf

from tfx_gan.training.config import TrainConfig
from tfx_gan.training.devices import (cpu_supports_bf16, is_chief, resolve_precision, resolve_strategy,
                                            strategy_name, worker_dirs)
from tfx_gan.data.example_format import count_examples, load_arrays, training_dataset
from tfx_gan.training.export import export_generator, save_keras_models
from tfx_gan.training.hooks import (GRIDS_PER_RUN, HISTORY_FILENAME, HISTORY_KEYS, BestGenerator,
                                          CheckpointWriteError, Checkpoints, DivergenceGuard, ProgressLog, SampleGrids,
                                          TrainingDivergedError, TrainingFid, empty_history)
from tfx_gan.training.models import build_models
from tfx_gan.training.samples import save_loss_curve
from tfx_gan.training.self_conditioning import CLUSTERS_FILENAME, Clusters, fit_clusters
from tfx_gan.training.step import GanTraining
from tfx_gan.training.warm_start import warm_start

# pipeline/cli.py imports the two errors train_gan raises from here.
__all__ = ["CheckpointWriteError", "HISTORY_KEYS", "TrainResult", "TrainingDivergedError", "save_trained_models",
           "train_gan"]

logger = logging.getLogger(__name__)

HORIZON_STEPS = 50  # steps timed before a time budget's step count is estimated


@dataclass
class TrainResult:
    generator: keras.Model  # the EMA generator when ema_decay > 0: the one to export
    discriminator: keras.Model
    history: dict = field(default_factory=empty_history)
    steps: int = 0
    seconds: float = 0.0
    resumed_from_step: int = 0
    precision: str = "float32"
    strategy: str = "none"
    sample_paths: list = field(default_factory=list)
    warm_started_from: str | None = None  # the serving dir whose weights training started from
    live_generator: keras.Model | None = None  # the trained (non-EMA) generator
    clusters: Clusters | None = None  # what a self-conditioned generator's labels mean


def _batches(train_files: list[str], image_shape, global_batch: int, seed: int, strategy,
             clusters: Clusters | None = None):
    """An endless iterator of (images, labels) batches, split over the strategy's replicas; with
    ``clusters``, the labels are the images' clusters."""
    dataset = training_dataset(train_files, image_shape, global_batch, seed=seed)
    if clusters is not None:
        dataset = dataset.map(lambda images, _: (images, clusters.assign(images)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))


def train_gan(config: TrainConfig, train_files: list[str], image_shape: tuple[int, int, int],
              num_classes: int | None, run_dir: str, checkpoint_dir: str, warm_start_dir: str | None = None,
              log: Callable[[str], None] = logger.info, on_step: Callable[[int], None] | None = None,
              class_names: list[str] | None = None) -> TrainResult:
    """Trains (or resumes training of) a GAN on gzipped TFRecords of the project's Example format.

    run_dir: TensorBoard scalars/images, titled PNG sample grids (``samples/step_XXXXXX.png``,
    ``samples/final.png``) and their strip (``samples/strip.png``), the training FID
    (``metrics.jsonl``), the history (``history.json``) and ``loss_curve.png``.
    checkpoint_dir: a stable directory; a restarted run resumes from its latest checkpoint, and a
    finished run only rebuilds the models (nothing is trained again).
    warm_start_dir: a serving dir written by ``save_trained_models`` (or a pushed version of one); used
    only when there is no checkpoint; mismatching weight shapes give a warning and training from scratch.
    on_step: called with the step number after every step (tests use it to simulate a kill).
    """
    image_shape = tuple(int(d) for d in image_shape)
    if config.architecture == "auto":  # the recipe for this data (training/recipe.py), logged
        config = config.resolve_for_data(image_shape, num_classes, count_examples(train_files), cpu_supports_bf16(),
                                         log=log)[0]
    started = time.perf_counter()
    precision = resolve_precision(config.mixed_precision)
    strategy = resolve_strategy(config.distribution)
    chief = is_chief(strategy)
    chief_checkpoint_dir = checkpoint_dir
    run_dir, checkpoint_dir = worker_dirs(strategy, run_dir, checkpoint_dir)
    with strategy.scope():
        trainer = GanTraining(config, image_shape, num_classes, precision, strategy.num_replicas_in_sync)

    checkpoints = Checkpoints(trainer, checkpoint_dir, chief, restore_from=chief_checkpoint_dir)
    history, warm_started_from = _resume_or_warm_start(trainer, checkpoints, warm_start_dir, log, class_names)
    if config.self_conditioning:
        _set_clusters(trainer, train_files, image_shape, checkpoint_dir, resumed=bool(checkpoints.latest),
                      warm_started_from=warm_started_from, log=log)
    resumed_from = int(trainer.step.numpy())
    log(_describe_run(config, trainer, image_shape, num_classes, precision, strategy))

    writer = tf.summary.create_file_writer(run_dir) if chief else tf.summary.create_noop_writer()
    samples = SampleGrids(trainer, config, run_dir, writer, chief)
    fid = TrainingFid(trainer, config, train_files, image_shape, run_dir, writer, chief, history, log)
    best = BestGenerator(trainer, config, checkpoint_dir, chief, history)
    if config.stop_patience is not None and strategy_name(strategy) == "MultiWorkerMirroredStrategy":
        # only the chief computes the training FID; a stop the other workers did not take would hang them
        log("training.stop_patience is not applied with several workers (only the chief sees the training FID)")
        best.config = config.replace(stop_patience=None)
    if resumed_from < config.train_steps and not best.stopped:
        batches = _batches(train_files, image_shape, config.batch_size * config.d_steps_per_g_step, config.seed,
                           strategy, trainer.clusters)
        step = _train_steps(trainer, config, strategy, batches, resumed_from, history, writer, samples, fid, best,
                            checkpoints, log, on_step)
        seconds = time.perf_counter() - started
        fid_cost = f" (training FID {fid.total_seconds:.1f} s of it, {100 * fid.total_seconds / seconds:.1f}%)" \
            if fid.total_seconds else ""
        log(f"trained {step - resumed_from} steps in {seconds:.1f} s{fid_cost}")
    else:
        step = resumed_from
        log(f"checkpoint of step {step}: training had stopped there (training.stop_patience): nothing to train"
            if best.stopped else f"checkpoint is already at step {step} >= train_steps {config.train_steps}: "
            "nothing to train")

    best.restore(step, log)
    samples.write(step, "final.png")
    if chief:
        _write_run_views(samples, history, run_dir)
    writer.close()
    return TrainResult(generator=trainer.export_generator, discriminator=trainer.discriminator,
                       history=history, steps=step, seconds=time.perf_counter() - started,
                       resumed_from_step=resumed_from, precision=precision, strategy=strategy_name(strategy),
                       sample_paths=samples.paths, live_generator=trainer.generator,
                       warm_started_from=warm_started_from, clusters=trainer.clusters)


def _resume_or_warm_start(trainer, checkpoints, warm_start_dir, log, class_names):
    """(history, warm_started_from): the latest checkpoint's state, else the serving generator's weights
    when they fit, else nothing (training from scratch)."""
    if checkpoints.latest:
        history = checkpoints.restore_latest()
        log(f"resuming from checkpoint {checkpoints.latest} at step {int(trainer.step.numpy())}")
        return history, None
    if warm_start_dir and warm_start(trainer, warm_start_dir, log, class_names):
        return empty_history(), warm_start_dir
    return empty_history(), None


def _describe_run(config, trainer, image_shape, num_classes, precision, strategy) -> str:
    classes = (f"{trainer.clusters.k} clusters (self-conditioning)" if trainer.clusters is not None
               else f"{num_classes or 'no'} classes")
    return (f"training {config.architecture}/{config.loss} on {image_shape} images, {classes}: "
            f"{config.train_steps} steps of batch {config.batch_size}, precision {precision}, "
            f"strategy {strategy_name(strategy)} ({strategy.num_replicas_in_sync} replica(s)), "
            f"diffaugment '{config.diffaugment}', ema {config.ema_decay}, "
            f"G {trainer.generator.count_params():,} / D {trainer.discriminator.count_params():,} parameters")


def _train_steps(trainer, config, strategy, batches, step, history, writer, samples, fid, best, checkpoints, log,
                 on_step) -> int:
    """The loop: one train step per batch from ``step`` to train_steps (or training.max_minutes, or
    training.stop_patience), with progress lines, sample grids, training FID and checkpoints on their
    schedules. Returns the last step."""
    resumed_from = step
    sample_every = config.sample_every_steps or max(1, math.ceil(config.train_steps / GRIDS_PER_RUN))
    fid_every = config.fid_every_steps
    step_fn = trainer.make_step_fn(strategy)
    guard = DivergenceGuard()
    deadline = None if config.max_minutes is None else time.perf_counter() + 60 * config.max_minutes
    progress = ProgressLog(history, writer, config.batch_size * config.d_steps_per_g_step, config.train_steps, step,
                           log, deadline)
    last = stop = False
    while not last:
        metrics = step_fn(next(batches))
        step += 1
        guard.watch(step, metrics)
        if on_step is not None:
            on_step(step)
        if step == resumed_from + 1:  # leave tracing/compilation out of images/s
            progress.add(guard.check())
            progress.restart_clock(step)
            horizon_from = (step, time.perf_counter())
        if step == resumed_from + HORIZON_STEPS and deadline is not None and config.lr_decay_from < 1:
            # the measured speed says how many steps the time budget holds: the decay ends there
            per_step = (time.perf_counter() - horizon_from[1]) / (step - horizon_from[0])
            horizon = min(config.train_steps, step + int((deadline - time.perf_counter()) / per_step))
            trainer.set_horizon(horizon)
            log(f"at {per_step * 1000:.0f} ms per step the {config.max_minutes:g}-minute budget holds about "
                f"{horizon} steps: the learning rates decay from step {int(config.lr_decay_from * horizon)} to it")
        out_of_time = deadline is not None and time.perf_counter() >= deadline and step < config.train_steps
        fid_due = fid_every and step % fid_every == 0
        last = step == config.train_steps or out_of_time
        if out_of_time:
            log(f"training.max_minutes ({config.max_minutes:g}) reached: stopping at step {step} of "
                f"{config.train_steps}")
        if step % config.log_every_steps == 0 or last:
            progress.add(guard.check())
            progress.write(step)
        with progress.paused():
            if step % sample_every == 0 and not last:
                samples.write(step)
            # The last step too, when the run is long enough to have FID rows at all.
            if fid_due or fid_every and last and config.train_steps >= fid_every:
                value = fid.write(step)
                stop = value is not None and best.update(step, value)
                if stop and not last:
                    last = True
                    log(f"training.stop_patience ({config.stop_patience}): no new best training FID since step "
                        f"{best.best_step}; stopping at step {step}")
            if step % config.checkpoint_every_steps == 0 or last:
                progress.add(guard.check())
                checkpoints.save(step, history)
    return step


def _write_run_views(samples, history, run_dir) -> None:
    """The chief's pictures and history of the run: the grid strip, the loss curve, history.json."""
    samples.write_strip()
    save_loss_curve(history, os.path.join(run_dir, "loss_curve.png"))
    with tf.io.gfile.GFile(os.path.join(run_dir, HISTORY_FILENAME), "w") as f:  # the report plots it
        json.dump(history, f)


def _set_clusters(trainer: GanTraining, train_files, image_shape, checkpoint_dir: str, resumed: bool,
                  warm_started_from: str | None, log) -> None:
    """The clusters a self-conditioned run trains on: a resumed run's own, a warm start's (set by
    warm_start(): its generator learnt those), else k-means on the training images. Kept in
    ``checkpoint_dir``."""
    if resumed:
        trainer.clusters = Clusters.load(checkpoint_dir)
        if trainer.clusters is None:
            raise FileNotFoundError(f"{checkpoint_dir} has a checkpoint of a self-conditioned run but no "
                                    f"{CLUSTERS_FILENAME}; delete the checkpoint directory to train from scratch")
        return
    if warm_started_from:
        log(f"self-conditioning: the {trainer.clusters.k} clusters of {warm_started_from}")
    else:
        started = time.perf_counter()
        trainer.clusters = fit_clusters(load_arrays(train_files, image_shape)[0], trainer.config.self_conditioning,
                                        trainer.config.seed)
        log(f"self-conditioning: {trainer.clusters.k} k-means clusters of the training images in "
            f"{time.perf_counter() - started:.1f} s; "
            f"shares {trainer.clusters.prior.min():.1%}-{trainer.clusters.prior.max():.1%}")
    trainer.clusters.save(checkpoint_dir)  # every worker: each resumes from its own checkpoint_dir


# ---------------------------------------------------------------------------- saving
def save_trained_models(result: TrainResult, config: TrainConfig, serving_dir: str, config_path: str, image_shape,
                        num_classes: int | None) -> str:
    """Writes the generator's serving SavedModel to ``serving_dir`` (carrying float32 Keras copies
    of the generator and discriminator, whatever precision trained them: see
    ``tfx_gan.training.export.save_keras_models``) and the training options, image shape and class
    count to ``config_path``. Returns ``serving_dir``."""
    classes = config.served_classes(num_classes)
    g32, d32 = build_models(config, image_shape, config.net_classes(num_classes), dtype="float32")
    g32.set_weights(result.generator.get_weights())
    d32.set_weights(result.discriminator.get_weights())
    export_generator(g32, serving_dir, config.latent_dim, classes,
                     extra_metadata={"architecture": config.architecture, "loss": config.loss,
                                     "steps": int(result.steps), "ema": config.ema_decay > 0,
                                     "trained_precision": result.precision},
                     truncation_psi=config.truncation_psi, clusters=result.clusters)
    save_keras_models(g32, d32, serving_dir)
    with tf.io.gfile.GFile(config_path, "w") as f:
        json.dump({"config": config.to_dict(), "image_shape": [int(d) for d in image_shape],
                   "num_classes": classes, "steps": int(result.steps)}, f, indent=2)
    return serving_dir

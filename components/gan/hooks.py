"""What ``train_gan``'s loop does around the train steps, one small class per job:

- ``DivergenceGuard``: holds each step's metrics and raises ``TrainingDivergedError`` at the first
  NaN/inf loss when they are fetched (at log lines and before checkpoints, so a diverged run never
  saves anything);
- ``ProgressLog``: a log line, TensorBoard scalars and a history row every ``log_every_steps``;
- ``SampleGrids``: PNG grids and TensorBoard images from one fixed latent batch;
- ``Checkpoints``: checkpoints with the history beside them, restored when a run restarts.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from components.gan.config import TrainConfig
from components.gan.samples import image_grid, save_png
from components.gan.step import GanTraining

HISTORY_KEYS = ("step", "d_loss", "g_loss", "d_real_acc", "d_fake_acc", "images_per_sec")
HISTORY_FILENAME = "history.json"
LOGGED_METRICS = ("d_loss", "g_loss", "d_real_acc", "d_fake_acc")  # the step's metrics, averaged per log line
SAMPLE_GRID_SIZE = 64


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; nothing was saved."""

    def __init__(self, step: int, loss_name: str, value: float):
        super().__init__(f"training diverged at step {step}: {loss_name} is {value} "
                         "(nothing was saved; try lower learning rates, spectral_norm or r1_gamma)")
        self.step, self.loss_name, self.value = step, loss_name, value


def empty_history() -> dict[str, list]:
    return {k: [] for k in HISTORY_KEYS}


class DivergenceGuard:
    """Keeps each step's metric tensors until they are needed: reading them after every step would
    make the host wait for the device at every step."""

    def __init__(self):
        self.pending: list[tuple[int, dict]] = []

    def watch(self, step: int, metrics: dict) -> None:
        self.pending.append((step, metrics))

    def check(self) -> list[dict[str, float]]:
        """The held metrics as floats, in step order; raises at the first NaN/inf loss."""
        checked = []
        for step, metrics in self.pending:
            values = {k: float(v.numpy()) for k, v in metrics.items()}
            for name in ("d_loss", "g_loss"):
                if not math.isfinite(values[name]):
                    raise TrainingDivergedError(step, name, values[name])
            checked.append(values)
        self.pending.clear()
        return checked


class ProgressLog:
    """Per log line: the means of the step's metrics since the previous line and images/s, written as
    a log line, TensorBoard scalars and a row of ``history``. Time spent in ``paused()`` (sample
    grids, checkpoints) is not counted as training time."""

    def __init__(self, history: dict, writer, global_batch: int, train_steps: int, step: int,
                 log: Callable[[str], None]):
        self.history, self.writer, self.log = history, writer, log
        self.global_batch, self.train_steps = global_batch, train_steps
        self.window = {k: [] for k in LOGGED_METRICS}
        self.restart_clock(step)

    def restart_clock(self, step: int) -> None:
        """images/s counts the steps after ``step`` from now on."""
        self.clock_start, self.clock_step, self.paused_seconds = time.perf_counter(), step, 0.0

    def add(self, values: list[dict[str, float]]) -> None:
        for step_values in values:
            for k in self.window:
                self.window[k].append(step_values[k])

    @contextlib.contextmanager
    def paused(self):
        start = time.perf_counter()
        yield
        self.paused_seconds += time.perf_counter() - start

    def write(self, step: int) -> None:
        seconds = time.perf_counter() - self.clock_start - self.paused_seconds
        steps = step - self.clock_step
        images_per_sec = steps * self.global_batch / max(seconds, 1e-9) if steps else float("nan")
        means = {k: float(np.mean(v)) for k, v in self.window.items()}
        self.history["step"].append(step)
        for k, v in means.items():
            self.history[k].append(v)
        self.history["images_per_sec"].append(images_per_sec)
        self.log(f"step {step}/{self.train_steps}  d_loss {means['d_loss']:.4f}  g_loss {means['g_loss']:.4f}  "
                 f"D acc real {means['d_real_acc']:.2f} fake {means['d_fake_acc']:.2f}  "
                 f"{images_per_sec:.0f} images/s")
        with self.writer.as_default(step=step):
            for k, v in means.items():
                tf.summary.scalar(k, v)
            tf.summary.scalar("images_per_sec", images_per_sec)
        self.writer.flush()
        self.window = {k: [] for k in LOGGED_METRICS}
        self.restart_clock(step)


def fixed_latent(config: TrainConfig, num_classes: int | None):
    """The fixed latent batch (and labels) every sample grid is drawn from, and the grid's columns
    (one row per class for a conditional generator)."""
    rs = np.random.RandomState(config.seed + 12345)
    if num_classes:
        per_class = max(1, SAMPLE_GRID_SIZE // num_classes)
        labels = np.repeat(np.arange(num_classes, dtype=np.int32), per_class)
        return rs.normal(size=(len(labels), config.latent_dim)).astype(np.float32), labels, per_class
    return rs.normal(size=(SAMPLE_GRID_SIZE, config.latent_dim)).astype(np.float32), None, None


class SampleGrids:
    """``<run_dir>/samples/step_XXXXXX.png`` (or another name) and TensorBoard images of the
    exported (EMA) generator, always from the same latent points so grids compare across steps."""

    def __init__(self, trainer: GanTraining, config: TrainConfig, run_dir: str, writer, chief: bool):
        self.trainer, self.run_dir, self.writer, self.chief = trainer, run_dir, writer, chief
        self.latent, self.labels, self.columns = fixed_latent(config, trainer.num_classes)
        self.paths: list[str] = []

    def write(self, step: int, name: str | None = None) -> None:
        images = self.trainer.generate(tf.constant(self.latent),
                                       None if self.labels is None else tf.constant(self.labels))
        path = os.path.join(self.run_dir, "samples", name or f"step_{step:06d}.png")
        if self.chief:
            save_png(image_grid(images.numpy(), self.columns), path)
            with self.writer.as_default(step=step):
                tf.summary.image("samples", (images[:16] + 1.0) / 2.0, max_outputs=16)
        self.paths.append(path)


class Checkpoints:
    """Checkpoints of everything the step updates (the last two kept) and, beside them, the
    history of log lines (``history.json``), so that a restarted run resumes both."""

    def __init__(self, trainer: GanTraining, checkpoint_dir: str, chief: bool):
        self.trainer, self.directory, self.chief = trainer, checkpoint_dir, chief
        self.checkpoint = trainer.checkpoint()
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir, max_to_keep=2)
        self.history_path = os.path.join(checkpoint_dir, HISTORY_FILENAME)

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore_latest(self) -> dict[str, list]:
        """Restores the latest checkpoint; returns the history up to its step."""
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        if not tf.io.gfile.exists(self.history_path):
            return empty_history()
        with tf.io.gfile.GFile(self.history_path) as f:
            saved = json.load(f)
        keep = [i for i, s in enumerate(saved.get("step", [])) if s <= int(self.trainer.step.numpy())]
        return {k: [saved[k][i] for i in keep] for k in HISTORY_KEYS}

    def save(self, step: int, history: dict) -> None:
        # TF writes a checkpoint's files first and its index ("checkpoint") last, so a failed
        # save leaves the previous checkpoint as the latest: a rerun resumes from it.
        try:
            self.manager.save(checkpoint_number=step)
            if self.chief:
                with tf.io.gfile.GFile(self.history_path, "w") as f:
                    json.dump(history, f)
        except (tf.errors.OpError, OSError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise CheckpointWriteError(f"cannot write the checkpoint of step {step} to {self.directory}: "
                                       f"{message.splitlines()[0] if message else type(exc).__name__}") from None

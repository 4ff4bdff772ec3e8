"""What ``train_gan``'s loop does around the train steps, one small class per job:

- ``DivergenceGuard``: holds each step's metrics and raises ``TrainingDivergedError`` at the first
  NaN/inf loss when they are fetched (at log lines and before checkpoints, so a diverged run never
  saves anything);
- ``ProgressLog``: a log line (with elapsed time and ETA), TensorBoard scalars and a history row
  every ``log_every_steps``;
- ``TrainingFid``: every ``fid_every_steps``, the FID of the EMA generator against the training
  images in the untrained random CNN's feature space, as TensorBoard scalars, ``metrics.jsonl``
  rows (StyleGAN's metric jsonl) and rows of the history's ``metrics``;
- ``SampleGrids``: titled PNG grids, a strip of them across training and TensorBoard images, all
  from one fixed latent batch;
- ``Checkpoints``: checkpoints with the history beside them, restored when a run restarts.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import time
import warnings
from typing import Callable

import numpy as np
import tensorflow as tf

from tfx_gan.training.config import TrainConfig
from tfx_gan.data.example_format import load_arrays
from tfx_gan.training.samples import image_grid, save_grid_strip, save_image_grid
from tfx_gan.training.step import GanTraining
from tfx_gan.metrics.fid import FeatureStats, frechet_distance_from_stats
from tfx_gan.metrics.random_cnn import RandomCNN
from tfx_gan.common.errors import UserError

HISTORY_KEYS = ("step", "d_loss", "g_loss", "d_real_acc", "d_fake_acc", "images_per_sec", "augment_p")
METRICS_KEY = "metrics"  # the history's list of TrainingFid rows, the same objects as metrics.jsonl's lines
HISTORY_FILENAME = "history.json"
METRICS_FILENAME = "metrics.jsonl"
STRIP_FILENAME = "strip.png"
# The step's metrics, averaged per log line (augment_p: ADA runs only).
LOGGED_METRICS = ("d_loss", "g_loss", "d_real_acc", "d_fake_acc", "augment_p")
SAMPLE_GRID_SIZE = 64
GRIDS_PER_RUN = 10  # sample_every_steps 0: this many grids spaced across training, plus the final one
STRIP_MAX_GRIDS = 12
# Training FID: N generated images against up to FID_MAX_REAL training images. N above the random
# CNN's 704 dimensions keeps the covariance non-singular (FID is biased in N, so values compare
# only within the same N: this is a progress signal, not the evaluation's FID).
FID_SAMPLES = 1024
FID_MAX_REAL = 5000
FID_BATCH = 256

logger = logging.getLogger(__name__)


class CheckpointWriteError(UserError, RuntimeError):
    """A checkpoint could not be written (disk full, permissions); the previous one is intact."""


class TrainingDivergedError(UserError, RuntimeError):
    """A loss became NaN or infinite; nothing was saved."""

    def __init__(self, step: int, loss_name: str, value: float):
        super().__init__(f"training diverged at step {step}: {loss_name} is {value} "
                         "(nothing was saved; try lower learning rates, spectral_norm or r1_gamma)")
        self.step, self.loss_name, self.value = step, loss_name, value


def empty_history() -> dict[str, list]:
    return {**{k: [] for k in HISTORY_KEYS}, METRICS_KEY: []}


def format_duration(seconds: float) -> str:
    """1h02m, 2m10s or 42s."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


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
    grids, FID, checkpoints) is not counted in images/s; the ETA counts it, since it recurs."""

    def __init__(self, history: dict, writer, global_batch: int, train_steps: int, step: int,
                 log: Callable[[str], None], deadline: float | None = None):
        self.history, self.writer, self.log = history, writer, log
        self.global_batch, self.train_steps = global_batch, train_steps
        self.deadline = deadline  # time.perf_counter() at which training.max_minutes runs out
        self.window = {k: [] for k in LOGGED_METRICS}
        self.started, self.start_step = time.perf_counter(), step
        self.restart_clock(step)

    def eta(self, step: int) -> str:
        """'2m10s elapsed, ~5m03s left': this run's wall time per step so far, times the steps left."""
        elapsed = time.perf_counter() - self.started
        done = step - self.start_step
        left = elapsed / done * (self.train_steps - step) if done else float("nan")
        if done and self.deadline is not None and time.perf_counter() + left > self.deadline:
            left = max(0.0, self.deadline - time.perf_counter())
            return f"{format_duration(elapsed)} elapsed, ~{format_duration(left)} left (training.max_minutes)"
        return f"{format_duration(elapsed)} elapsed, " + (f"~{format_duration(left)} left" if done else "")

    def restart_clock(self, step: int) -> None:
        """images/s counts the steps after ``step`` from now on."""
        self.clock_start, self.clock_step, self.paused_seconds = time.perf_counter(), step, 0.0

    def add(self, values: list[dict[str, float]]) -> None:
        for step_values in values:
            for k in self.window:
                if k in step_values:
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
        means = {k: float(np.mean(v)) for k, v in self.window.items() if v}
        self.history["step"].append(step)
        for k, v in means.items():
            self.history[k].append(v)
        self.history["images_per_sec"].append(images_per_sec)
        self.log(f"step {step}/{self.train_steps} ({100 * step // self.train_steps}%) {self.eta(step)}  d_loss {means['d_loss']:.4f}  g_loss {means['g_loss']:.4f}  "
                 f"D acc real {means['d_real_acc']:.2f} fake {means['d_fake_acc']:.2f}  "
                 + (f"augment p {means['augment_p']:.2f}  " if "augment_p" in means else "")
                 + f"{images_per_sec:.0f} images/s")
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


class TrainingFid:
    """The FID of the exported (EMA) generator's images from a fixed latent batch against the
    training images, in the space of the project's untrained random CNN (``random_cnn``: nothing
    to train, so it is available inside the trainer, unlike the domain classifier that
    ReferenceStatsGen trains later). Each value goes to TensorBoard (``fid_random_cnn``), to
    ``history[METRICS_KEY]`` and to ``<run_dir>/metrics.jsonl``, one JSON object per line:
    ``{"step", "seconds" (training wall time), "timestamp", "fid_random_cnn", "fid_seconds"}``.
    The real images' features are computed at the first call, so runs that never reach
    ``fid_every_steps`` pay nothing."""

    def __init__(self, trainer: GanTraining, config: TrainConfig, train_files: list[str], image_shape,
                 run_dir: str, writer, chief: bool, history: dict, log: Callable[[str], None]):
        self.trainer, self.config, self.train_files = trainer, config, list(train_files)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.path = os.path.join(run_dir, METRICS_FILENAME)
        self.writer, self.chief, self.history, self.log = writer, chief, history, log
        self.extractor = self.real_stats = self.latent = self.labels = None
        self.seconds_before = history[METRICS_KEY][-1]["seconds"] if history[METRICS_KEY] else 0.0
        self.started, self.total_seconds = time.perf_counter(), 0.0
        if self.chief and history[METRICS_KEY]:  # a resumed run's file starts with the rows restored
            self._write_file()

    KEY = f"fid_{RandomCNN.name}"

    @property
    def key(self) -> str:
        return self.KEY

    def _prepare(self) -> None:
        images, labels = load_arrays(self.train_files, self.image_shape)
        rng = np.random.default_rng(self.config.seed + 54321)
        keep = rng.permutation(len(images))[:FID_MAX_REAL]
        images, labels = images[keep], labels[keep]
        self.extractor = RandomCNN(self.image_shape, seed=0)
        self.real_stats = FeatureStats.from_features(self.extractor.features(images, FID_BATCH))
        self.latent = rng.normal(size=(FID_SAMPLES, self.config.latent_dim)).astype(np.float32)
        # A conditional generator draws the training images' class mix; a self-conditioned one its
        # clusters, from the latent (trainer.generate), as the exported model does.
        self.labels = rng.choice(labels, FID_SAMPLES).astype(np.int32) if self.trainer.served_classes else None
        self.num_real = len(images)

    def _generated_features(self) -> np.ndarray:
        features = []
        for start in range(0, FID_SAMPLES, FID_BATCH):
            labels = None if self.labels is None else tf.constant(self.labels[start:start + FID_BATCH])
            images = self.trainer.generate(tf.constant(self.latent[start:start + FID_BATCH]), labels)
            features.append(self.extractor.features(images.numpy(), FID_BATCH))
        return np.concatenate(features)

    def write(self, step: int) -> float | None:
        """Computes, records and returns the training FID at ``step`` (None on a non-chief worker)."""
        if not self.chief:
            return None
        started = time.perf_counter()
        if self.extractor is None:
            self._prepare()
        with warnings.catch_warnings():
            # Fewer training images than 704 features: the caveat is in the log line instead.
            warnings.simplefilter("ignore")
            value = frechet_distance_from_stats(FeatureStats.from_features(self._generated_features()),
                                                self.real_stats)
        cost = time.perf_counter() - started
        self.total_seconds += cost
        row = {"step": int(step), "seconds": round(self.seconds_before + time.perf_counter() - self.started, 3),
               "timestamp": round(time.time(), 3), self.key: value, "fid_seconds": round(cost, 3)}
        self.history[METRICS_KEY].append(row)
        self._write_file()
        with self.writer.as_default(step=step):
            tf.summary.scalar(self.key, value)
        self.writer.flush()
        caveat = " (fewer real images than features: compare only within this run)" \
            if self.num_real < RandomCNN.feature_dim else ""
        self.log(f"step {step}: training FID ({RandomCNN.name}, {FID_SAMPLES} EMA samples vs {self.num_real} "
                 f"training images) {value:.4f}{caveat}, {cost:.1f} s")
        return value

    def _write_file(self) -> None:
        # Rewritten whole each time: object stores (gs://) cannot append, and the file stays small.
        with tf.io.gfile.GFile(self.path, "w") as f:
            f.write("".join(json.dumps(row) + "\n" for row in self.history[METRICS_KEY]))


class SampleGrids:
    """``<run_dir>/samples/step_XXXXXX.png`` (or another name), each titled with its step, and
    TensorBoard images of the exported (EMA) generator, always from the same latent points so
    grids compare across steps; ``write_strip`` puts the grids side by side in one
    ``samples/strip.png`` (the grids of this execution: after a resume, from the resumed step)."""

    def __init__(self, trainer: GanTraining, config: TrainConfig, run_dir: str, writer, chief: bool):
        self.trainer, self.run_dir, self.writer, self.chief = trainer, run_dir, writer, chief
        # A self-conditioned generator's grid is drawn as it is served: clusters from the latent.
        self.latent, self.labels, self.columns = fixed_latent(config, trainer.served_classes)
        self.paths: list[str] = []
        self.grids: list[tuple[int, np.ndarray]] = []  # (step, images) for the strip

    def write(self, step: int, name: str | None = None) -> None:
        images = self.trainer.generate(tf.constant(self.latent),
                                       None if self.labels is None else tf.constant(self.labels))
        path = os.path.join(self.run_dir, "samples", name or f"step_{step:06d}.png")
        if self.chief:
            pixels = images.numpy()
            save_image_grid(pixels, path, self.columns, title=f"step {step}")
            with self.writer.as_default(step=step):
                tf.summary.image("samples", (images[:16] + 1.0) / 2.0, max_outputs=16)
            if self.grids and self.grids[-1][0] == step:
                self.grids.pop()
            self.grids.append((step, pixels))
            if len(self.grids) > 2 * STRIP_MAX_GRIDS:  # a small sample_every_steps: keep memory bounded
                self.grids = self.grids[-1::-2][::-1]
        self.paths.append(path)

    def write_strip(self) -> str | None:
        """``samples/strip.png``: up to STRIP_MAX_GRIDS grids, evenly spaced, the last one included."""
        if not self.chief or not self.grids:
            return None
        picked = np.unique(np.linspace(0, len(self.grids) - 1, min(len(self.grids), STRIP_MAX_GRIDS)).round()
                           .astype(int))
        return save_grid_strip([(f"step {self.grids[i][0]}", image_grid(self.grids[i][1], self.columns))
                                for i in picked], os.path.join(self.run_dir, "samples", STRIP_FILENAME))


class BestGenerator:
    """The exported generator (and its discriminator) at the lowest training FID so far, and the
    stopping rule: ``training.keep_best`` exports that snapshot instead of the last step's nets (a
    short GAN run on small data often peaks before its last step); ``training.stop_patience`` ends
    training after that many training-FID rows in a row without a new best (by at least
    MIN_IMPROVEMENT), rather than spending the rest of the budget. The snapshot is kept in
    ``<checkpoint_dir>/best_generator.npz``, so a resumed run keeps its best."""

    MIN_IMPROVEMENT = 0.01  # relative: the training FID's draw-to-draw noise is about 1%
    FILENAME = "best_generator.npz"

    def __init__(self, trainer: GanTraining, config: TrainConfig, checkpoint_dir: str, chief: bool, history: dict):
        self.trainer, self.config, self.chief = trainer, config, chief
        self.path = os.path.join(checkpoint_dir, self.FILENAME)
        self.best_fid, self.best_step, self.weights = math.inf, None, None
        if config.keep_best and tf.io.gfile.exists(self.path):
            with tf.io.gfile.GFile(self.path, "rb") as f:
                stored = np.load(io.BytesIO(f.read()))
                self.best_fid, self.best_step = float(stored["fid"]), int(stored["step"])
                self.weights = [[stored[f"{net}_{i}"] for i in range(int(stored[f"{net}_count"]))] for net in ("g", "d")]
        rows = history[METRICS_KEY]
        if not config.keep_best and rows:  # the best so far, from the restored rows
            best = min(rows, key=lambda row: row[TrainingFid.KEY])
            self.best_fid, self.best_step = best[TrainingFid.KEY], best["step"]
        self.misses = sum(1 for row in rows if self.best_step is not None and row["step"] > self.best_step)

    @property
    def stopped(self) -> bool:
        """A resumed run that had already stopped by stop_patience trains no further."""
        return self.config.stop_patience is not None and self.misses >= self.config.stop_patience

    def update(self, step: int, fid: float) -> bool:
        """Records a training FID; True when training should stop."""
        if fid < self.best_fid * (1.0 - self.MIN_IMPROVEMENT):
            self.best_fid, self.best_step, self.misses = fid, step, 0
            if self.config.keep_best:
                self.weights = [self.trainer.export_generator.get_weights(), self.trainer.discriminator.get_weights()]
                self._save()
        else:
            self.misses += 1
        return self.stopped

    def _save(self) -> None:
        if not self.chief:
            return
        arrays = {"fid": self.best_fid, "step": self.best_step}
        for net, weights in zip(("g", "d"), self.weights):
            arrays[f"{net}_count"] = len(weights)
            arrays.update({f"{net}_{i}": w for i, w in enumerate(weights)})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        tf.io.gfile.makedirs(os.path.dirname(self.path))
        with tf.io.gfile.GFile(self.path, "wb") as f:
            f.write(buffer.getvalue())

    def restore(self, step: int, log: Callable[[str], None]) -> None:
        """With keep_best, puts the best snapshot's weights into the nets that are exported."""
        if not self.config.keep_best or self.weights is None or self.best_step == step:
            return
        self.trainer.export_generator.set_weights(self.weights[0])
        self.trainer.discriminator.set_weights(self.weights[1])
        log(f"training.keep_best: exporting the generator of step {self.best_step} (training FID "
            f"{self.best_fid:.4f}, the lowest), not the last step's ({step})")


class Checkpoints:
    """Checkpoints of everything the step updates (the last two kept) and, beside them, the
    history of log lines (``history.json``), so that a restarted run resumes both."""

    def __init__(self, trainer: GanTraining, checkpoint_dir: str, chief: bool, restore_from: str | None = None):
        """``restore_from``: where a resume reads (the chief's folder, for every worker of a
        multi-worker run: all restore the same step, or their loops would part); default
        ``checkpoint_dir``, where this worker writes."""
        self.trainer, self.directory, self.chief = trainer, checkpoint_dir, chief
        self.checkpoint = trainer.checkpoint()
        self.manager = tf.train.CheckpointManager(self.checkpoint, checkpoint_dir, max_to_keep=2)
        restore_from = restore_from or checkpoint_dir
        self._restore_manager = self.manager if restore_from == checkpoint_dir else \
            tf.train.CheckpointManager(self.checkpoint, restore_from, max_to_keep=2)
        self.history_path = os.path.join(checkpoint_dir, HISTORY_FILENAME)
        self._restore_history_path = os.path.join(restore_from, HISTORY_FILENAME)

    @property
    def latest(self) -> str | None:
        return self._restore_manager.latest_checkpoint

    def restore_latest(self) -> dict[str, list]:
        """Restores the latest checkpoint; returns the history up to its step."""
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        if not tf.io.gfile.exists(self._restore_history_path):
            return empty_history()
        with tf.io.gfile.GFile(self._restore_history_path) as f:
            saved = json.load(f)
        step = int(self.trainer.step.numpy())
        keep = [i for i, s in enumerate(saved.get("step", [])) if s <= step]
        # A key a run never logged (augment_p without ADA) has no rows.
        return {**{k: [saved[k][i] for i in keep] if len(saved.get(k, [])) == len(saved.get("step", [])) else []
                   for k in HISTORY_KEYS},
                METRICS_KEY: [row for row in saved.get(METRICS_KEY, []) if row["step"] <= step]}

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

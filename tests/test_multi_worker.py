"""Multi-worker training for real: MultiWorkerMirroredStrategy over local worker processes on
loopback (TF_CONFIG as a cluster manager sets it), a worker killed mid-run and the rerun resuming,
and a short pipeline with training.num_workers=2 that pushes a servable generator."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.common import layout
from tfx_gan.training.config import TrainConfig
from tfx_gan.training.multi_worker import WorkerFailed, local_cluster, train_on_workers
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.data.digits import digits_28x28

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    images, labels = digits_28x28()
    return write_tfrecords(images[:256], labels[:256], str(tmp_path_factory.mktemp("digits") / "train.tfrecord.gz"))


def config(**overrides) -> TrainConfig:
    base = dict(architecture="conditional_dcgan", batch_size=32, train_steps=8, log_every_steps=2,
                checkpoint_every_steps=4, sample_every_steps=4, num_workers=2, mixed_precision="off")
    return TrainConfig.from_dict({**base, **overrides})


def train(cfg, digit_files, root, logs):
    return train_on_workers(cfg, digit_files, SHAPE, 10, run_dir=str(root / "run"),
                            checkpoint_dir=str(root / "ckpt"), serving_dir=str(root / "serving"),
                            config_path=str(root / "train_config.json"), log=logs.append)


def test_local_cluster_has_distinct_free_ports():
    cluster = local_cluster(3)
    assert len(set(cluster["worker"])) == 3 and all(w.startswith("127.0.0.1:") for w in cluster["worker"])


def test_two_workers_train_and_the_chief_alone_exports(digit_files, tmp_path):
    logs = []
    result = train(config(), digit_files, tmp_path, logs)
    assert (result.steps, result.num_workers, result.strategy) == (8, 2, "MultiWorkerMirroredStrategy")
    assert any("MultiWorkerMirroredStrategy over 2 local worker processes" in line for line in logs)
    # the chief's lines reach the log: its strategy line names 2 replicas (one per worker)
    assert any("strategy MultiWorkerMirroredStrategy (2 replica(s))" in line for line in logs), logs
    images = tf.saved_model.load(str(tmp_path / "serving")).signatures["serving_default"](
        latent=tf.random.normal([3, 100]), labels=tf.constant([1, 2, 3]))["images"]
    assert images.shape == (3, 28, 28, 1) and np.isfinite(images.numpy()).all()
    # only the chief writes the run's views; the other worker checkpoints into its private folder
    assert (tmp_path / "run" / "loss_curve.png").exists()
    assert (tmp_path / "ckpt" / "worker-tmp-1").is_dir()
    assert not (tmp_path / "run" / "worker-tmp-1" / "loss_curve.png").exists()


def test_a_killed_worker_is_named_and_the_rerun_resumes_from_the_last_checkpoint(digit_files, tmp_path):
    cfg = config(train_steps=400, checkpoint_every_steps=4, log_every_steps=4)
    logs, errors = [], []

    def run():
        try:
            train(cfg, digit_files, tmp_path, logs)
        except WorkerFailed as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 240
    while not any(line.startswith("step 8/") for line in logs) and time.time() < deadline and thread.is_alive():
        time.sleep(0.2)
    assert any(line.startswith("step 8/") for line in logs), logs[-5:]
    worker = subprocess.run(["pgrep", "-f", f"multi_worker {tmp_path}/run/workers-.*/spec.json 1$"],
                            capture_output=True, text=True).stdout.split()
    assert len(worker) == 1, worker
    os.kill(int(worker[0]), signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "the chief was not stopped after its peer died"
    assert len(errors) == 1 and "training worker 1 of 2" in errors[0] and "killed by signal 9" in errors[0], errors
    assert "a rerun resumes from the last checkpoint" in errors[0]

    logs.clear()
    result = train(cfg.replace(train_steps=16), digit_files, tmp_path, logs)  # same checkpoint folders
    resumed = [line for line in logs if line.startswith("resuming from checkpoint")]
    assert resumed and result.resumed_from_step >= 8 and result.steps == max(16, result.resumed_from_step), logs[:5]


def test_a_short_pipeline_with_two_workers_pushes_a_servable_generator(tmp_path):
    from PIL import Image

    from tfx_gan.pipeline.config import load_config
    from tfx_gan.pipeline.local_runner import run_pipeline

    images, labels = digits_28x28()
    for c in range(10):  # a span of 20 real digits per class
        os.makedirs(tmp_path / "data" / "span-1" / str(c))
        for i in np.flatnonzero(labels == c)[:20]:
            Image.fromarray(images[i]).save(tmp_path / "data" / "span-1" / str(c) / f"{i:04d}.png")
    cfg = load_config(overrides={
        "data": {"input_base": str(tmp_path / "data")},
        "training": {"train_steps": 12, "batch_size": 32, "log_every_steps": 4, "checkpoint_every_steps": 4,
                     "sample_every_steps": 4, "num_workers": 2},
        "evaluation": {"num_samples": 40, "num_draws": 2, "extractors": ["domain_cnn"], "classifier_epochs": 1,
                       "max_fid_over_floor": None, "min_novelty": None, "min_class_share": None,
                       "cas_seeds": 1, "cas_epochs": 1},
        "push_destination": str(tmp_path / "serving"), "output_dir": str(tmp_path / "out")})
    summary = run_pipeline(cfg)
    assert all(c["state"] == "COMPLETE" for c in summary["components"]), summary["components"]
    assert summary["blessed"] is True
    (version, path), = layout.list_versions(cfg.push_destination)
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert served(latent=tf.zeros([2, 100]), labels=tf.constant([0, 9]))["images"].shape == (2, 28, 28, 1)
    assert layout.read_metadata(path)["steps"] == 12

"""train_gan end to end on tiny step counts: outputs, export, resume, divergence, warm start,
the tf.distribute path and the float16 loss-scaling path."""
import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfx_gan.training import losses as losses_lib
from tfx_gan.training.config import TrainConfig
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.training.step import GanTraining
from tfx_gan.training.train import HISTORY_KEYS, TrainingDivergedError, save_trained_models, train_gan
from tfx_gan.training.warm_start import warm_start
from tfx_gan.training.export import load_keras_model
from tfx_gan.data.digits import digits_28x28

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    images, labels = digits_28x28()
    path = tmp_path_factory.mktemp("digits") / "train.tfrecord.gz"
    return write_tfrecords(images[:256], labels[:256], str(path))


def tiny(**overrides):
    base = dict(architecture="dcgan_28", batch_size=16, train_steps=6, log_every_steps=2, checkpoint_every_steps=3, sample_every_steps=3)
    base.update(overrides)
    return TrainConfig.from_dict(base)


def test_train_save_export_and_load(digit_files, tmp_path):
    config = tiny()
    logs = []
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"), log=logs.append)
    assert result.steps == 6 and result.resumed_from_step == 0
    assert set(result.history) >= set(HISTORY_KEYS)
    assert result.history["step"] == [2, 4, 6]
    assert all(np.isfinite(result.history["d_loss"]))
    assert any("images/s" in line and "D acc real" in line for line in logs)
    # Progress: percentage, elapsed time and ETA on every log line.
    assert re.search(r"^step 2/6 \(33%\) [0-9hms]+ elapsed, ~[0-9hms]+ left ", logs[1]), logs
    # Run outputs: titled sample grids and their strip, the history, the loss curve and TensorBoard events.
    run = tmp_path / "run"
    assert (run / "samples" / "step_000003.png").exists() and (run / "samples" / "final.png").exists()
    assert (run / "samples" / "strip.png").exists()
    assert json.loads((run / "history.json").read_text())["step"] == [2, 4, 6]
    assert (run / "loss_curve.png").exists()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(run))

    serving_dir = tmp_path / "serving"
    save_trained_models(result, config, str(serving_dir), str(tmp_path / "train_config.json"), SHAPE, 10)
    assert (serving_dir / "saved_model.pb").exists()
    meta = json.loads((serving_dir / "assets.extra" / "gan_metadata.json").read_text())
    assert meta["architecture"] == "dcgan_28" and meta["loss"] == "bce" and meta["steps"] == 6
    assert json.loads((tmp_path / "train_config.json").read_text())["config"]["architecture"] == "dcgan_28"

    served = tf.saved_model.load(str(serving_dir))
    latent = tf.random.normal([3, config.latent_dim])
    images = served.signatures["serving_default"](latent=latent)["images"]
    assert images.shape == (3, 28, 28, 1)
    # The export is the (EMA) generator of the result, in float32.
    expected = result.generator(latent, training=False).numpy()
    np.testing.assert_allclose(images.numpy(), expected, atol=0.05)
    pngs = served.signatures["generate_png"](num_images=tf.constant(2), seed=tf.constant(1))["png_bytes"]
    assert pngs.shape == (2,)

    discriminator = load_keras_model(str(serving_dir), "discriminator")
    assert discriminator.output_shape == (None, 1)
    logits = discriminator(images, training=False)
    assert logits.shape == (3, 1) and logits.dtype == tf.float32
    assert load_keras_model(str(serving_dir), "generator").output_shape == (None, 28, 28, 1)


def test_resume_after_kill_and_restart_of_finished_run(digit_files, tmp_path):
    config = tiny(train_steps=8, checkpoint_every_steps=4, log_every_steps=4)
    ckpt = str(tmp_path / "ckpt")

    class Killed(Exception):
        pass

    def kill_at_6(step):
        if step == 6:
            raise Killed()

    with pytest.raises(Killed):  # "killed" after the step-4 checkpoint, before the next one
        train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run1"), ckpt, on_step=kill_at_6)
    logs = []
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run2"), ckpt, log=logs.append)
    assert result.resumed_from_step == 4, logs
    assert result.steps == 8
    assert any("resuming from checkpoint" in line and "step 4" in line for line in logs)
    assert result.history["step"] == [4, 8]  # step 4 restored from the checkpoint's history

    # A finished run restarted trains nothing and gives back the same generator.
    latent = tf.random.normal([2, config.latent_dim])
    before = result.generator(latent, training=False).numpy()
    again = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run3"), ckpt)
    assert again.resumed_from_step == 8 and again.steps == 8
    np.testing.assert_allclose(again.generator(latent, training=False).numpy(), before, atol=1e-6)


def test_divergence_guard_raises_and_saves_nothing(digit_files, tmp_path, monkeypatch):
    def nan_g_loss(fake_logits, real_logits=None):  # an injected NaN in the generator's loss
        return losses_lib.bce_g_loss(fake_logits) * np.float32("nan")

    monkeypatch.setattr(losses_lib, "get", lambda name: (losses_lib.bce_d_loss, nan_g_loss))
    config = tiny(train_steps=10, checkpoint_every_steps=5, log_every_steps=5)
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingDivergedError) as err:
        train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(ckpt))
    assert err.value.step == 1 and err.value.loss_name == "g_loss"
    assert "step 1" in str(err.value) and "g_loss" in str(err.value)
    assert not ckpt.exists() or not any(name.startswith("ckpt") for name in os.listdir(ckpt))


def test_divergence_from_huge_learning_rate(digit_files, tmp_path):
    config = tiny(architecture="mlp", loss="lsgan", g_learning_rate=1e12, d_learning_rate=1e12, diffaugment="", ema_decay=0.0,
                  mixed_precision="off", train_steps=40, log_every_steps=40, checkpoint_every_steps=40)
    with pytest.raises(TrainingDivergedError):
        train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))


def test_warm_start_loads_weights_and_warns_on_mismatch(digit_files, tmp_path):
    config = tiny(train_steps=2, architecture="mlp")
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))
    serving_dir = save_trained_models(result, config, str(tmp_path / "serving"), str(tmp_path / "train_config.json"),
                                      SHAPE, 10)

    logs = []
    trainer = GanTraining(config, SHAPE, 10, "float32")
    assert warm_start(trainer, serving_dir, logs.append)
    for a, b in zip(trainer.generator.get_weights(), result.generator.get_weights()):
        np.testing.assert_allclose(a, b)
    for a, b in zip(trainer.discriminator.get_weights(), result.discriminator.get_weights()):
        np.testing.assert_allclose(a, b)

    # Through train_gan (no checkpoint yet -> warm start is used).
    logs = []
    warm = train_gan(tiny(train_steps=1, architecture="mlp"), digit_files, SHAPE, 10, str(tmp_path / "run2"), str(tmp_path / "ckpt2"),
                     warm_start_dir=serving_dir, log=logs.append)
    assert any(line.startswith("warm start:") for line in logs)
    assert warm.steps == 1 and warm.warm_started_from == serving_dir

    other = GanTraining(tiny(architecture="dcgan_28"), SHAPE, 10, "float32")
    logs = []
    assert not warm_start(other, serving_dir, logs.append)
    assert "WARNING" in logs[0] and "shapes" in logs[0]


def test_mirrored_strategy_path_on_cpu(digit_files, tmp_path):
    # There is no GPU on the test machine: MirroredStrategy runs over the single CPU device, which
    # still exercises strategy.scope, experimental_distribute_dataset, strategy.run and reduce.
    config = tiny(distribution="mirrored", train_steps=3, loss="wgan_gp", r1_gamma=1.0, d_steps_per_g_step=2)
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))
    assert result.strategy == "MirroredStrategy" and result.steps == 3
    assert all(np.isfinite(result.history["d_loss"]))


# Capping oneDNN's ISA (ONEDNN_MAX_CPU_ISA=AVX2, how this suite runs a fast CPU as an AVX2-only
# one) makes TensorFlow abort in mixed_float16 kernels; a real AVX2-only CPU runs this test.
@pytest.mark.skipif(bool(os.environ.get("ONEDNN_MAX_CPU_ISA")),
                    reason="mixed_float16 aborts under an ONEDNN_MAX_CPU_ISA cap (not on a real AVX2 CPU)")
def test_float16_loss_scaling_path(digit_files, tmp_path):
    # float16 is emulated (slow) on CPU: the small MLP keeps this quick.
    config = tiny(architecture="mlp", batch_size=8, mixed_precision="mixed_float16", train_steps=2,
                  diffaugment="translation,cutout,color")
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))
    assert result.precision == "mixed_float16" and result.steps == 2
    trainer = GanTraining(config, SHAPE, 10, "mixed_float16")
    assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer)
    save_trained_models(result, config, str(tmp_path / "serving"), str(tmp_path / "train_config.json"), SHAPE, 10)
    assert load_keras_model(str(tmp_path / "serving"), "discriminator").dtype_policy.name == "float32"


def test_multi_worker_strategy_path_single_worker(digit_files, tmp_path):
    # MultiWorkerMirroredStrategy must be created before other TF work in its process, so this
    # runs in a fresh interpreter; without TF_CONFIG it is a one-worker cluster on this machine
    # (no GPU here either). With TF_CONFIG naming several workers the same code trains on all.
    import subprocess
    import sys
    script = (
        "from tfx_gan.training.config import TrainConfig\n"
        "from tfx_gan.training.train import train_gan\n"
        f"config = TrainConfig.from_dict(dict(architecture='mlp', batch_size=16, train_steps=2, log_every_steps=1, "
        f"distribution='multi_worker'))\n"
        f"r = train_gan(config, {digit_files!r}, (28, 28, 1), 10, {str(tmp_path / 'run')!r}, "
        f"{str(tmp_path / 'ckpt')!r})\n"
        "print('RESULT', r.strategy, r.steps)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300, cwd=root)
    # tf.distribute.MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy in TF 2.16.
    assert re.search(r"RESULT (MultiWorkerMirroredStrategy|CollectiveAllReduceStrategy) 2", out.stdout), \
        out.stdout[-2000:] + out.stderr[-3000:]


def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_keeps_the_last_one(digit_files, tmp_path):
    """Needs root to mount a small tmpfs (skipped with the reason elsewhere)."""
    import shutil
    import subprocess

    from tfx_gan.training.train import CheckpointWriteError

    config = tiny(architecture="mlp", train_steps=3, checkpoint_every_steps=3)
    train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp_path / "ckpt") for f in fs)
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size * 1.5) // 1024}k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the disk-full case is not exercised")
    try:
        shutil.copytree(tmp_path / "ckpt", mount / "ckpt")  # room for one more checkpoint's half
        with pytest.raises(CheckpointWriteError, match=r"step 6 .*small/ckpt"):
            train_gan(config.replace(train_steps=6), digit_files, SHAPE, 10, str(tmp_path / "run2"), str(mount / "ckpt"))
        assert tf.train.latest_checkpoint(str(mount / "ckpt")).endswith("ckpt-3")  # the last good one
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_max_minutes_stops_training_early_and_keeps_what_it_trained(digit_files, tmp_path):
    # A budget of ~0.1 s cannot hold 10,000 steps: training stops after the step that ran it out,
    # checkpoints that step and returns a usable generator.
    config = tiny(train_steps=10_000, max_minutes=0.002, log_every_steps=10_000, checkpoint_every_steps=10_000)
    logs = []
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"), log=logs.append)
    assert 1 <= result.steps < 10_000
    stop = [line for line in logs if line.startswith("training.max_minutes")]
    assert stop == [f"training.max_minutes (0.002) reached: stopping at step {result.steps} of 10000"], logs
    assert result.history["step"][-1] == result.steps  # the last log row is the stopping step
    restored = GanTraining(config, SHAPE, 10, "float32")
    tf.train.Checkpoint(step=restored.step).read(tf.train.latest_checkpoint(str(tmp_path / "ckpt"))).expect_partial()
    assert int(restored.step.numpy()) == result.steps
    latent = tf.random.normal([2, config.latent_dim])
    assert np.all(np.isfinite(result.generator(latent, training=False).numpy()))

"""What a user watches while a GAN trains: the training FID (metrics.jsonl, TensorBoard, the
history), a bounded number of titled sample grids and their strip, progress lines with an ETA,
and ``./gan tensorboard`` serving the pipeline's training logs (a real TensorBoard on loopback)."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfx_gan.training.hooks import GRIDS_PER_RUN, format_duration
from tfx_gan.training.train import train_gan
from tfx_gan.pipeline import cli
from test_gan_train import SHAPE, digit_files, tiny  # noqa: F401  (digit_files: the fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small(**overrides):
    return tiny(**{"architecture": "mlp", "fid_every_steps": 3, **overrides})


def scalar_events(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a run's TensorBoard event files: {tag: [(step, value), ...]}."""
    scalars: dict = {}
    for name in sorted(os.listdir(run_dir)):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(run_dir, name)):
                for value in event.summary.value:
                    if value.metadata.plugin_data.plugin_name == "scalars":
                        scalars.setdefault(value.tag, []).append(
                            (event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


@pytest.fixture(scope="module")
def resumed_run(digit_files, tmp_path_factory):
    """A run killed at step 4 (after the step-3 checkpoint and FID) and restarted to step 6."""
    root = tmp_path_factory.mktemp("resumed")

    class Killed(Exception):
        """Stands in for a kill of the training process at step 4."""

    def kill_at_4(step):
        if step == 4:
            raise Killed()

    with pytest.raises(Killed):
        train_gan(small(), digit_files, SHAPE, 10, str(root / "run1"), str(root / "ckpt"), on_step=kill_at_4)
    logs = []
    result = train_gan(small(), digit_files, SHAPE, 10, str(root / "run2"), str(root / "ckpt"), log=logs.append)
    return root, result, logs


def test_training_fid_goes_to_metrics_jsonl_tensorboard_and_history(resumed_run):
    root, result, logs = resumed_run
    assert result.resumed_from_step == 3
    first = [json.loads(line) for line in (root / "run1" / "metrics.jsonl").read_text().splitlines()]
    rows = [json.loads(line) for line in (root / "run2" / "metrics.jsonl").read_text().splitlines()]
    # The resumed run's file starts with the row restored from the checkpoint's history.
    assert [row["step"] for row in first] == [3] and [row["step"] for row in rows] == [3, 6]
    assert rows[0] == first[0]
    for row in rows:
        assert set(row) == {"step", "seconds", "timestamp", "fid_random_cnn", "fid_seconds"}
        assert np.isfinite(row["fid_random_cnn"]) and row["fid_random_cnn"] > 0 and row["fid_seconds"] > 0
    assert rows[1]["seconds"] > rows[0]["seconds"]
    assert result.history["metrics"] == rows
    assert json.loads((root / "run2" / "history.json").read_text())["metrics"] == rows
    assert [step for step, _ in scalar_events(root / "run2")["fid_random_cnn"]] == [6]
    np.testing.assert_allclose(scalar_events(root / "run1")["fid_random_cnn"][0][1], rows[0]["fid_random_cnn"],
                               rtol=1e-5)
    assert any(re.match(r"step 6: training FID \(random_cnn, 1024 EMA samples vs 256 training images\) [\d.]+", line)
               for line in logs), logs
    assert re.search(r"trained 3 steps in [\d.]+ s \(training FID [\d.]+ s of it, [\d.]+%\)", "\n".join(logs))


def test_fid_off_and_a_bounded_number_of_titled_grids_with_their_strip(digit_files, tmp_path):
    config = small(train_steps=25, log_every_steps=25, checkpoint_every_steps=25, fid_every_steps=0,
                   sample_every_steps=0)
    result = train_gan(config, digit_files, SHAPE, 10, str(tmp_path / "run"), str(tmp_path / "ckpt"))
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and result.history["metrics"] == []
    samples = tmp_path / "run" / "samples"
    # 25 steps: a grid every ceil(25 / GRIDS_PER_RUN) = 3 steps, the final one, and the strip.
    names = sorted(os.listdir(samples))
    assert names == ["final.png"] + [f"step_{s:06d}.png" for s in range(3, 25, 3)] + ["strip.png"]
    assert len(names) <= GRIDS_PER_RUN + 2
    grid = np.asarray(Image.open(samples / "final.png"))
    # Square 8 x 8 grid (an unconditional model) under a title band of white paper.
    assert grid.shape[0] > grid.shape[1] and (grid[:3] == 255).all()
    strip = np.asarray(Image.open(samples / "strip.png"))
    assert strip.shape[1] > 6 * strip.shape[0]  # 9 square grids side by side


def test_durations_read_as_people_write_them():
    assert [format_duration(s) for s in (0.4, 42, 130, 3725)] == ["0s", "42s", "2m10s", "1h02m"]


def test_tensorboard_serves_the_pipelines_training_logs(resumed_run, tmp_path):
    # Where GanTrainer's ModelRun artifacts live under the pipeline root (execution 7 here).
    shutil.copytree(resumed_run[0] / "run2", tmp_path / "out" / "pipeline_root" / "GanTrainer" / "model_run" / "7")
    command = [sys.executable, "-m", "tfx_gan.pipeline.cli", "tensorboard", "--set", f"output_dir={tmp_path / 'out'}",
               "--port", "0", "--host", "127.0.0.1"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONPATH": ROOT})
    try:
        url, lines = None, []
        deadline = time.time() + 120
        while url is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            lines.append(line)
            match = re.search(r"TensorBoard on .*model_run\): (http://127\.0\.0\.1:\d+/)", line)
            url = match and match.group(1)
        assert url, "".join(lines)
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200 and b"<!doctype html>" in page.read(2000).lower()
        tags = {}  # TensorBoard loads the event files in the background, after it started serving
        while time.time() < deadline and "fid_random_cnn" not in tags.get("7", {}):
            with urllib.request.urlopen(url + "data/plugin/scalars/tags", timeout=30) as response:
                tags = json.loads(response.read())
            time.sleep(1)
        assert {"d_loss", "g_loss", "d_real_acc", "d_fake_acc", "images_per_sec", "fid_random_cnn"} <= set(tags["7"])
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("extra, message", [
    ([], "no training logs under .*/out/pipeline_root/GanTrainer/model_run yet: train first with ./gan run"),
    (["--port", "70000"], "--port 70000 is not a port number"),
    (["--host", "nosuch.invalid"], "cannot listen on --host 'nosuch.invalid'"),
    (["--host", "127.0.0.1", "--port", "BUSY"], "cannot start TensorBoard on 127.0.0.1:\\d+: .*already in use"),
])
def test_tensorboard_refuses_with_one_line(tmp_path, capsys, extra, message):
    if extra:  # a run's folder, so that only the flag is wrong
        os.makedirs(tmp_path / "out" / "pipeline_root" / "GanTrainer" / "model_run" / "1")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        extra = [str(busy.getsockname()[1]) if arg == "BUSY" else arg for arg in extra]
        assert cli.main(["tensorboard", "--set", f"output_dir={tmp_path / 'out'}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch("error: " + message + ".*", err) and "\n" not in err, err

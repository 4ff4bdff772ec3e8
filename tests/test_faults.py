"""Faults an operator causes: SIGKILL at random points of a run, concurrent ./gan commands.

Everything runs for real: `./gan run` as a subprocess on a tiny config (200 digits, 120 steps),
killed with SIGKILL (the whole process group, Beam workers included) at a point chosen at
random after a component starts, then run again without a kill. After every rerun:
  - it finishes (exit 0);
  - a run killed after a checkpoint resumes from it instead of starting over;
  - the push directory holds only complete versions that load, and no temporary folders;
  - every pushed version was blessed (the served version never becomes an unblessed one).

CI runs a representative subset (one kill in training, one in evaluation or push, and the
concurrent-commands case); all ten kill points run with
`./gan test -m faults_long tests/test_faults.py` (about 15 minutes on 2 cores).
The disk-full cases live next to the code they break (tests/test_runner_reliability.py: the
push; tests/test_gan_train.py: the checkpoint), because they need no whole run.
"""
from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import yaml
from PIL import Image

from tfx_gan.common import layout
from tfx_gan.data.digits import digits_28x28

pytestmark = pytest.mark.faults

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(REPO, "gan")
DEFAULT_CONFIG = os.path.join(REPO, "pipeline", "configs", "digits.yaml")
STEPS, CHECKPOINT_EVERY = 120, 20
RUN_TIMEOUT_S = 420

# (component whose start arms the kill, longest delay after that start). The delay is drawn
# uniformly from [0, longest]; the components run one after another, so a delay past a short
# component's end kills whatever runs next, which is still a valid point of the run. A start is
# recognised by the project's own line that opens it (or closes the component before it): TFX's
# "Component X is running" log lines stop reaching the output once Beam has run in the process.
STARTS = {
    "GanTrainer": "training ",                    # train_gan's first line
    "GanTrainer after a checkpoint": f"step {3 * CHECKPOINT_EVERY}/{STEPS}",  # logged, then saved
    "ReferenceStatsGen": "trained ",              # train_gan's last line; ReferenceStatsGen is next
    "GanEvaluator": "[reference] done",           # ReferenceStatsGen's last line
    "Pusher": "blessed: ",                        # the evaluator's decision ("blessed: ", "not blessed: ")
}
KILL_POINTS = [
    ("GanTrainer", 5.0), ("GanTrainer", 15.0), ("GanTrainer", 30.0), ("GanTrainer", 45.0),
    ("ReferenceStatsGen", 2.0), ("ReferenceStatsGen", 6.0),
    ("GanEvaluator", 1.0), ("GanEvaluator", 3.0),
    ("Pusher", 0.1), ("Pusher", 0.4),
]
# CI: one kill just after a checkpoint (the rerun must resume from it), one in evaluation/push.
CI_KILL_POINTS = [("GanTrainer after a checkpoint", 1.0), KILL_POINTS[7]]


def write_span(base: str, span: int, per_class: int = 15) -> None:
    """span-<span>/: ``per_class`` digits of each class, different ones for every span."""
    images, labels = digits_28x28()
    for c in range(10):
        for i in np.flatnonzero(labels == c)[(span - 1) * per_class:span * per_class]:
            path = os.path.join(base, f"span-{span}", str(c), f"{i:04d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(images[i]).save(path)


def write_config(root, name: str = "gan-faults") -> str:
    with open(DEFAULT_CONFIG) as f:
        config = yaml.safe_load(f)
    config["pipeline_name"] = name
    config["data"]["input_base"] = str(root / "data")
    # Paths in a config file are relative to its folder: the copy lives elsewhere, so make it absolute.
    config["data"]["schema_file"] = os.path.normpath(os.path.join(os.path.dirname(DEFAULT_CONFIG),
                                                                  config["data"]["schema_file"]))
    config["training"].update(train_steps=STEPS, batch_size=32, checkpoint_every_steps=CHECKPOINT_EVERY,
                              log_every_steps=CHECKPOINT_EVERY, sample_every_steps=60)
    # A tiny run cannot reach a good FID: blessing is judged on "no worse than the serving one".
    config["evaluation"].update(num_samples=100, classifier_epochs=2, max_fid_over_floor=None, min_novelty=None,
                                min_class_share=None, cas_seeds=1, cas_epochs=2)
    config["push_destination"] = str(root / "serving")
    config["output_dir"] = str(root / "out")
    path = str(root / "config.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


class GanRun:
    """`./gan run` (or another ``command``) in its own process group, its output collected line by line."""

    def __init__(self, config_path: str, *extra: str, command: str = "run"):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([GAN, command, "--config", config_path, *extra], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return any(text in line for line in list(self.lines))

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()

    def wait(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"./gan run did not finish in {timeout_s} s:\n{self.output()[-3000:]}")
        self._reader.join(timeout=10)
        return code


def assert_push_dir_sound(push_dir: str) -> list[int]:
    """Only complete, loadable versions; no temporary or partial folders; returns the versions."""
    import tensorflow as tf

    entries = sorted(e for e in os.listdir(push_dir) if e != layout.RUNS_DIR) if os.path.isdir(push_dir) else []
    versions = [v for v, _ in layout.list_versions(push_dir)]
    assert sorted(str(v) for v in versions) == [e for e in entries], f"unexpected entries in {push_dir}: {entries}"
    for version, path in layout.list_versions(push_dir):
        complete, reason, _ = layout.check_version_dir(path)
        assert complete, f"version {version} is not complete: {reason}"
        tf.saved_model.load(path)  # raises on a truncated or half-copied SavedModel
        assert layout.read_metadata(path) is not None, f"version {version} has no gan_metadata.json"
    return versions


def assert_every_push_was_blessed(output_dir: str, push_dir: str) -> None:
    """Each version under the push dir was pushed by a Pusher execution whose blessing said 1."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(os.path.join(output_dir, "metadata.sqlite")))
    pushed = {}
    for artifact in store.get_artifacts_by_type("PushedModel"):
        props = artifact.custom_properties
        if props.get("pushed") and props["pushed"].int_value == 1:
            pushed[str(props["pushed_version"].string_value)] = artifact.id
    for version in (e for e in os.listdir(push_dir) if e != layout.RUNS_DIR):
        assert version in pushed, f"version {version} in {push_dir} has no Pusher record: {sorted(pushed)}"
        events = store.get_events_by_artifact_ids([pushed[version]])
        execution_ids = [e.execution_id for e in events]
        inputs = store.get_events_by_execution_ids(execution_ids)
        blessing_ids = [e.artifact_id for e in inputs if e.type == e.INPUT]
        blessings = [a for a in store.get_artifacts_by_id(blessing_ids) if a.type == "ModelBlessing"]
        assert blessings and all(b.custom_properties["blessed"].int_value == 1 for b in blessings), version


def kill_then_rerun(root, config_path: str, span: int, component: str, longest_delay: float,
                    rng: random.Random) -> dict:
    """One fault: a new span arrives (so every component has work: no cache hits), a run is killed
    at a random point after ``component`` starts, then the run is started again."""
    write_span(str(root / "data"), span)
    checkpoints_before = set(glob.glob(str(root / "out" / "checkpoints" / "*" / "checkpoint")))
    delay = rng.uniform(0.0, longest_delay)
    run = GanRun(config_path)
    armed = run.wait_for(STARTS[component], RUN_TIMEOUT_S)
    assert armed, f"the run ended before {component} started:\n{run.output()[-3000:]}"
    time.sleep(delay)
    run.kill()
    killed_after = [f"{name} started" for name, marker in STARTS.items() if any(marker in line for line in run.lines)]
    # The killed training left a checkpoint of its own short of the last step (TF writes the
    # index file last): then the rerun must resume from it.
    new_checkpoints = set(glob.glob(str(root / "out" / "checkpoints" / "*" / "checkpoint"))) - checkpoints_before
    steps = [_checkpoint_step(os.path.dirname(path)) for path in new_checkpoints]
    checkpointed = any(0 < step < STEPS for step in steps)

    rerun = GanRun(config_path)
    code = rerun.wait()
    assert code == 0, f"rerun after a kill in {component} (+{delay:.1f} s) failed:\n{rerun.output()[-4000:]}"
    if checkpointed:
        trainer_lines = [line for line in rerun.lines if any(k in line for k in ("GanTrainer", "warm start", "training ", "resum"))]
        assert "resuming from checkpoint" in rerun.output(), \
            f"a killed training run (checkpoints at {steps}) started over:\n" + "\n".join(trainer_lines[:20])
    push_dir, output_dir = str(root / "serving"), str(root / "out")
    versions = assert_push_dir_sound(push_dir)
    assert_every_push_was_blessed(output_dir, push_dir)
    return {"span": span, "component": component, "delay_s": round(delay, 2), "armed": armed,
            "checkpoint_steps_left": steps,
            "running_when_killed": killed_after[-1] if killed_after else "(setup)",
            "resumed": "resuming from checkpoint" in rerun.output(), "versions": versions}


def _checkpoint_step(directory: str) -> int:
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(directory)
    return int(latest.rsplit("-", 1)[1]) if latest else 0


@pytest.fixture
def tiny_pipeline(tmp_path):
    write_span(str(tmp_path / "data"), 1)
    return tmp_path, write_config(tmp_path)


def _run_kill_points(tiny_pipeline, points, seed):
    root, config_path = tiny_pipeline
    rng = random.Random(seed)
    outcomes = [kill_then_rerun(root, config_path, span, component, longest, rng)
                for span, (component, longest) in enumerate(points, start=2)]
    report = root / "fault_outcomes.json"
    report.write_text(json.dumps(outcomes, indent=2))
    print(json.dumps(outcomes, indent=2), file=sys.stderr)
    return outcomes


def test_kills_in_training_and_evaluation_then_rerun(tiny_pipeline):
    _run_kill_points(tiny_pipeline, CI_KILL_POINTS, seed=1)


@pytest.mark.faults_long
def test_ten_random_kill_points_then_rerun(tiny_pipeline):
    outcomes = _run_kill_points(tiny_pipeline, KILL_POINTS, seed=int(os.environ.get("FAULT_SEED", "0")))
    assert len(outcomes) == len(KILL_POINTS)


def test_concurrent_commands_in_one_checkout(tiny_pipeline):
    """run + serve + generate at once from the same checkout (and .venv): all succeed, and a
    second run of the same pipeline is refused at once instead of training into the same folders."""
    root, config_path = tiny_pipeline
    first = GanRun(config_path)
    assert first.wait() == 0, first.output()[-4000:]  # something to serve

    port = _free_port()
    serve = subprocess.Popen([GAN, "serve", "--model_base_path", str(root / "serving"), "--model_name", "gan",
                              "--rest_api_port", str(port), "--port", "0"], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/v1/models/gan", 120)
        write_span(str(root / "data"), 2)  # new data: the next run trains again
        # Long enough that the second run below (~20 s to import TFX) starts while this one trains.
        run = GanRun(config_path, "--set", "training.train_steps=900")
        assert run.wait_for(STARTS["GanTrainer"], RUN_TIMEOUT_S), run.output()[-3000:]
        second = subprocess.run([GAN, "run", "--config", config_path], cwd=REPO, capture_output=True,
                                text=True, timeout=180)
        assert second.returncode != 0 and "lock" in (second.stderr + second.stdout).lower(), second.stderr[-2000:]
        generate = subprocess.run([GAN, "generate", "--server", f"http://127.0.0.1:{port}", "--model_name", "gan",
                                   "-n", "10", "--out_dir", str(root / "generated")], cwd=REPO,
                                  capture_output=True, text=True, timeout=180)
        assert generate.returncode == 0, generate.stderr[-3000:]
        assert len([f for f in os.listdir(root / "generated") if f.endswith(".png")]) >= 10
        assert run.wait() == 0, run.output()[-4000:]
        assert_push_dir_sound(str(root / "serving"))
        os.killpg(serve.pid, signal.SIGTERM)  # what a process manager sends: an ordinary stop
        served = serve.communicate(timeout=60)[0]
        assert serve.returncode == 0 and "server stopped (SIGTERM)" in served, served[-2000:]
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            serve.wait(timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout_s} s")

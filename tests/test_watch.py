"""`./gan watch` for real: a watcher subprocess on a tiny pipeline, spans written while it runs.

Checks: each span is handled exactly once (one arriving during a run is picked up by the next
poll), a second watcher on the same pipeline exits at once naming the first, SIGTERM stops an idle
watcher cleanly, and a restarted watcher does not run a handled span again.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from test_faults import GAN, REPO, GanRun, write_config, write_span

TINY = ["--set", "training.train_steps=20", "--set", "training.checkpoint_every_steps=20",
        "--set", "training.sample_every_steps=0", "--set", "evaluation.cas_seeds=1", "--set", "evaluation.cas_epochs=1"]


def watch(config_path: str, *extra: str) -> GanRun:
    return GanRun(config_path, "--interval_s", "1", "--settle_s", "0.5", *TINY, *extra, command="watch")


def handled(root) -> dict:
    path = root / "out" / "watch_state.json"
    return json.loads(path.read_text()) if path.exists() else {"handled_span": 0, "runs": []}


def wait_until(predicate, timeout_s: float, what: str, run: GanRun) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        assert run.proc.poll() is None, f"the watcher exited while waiting for {what}:\n{run.output()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{run.output()[-3000:]}")


def test_watch_runs_each_new_span_once(tmp_path):
    config_path = write_config(tmp_path, name="gan-watch")
    write_span(str(tmp_path / "data"), 1, per_class=30)  # ~60 held out: two halves of ~30 for the floor
    watcher = watch(config_path)
    try:
        wait_until(lambda: watcher.wait_for("new span-1", 0.1), 300, "the run of span 1", watcher)
        write_span(str(tmp_path / "data"), 2, per_class=30)  # arrives during the run of span 1

        second = watch(config_path)
        assert second.wait() == 2
        assert "another watcher (pid " in second.output() and "is watching this pipeline" in second.output()

        wait_until(lambda: handled(tmp_path)["handled_span"] == 2, 600, "span 2 to be handled", watcher)
        assert [r["span"] for r in handled(tmp_path)["runs"]] == [1, 2]
        watcher.proc.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout_s=30) == 0 and "[watch] stopped" in watcher.output()
    finally:
        watcher.kill()

    again = watch(config_path, "--once")  # a restarted watcher: nothing new, nothing run
    assert again.wait() == 0
    assert "running the pipeline" not in again.output()
    assert [r["span"] for r in handled(tmp_path)["runs"]] == [1, 2]


def test_a_dangling_symlink_or_a_vanishing_file_does_not_stop_the_settle_check(tmp_path, monkeypatch):
    """A span folder with a dangling symlink is measured by the link's own times; a file that
    vanishes while the span is walked (something is moving files) means 'not settled' (0 s)."""
    from tfx_gan.pipeline.watch import seconds_since_change

    span = tmp_path / "span-2" / "cats"
    span.mkdir(parents=True)
    (span / "1.png").write_bytes(b"x")
    os.symlink(tmp_path / "nowhere.png", span / "2.png")
    now = time.time() + 100
    assert 99 <= seconds_since_change(str(tmp_path / "span-2"), now=now) <= 101

    real_lstat = os.lstat

    def vanishing(path, *args, **kwargs):
        if str(path).endswith("1.png"):
            raise FileNotFoundError(path)
        return real_lstat(path, *args, **kwargs)
    monkeypatch.setattr(os, "lstat", vanishing)
    assert seconds_since_change(str(tmp_path / "span-2"), now=now) == 0.0

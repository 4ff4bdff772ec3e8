"""``./gan watch``: retrain when new data arrives, without Kubeflow.

Polls ``data.input_base`` every ``--interval_s`` seconds. When a span newer than the last one it
handled is there and its files have not changed for ``--settle_s`` seconds (a copy in progress
is not ingested half-written), it runs the pipeline once (which ingests the newest span, or the
window ``data.spans`` selects) and records the span as handled in ``<output_dir>/watch_state.json``,
whatever the run decided: pushed, not blessed, or stopped by validation (a bad span is reported
once, not retried every poll; fix it by adding a new span). Any other failure is retried at the
next polls, MAX_ATTEMPTS times in all, then recorded as failed. Spans that arrive during a run are
picked up by the next poll; several spans that arrive together are handled by one run.

One watcher per pipeline: it holds ``<output_dir>/.watch.lock``, so a second watcher on the same
pipeline exits at once naming the first, and the state file keeps a restarted watcher from
running a span again. SIGTERM or Ctrl-C while waiting stops at once; during a run, the watcher
stops after it (a second signal stops at once: a killed run resumes from its checkpoint).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import time
from tfx_gan.common.validation_gate import DataValidationError
from tfx_gan.data.ingest import IngestionError
from tfx_gan.pipeline.local_runner import PipelineBusyError, exclusive_lock, run_pipeline
from tfx_gan.pipeline.run import add_arguments as add_run_arguments
from tfx_gan.pipeline.run import config_from_args

STATE_FILENAME = "watch_state.json"
MAX_ATTEMPTS = 3
WATCH_LOCK_FILENAME = ".watch.lock"
_SPAN_RE = re.compile(r"^span-(\d+)$")


def newest_span(input_base: str) -> int | None:
    spans = [int(m.group(1)) for m in map(_SPAN_RE.match, os.listdir(input_base)) if m] \
        if os.path.isdir(input_base) else []
    return max(spans, default=None)


def seconds_since_change(span_dir: str, now: float | None = None) -> float:
    """Seconds since anything under ``span_dir`` last changed (mtime or ctime); 0 when a file
    vanished while it was being looked at (something is moving files: not settled)."""
    latest = 0.0
    now = time.time() if now is None else now
    for directory, _, files in os.walk(span_dir):
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            try:
                info = os.lstat(path)  # the link itself: a dangling symlink has no target to stat
            except FileNotFoundError:
                return 0.0
            latest = max(latest, info.st_mtime, info.st_ctime)
    return now - latest


def read_state(output_dir: str) -> dict:
    path = os.path.join(output_dir, STATE_FILENAME)
    if not os.path.exists(path):
        return {"handled_span": 0, "runs": []}
    with open(path) as f:
        return json.load(f)


def write_state(output_dir: str, state: dict) -> None:
    path = os.path.join(output_dir, STATE_FILENAME)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=2)
    os.replace(path + ".tmp", path)


class Watcher:
    def __init__(self, config, interval_s: float, settle_s: float, once: bool = False, log=print):
        self.config, self.interval_s, self.settle_s, self.once, self.log = config, interval_s, settle_s, once, log
        self.stopping = False
        self.running = False

    def request_stop(self, signum, _frame) -> None:
        if self.running and self.stopping:
            raise SystemExit(128 + signum)  # the second signal during a run: stop now
        if self.running:
            self.log(f"[watch] {signal.Signals(signum).name}: stopping after the current run (again to stop now)")
        self.stopping = True

    def poll(self) -> bool:
        """Runs the pipeline if a new, settled span is there; returns whether it ran."""
        state = read_state(self.config.output_dir)
        span = newest_span(self.config.data.input_base)
        if span is None or span <= state["handled_span"]:
            return False
        span_dir = os.path.join(self.config.data.input_base, f"span-{span}")
        if seconds_since_change(span_dir) < self.settle_s:
            self.log(f"[watch] span-{span} is still changing; waiting for it to settle ({self.settle_s:g} s)")
            return False
        self.log(f"[watch] new span-{span} (last handled: {state['handled_span'] or 'none'}): running the pipeline")
        started = time.time()
        self.running = True
        try:
            # Pinned to the span that settled: a newer one still being copied is not read.
            summary = run_pipeline(self.config, newest_span=span)
            outcome = summary.get("reason", "finished")
        except PipelineBusyError as e:  # a manual ./gan run holds the pipeline: try again next poll
            self.log(f"[watch] {e}")
            return False
        except (IngestionError, DataValidationError) as e:
            outcome = f"stopped: {type(e).__name__}: {e}"
        except Exception as e:  # a failure of the run itself: retried, then recorded
            attempts = state.setdefault("attempts", {}).get(str(span), 0) + 1
            state["attempts"][str(span)] = attempts
            outcome = f"failed ({attempts} of {MAX_ATTEMPTS} attempts): {type(e).__name__}: {e}"
            if attempts < MAX_ATTEMPTS:
                write_state(self.config.output_dir, state)
                self.log(f"[watch] span-{span}: {outcome}; retrying at the next poll")
                return True
        finally:
            self.running = False
        state["handled_span"] = span
        state["runs"].append({"span": span, "started": started, "seconds": round(time.time() - started, 1),
                              "outcome": outcome})
        write_state(self.config.output_dir, state)
        self.log(f"[watch] span-{span}: {outcome}")
        return True

    def run(self) -> int:

        os.makedirs(self.config.output_dir, exist_ok=True)
        try:
            with exclusive_lock(os.path.join(self.config.output_dir, WATCH_LOCK_FILENAME),
                                "another watcher (pid {holder}) is watching this pipeline (lock {path})"):
                self.log(f"[watch] watching {self.config.data.input_base} every {self.interval_s:g} s "
                         f"(pipeline {self.config.pipeline_name}, state in {self.config.output_dir})")
                while not self.stopping:
                    self.poll()
                    if self.once:
                        break
                    deadline = time.monotonic() + self.interval_s
                    while not self.stopping and time.monotonic() < deadline:
                        time.sleep(min(0.2, self.interval_s))
        except PipelineBusyError as e:
            self.log(f"error: {e}")
            return 2
        self.log("[watch] stopped")
        return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:

    add_run_arguments(parser)
    parser.add_argument("--interval_s", type=float, default=60.0, help="seconds between polls (default: %(default)s)")
    parser.add_argument("--settle_s", type=float, default=10.0,
                        help="a span must be unchanged this long before it is ingested (default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="poll once and exit (for cron / systemd timers)")


def run(args: argparse.Namespace) -> int:

    config = config_from_args(args)
    if config is None:
        return 2
    watcher = Watcher(config, args.interval_s, args.settle_s, args.once, log=lambda line: print(line, flush=True))
    signal.signal(signal.SIGTERM, watcher.request_stop)
    signal.signal(signal.SIGINT, watcher.request_stop)
    return watcher.run()

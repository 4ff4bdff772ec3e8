"""Runs the pipeline locally: LocalDagRunner, SQLite metadata, caching on (from the config).

Before anything runs: the input span exists, the output and push folders are writable, and no
other run of this pipeline holds its output folder (one lock per output_dir: two runs at once
would train into the same checkpoint folder).
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import time
from contextlib import contextmanager

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from tfx_gan.common.layout import find_latest_usable
from tfx_gan.common.options import ConfigError
from tfx_gan.pipeline.config import PipelineConfig, check_input_data
from tfx_gan.pipeline.pipeline import create_pipeline

LOCK_FILENAME = ".pipeline.lock"


class PipelineBusyError(ConfigError):
    """Another run of the same pipeline (same output_dir) is in progress."""


def run_pipeline(config: PipelineConfig, newest_span: int | None = None) -> dict:
    """Runs the pipeline (ending at span ``newest_span`` when given, else at the newest there) and
    returns a summary read back from ML Metadata (see ``summarize``)."""
    check_input_data(config)
    check_writable_dirs(config)
    with pipeline_lock(config.output_dir):
        pipeline = create_pipeline(
            config, tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
            newest_span=newest_span)
        started = time.time()
        tfx.orchestration.LocalDagRunner().run(pipeline)
        return summarize(config, since=started)


def check_writable_dirs(config: PipelineConfig) -> None:
    """output_dir and push_destination must be (or become) writable folders: found out now, not
    after an hour of training. A remote push_destination (gs://, s3://) is checked by Pusher."""
    if "://" in config.output_dir:
        raise ConfigError(f"output_dir: {config.output_dir} is remote; the local runner needs a local folder "
                          "(its SQLite metadata and lock live there)")
    for key, path in (("output_dir", config.output_dir), ("push_destination", config.push_destination)):
        if "://" in path:
            continue
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError(f"{key}: {path} is a file, not a folder")
        try:
            os.makedirs(path, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as e:
            raise ConfigError(f"{key}: cannot write to {path}: {e.strerror or e}") from None


@contextmanager
def pipeline_lock(output_dir: str):
    """Holds an exclusive lock on ``<output_dir>/.pipeline.lock`` for the whole run; a second run
    fails at once, naming the process that holds it."""
    with exclusive_lock(os.path.join(output_dir, LOCK_FILENAME),
                        "another run of this pipeline is in progress (pid {holder}, lock {path}); "
                        "wait for it to finish, or give this run another output_dir"):
        yield


@contextmanager
def exclusive_lock(path: str, busy_message: str):
    """An exclusive ``flock`` on ``path`` holding the holder's pid; PipelineBusyError(busy_message,
    formatted with ``holder`` and ``path``) when another process holds it. The kernel drops the
    lock when the holder dies, so a killed process never leaves a stale lock."""
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            f.seek(0)
            raise PipelineBusyError(busy_message.format(holder=f.read().strip() or "unknown", path=path)) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()


def summarize(config: PipelineConfig, since: float = 0.0) -> dict:
    """What the last run did, from ML Metadata: per component, its state and wall time, plus where
    the pushed model, the metrics and the sample grid are. The run is the newest pipeline_run
    context created after ``since`` (the pipeline lock rules out a concurrent one)."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
    runs = [c for c in store.get_contexts_by_type("pipeline_run") if c.create_time_since_epoch >= int(since * 1000)]
    components, outputs, synthetic = [], {}, None
    if runs:
        run = max(runs, key=lambda c: c.create_time_since_epoch)
        executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
        nodes = {}
        for execution in executions:
            node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), "")
            nodes[execution.id] = node.split(".", 1)[-1]
            components.append({
                "component": nodes[execution.id],
                "state": metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                "seconds": round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1),
            })
        events = store.get_events_by_execution_ids([e.id for e in executions])
        output_ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        synthetic_ids = {e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT
                         and nodes.get(e.execution_id) == "SyntheticExamplesGen"}
        for artifact in sorted(store.get_artifacts_by_id(output_ids), key=lambda a: a.id):
            if artifact.id in synthetic_ids:
                synthetic = artifact
                continue
            outputs[artifact.type] = artifact  # the newest of each type
    summary = {"components": components, "push_destination": config.push_destination,
               "warm_started_from": None}
    model = outputs.get("Model")
    if model is not None and "warm_started_from" in model.custom_properties:
        summary["warm_started_from"] = model.custom_properties["warm_started_from"].string_value or None
    evaluation = outputs.get("ModelEvaluation")
    if evaluation is not None:
        summary["metrics_json"] = os.path.join(evaluation.uri, "metrics.json")
        samples_png = os.path.join(evaluation.uri, "samples.png")
        summary["samples_png"] = samples_png if os.path.exists(samples_png) else None  # none when not trained
        if os.path.exists(summary["metrics_json"]):
            with open(summary["metrics_json"]) as f:
                metrics = json.load(f)
            summary.update(blessed=metrics["blessed"], reason=metrics["reason"])
            if metrics.get("candidate"):  # absent when the trainer found nothing new to train on
                summary.update(fid=metrics["candidate"]["fid"], fid_floor=metrics["candidate"]["fid_floor"])
    pushed = outputs.get("PushedModel")
    if pushed is not None:
        summary["pushed_model_artifact"] = pushed.uri
    if synthetic is not None:
        summary["synthetic_examples"] = synthetic.uri
    newest = find_latest_usable(config.push_destination)
    summary["serving_version"] = newest[1] if newest else None
    return summary

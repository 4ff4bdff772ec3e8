"""Runs the pipeline locally: LocalDagRunner, SQLite metadata, caching on (from the config)."""
from __future__ import annotations

import json
import os
import sqlite3
import time

from tfx import v1 as tfx

from pipeline.config import PipelineConfig, check_input_data
from pipeline.pipeline import create_pipeline


def run_pipeline(config: PipelineConfig) -> dict:
    """Runs the pipeline and returns a summary read back from ML Metadata (see ``summarize``)."""
    check_input_data(config)
    os.makedirs(config.output_dir, exist_ok=True)
    started = time.time()
    pipeline = create_pipeline(
        config, tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path))
    tfx.orchestration.LocalDagRunner().run(pipeline)
    return summarize(config, since=started)


def summarize(config: PipelineConfig, since: float = 0.0) -> dict:
    """What the last run did, from the metadata DB: per component, its state and wall time, plus
    where the pushed model, the metrics and the sample grid are."""
    db = sqlite3.connect(config.metadata_path)
    try:
        # Each execution is associated with its node's context, named "<pipeline>.<node id>".
        rows = db.execute(
            """SELECT c.name, e.last_known_state, e.create_time_since_epoch, e.last_update_time_since_epoch
               FROM Execution e
               JOIN Association a ON a.execution_id = e.id
               JOIN Context c ON c.id = a.context_id
               JOIN Type t ON t.id = c.type_id AND t.name = 'node'
               WHERE e.create_time_since_epoch >= ? ORDER BY e.id""", (int(since * 1000),)).fetchall()
        states = {1: "NEW", 2: "RUNNING", 3: "COMPLETE", 4: "FAILED", 5: "CACHED", 6: "CANCELED"}
        components = [{"component": node.split(".", 1)[1], "state": states.get(state, str(state)),
                       "seconds": round((end - start) / 1000.0, 1)}
                      for node, state, start, end in rows]
        newest = db.execute(
            """SELECT t.name, a.uri, a.id FROM Artifact a JOIN Type t ON t.id = a.type_id
               WHERE a.id IN (SELECT MAX(id) FROM Artifact GROUP BY type_id)""").fetchall()
        uris = {name: uri for name, uri, _ in newest}
        model_id = {name: artifact_id for name, _, artifact_id in newest}.get("Model")
        warm = db.execute(
            """SELECT string_value FROM ArtifactProperty
               WHERE artifact_id = ? AND name = 'warm_started_from' AND is_custom_property = 1""",
            (model_id,)).fetchone() if model_id is not None else None
    finally:
        db.close()
    summary = {"components": components, "push_destination": config.push_destination,
               "warm_started_from": (warm[0] or None) if warm else None}
    evaluation = uris.get("ModelEvaluation")
    if evaluation:
        summary["metrics_json"] = os.path.join(evaluation, "metrics.json")
        summary["samples_png"] = os.path.join(evaluation, "samples.png")
        if os.path.exists(summary["metrics_json"]):
            with open(summary["metrics_json"]) as f:
                metrics = json.load(f)
            summary.update(blessed=metrics["blessed"], reason=metrics["reason"], fid=metrics["candidate"]["fid"],
                           fid_floor=metrics["candidate"]["fid_floor"])
    pushed = uris.get("PushedModel")
    if pushed:
        summary["pushed_model_artifact"] = pushed
    from components.layout import find_latest_complete

    newest = find_latest_complete(config.push_destination)
    summary["serving_version"] = newest[1] if newest else None
    return summary

"""``./gan runs``: the pipeline's history, newest first, from ML Metadata and the push directory.

ML Metadata (the pipeline's SQLite store, read through ml_metadata's API) knows every pipeline run:
its id (the ``pipeline_run`` context's name), the components it executed with their states, and the
artifacts each read and wrote. Each GanEvaluator run also writes
``<push_destination>/.runs/<time>-<model id>.json`` (what it trained on, its parent version,
metrics, decision) and Pusher adds the version it pushed, so the history also lives with the
models: ``--push_destination`` alone lists those records wherever the push directory is (a copy,
a bucket). ``pipeline/report.py`` reads runs through ``read_runs`` too.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from tfx_gan.common import layout
from tfx_gan.common.options import ConfigError

PIPELINE_RUN = "pipeline_run"  # the context type TFX groups one run's executions under


def push_destination_from(args: argparse.Namespace) -> str:
    """--push_destination, or the push_destination of --config (the default config's)."""
    if args.push_destination:
        return args.push_destination
    from tfx_gan.pipeline.config import load_config  # TensorFlow: not for --help

    return load_config(args.config).push_destination


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    from tfx_gan.pipeline.config import DEFAULT_CONFIG  # TensorFlow: not for --help

    parser.add_argument("--config", default=DEFAULT_CONFIG, help="whose push_destination (default: %(default)s)")
    parser.add_argument("--push_dir", "--push_destination", dest="push_destination", default=None,
                        help="a push directory (overrides --config): list its run records only, without ML Metadata")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_push_arguments(parser)
    parser.add_argument("--limit", type=int, default=20, help="newest N runs (default: %(default)s)")


# --------------------------------------------------------------------------- ML Metadata
@dataclasses.dataclass
class ComponentRun:
    """One component's execution in a pipeline run, with the artifacts it read and wrote (by key)."""
    component: str
    state: str                       # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    properties: dict                 # the execution's properties (the component's parameters)
    inputs: dict                     # key -> [Artifact]
    outputs: dict                    # key -> [Artifact]


@dataclasses.dataclass
class PipelineRun:
    run_id: str                      # the pipeline_run context's name (a timestamp)
    started: float                   # seconds since the epoch
    components: list[ComponentRun]
    not_run: list[str]               # the pipeline's components that have no execution in this run

    def component(self, name: str) -> ComponentRun | None:
        return next((c for c in self.components if c.component == name), None)

    def output(self, component: str, key: str):
        """The artifact ``component`` wrote under ``key`` in this run (cached ones included), or None."""
        found = self.component(component)
        artifacts = found.outputs.get(key) if found else None
        return artifacts[-1] if artifacts else None

    @property
    def stopped_at(self) -> str | None:
        """The first component that did not finish, or None when every one did."""
        for c in self.components:
            if c.state not in ("COMPLETE", "CACHED"):
                return c.component
        return self.not_run[0] if self.not_run else None


def property_value(value):
    """An MLMD property's Python value (string, int, double or struct)."""
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


def artifact_property(artifact, name: str, default=None):
    if artifact is None or name not in artifact.custom_properties:
        return default
    return property_value(artifact.custom_properties[name])


def open_store(metadata_path: str):
    """The pipeline's ML Metadata store (SQLite); FileNotFoundError when no run wrote it yet (MLMD
    would otherwise create an empty one)."""
    if not os.path.isfile(metadata_path):
        raise FileNotFoundError(metadata_path)
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def read_runs(store, run_ids: list[str] | None = None) -> list[PipelineRun]:
    """Pipeline runs, newest first (only ``run_ids`` when given): each component's execution,
    state, wall time, parameters, input and output artifacts, in execution order."""
    from ml_metadata.proto import metadata_store_pb2

    contexts = sorted(store.get_contexts_by_type(PIPELINE_RUN), key=lambda c: c.create_time_since_epoch, reverse=True)
    if run_ids is not None:
        contexts = [c for c in contexts if c.name in run_ids]
    pipeline_nodes = [c.name.split(".", 1)[-1] for c in sorted(store.get_contexts_by_type("node"), key=lambda c: c.id)]
    runs = []
    for context in contexts:
        executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
        events = store.get_events_by_execution_ids([e.id for e in executions]) if executions else []
        artifacts = {a.id: a for a in store.get_artifacts_by_id(sorted({e.artifact_id for e in events}))}
        components = []
        for execution in executions:
            node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type == "node"), "")
            inputs, outputs = {}, {}
            for event in (e for e in events if e.execution_id == execution.id):
                key = next((s.key for s in event.path.steps if s.HasField("key")), "")
                side = outputs if event.type == metadata_store_pb2.Event.OUTPUT else inputs
                if event.artifact_id in artifacts:
                    side.setdefault(key, []).append(artifacts[event.artifact_id])
            components.append(ComponentRun(
                component=node.split(".", 1)[-1],
                state=metadata_store_pb2.Execution.State.Name(execution.last_known_state),
                seconds=round((execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1),
                properties={k: property_value(v) for k, v in execution.custom_properties.items()},
                inputs=inputs, outputs=outputs))
        ran = {c.component for c in components}
        runs.append(PipelineRun(run_id=context.name, started=context.create_time_since_epoch / 1000,
                                components=components, not_run=[n for n in pipeline_nodes if n not in ran]))
    return runs


def run_outcome(run: PipelineRun) -> dict:
    """What a run decided, from its artifacts' properties: spans, FID, blessing, reason, version pushed."""
    examples = run.output("ImageExampleGen", "examples")
    blessing = run.output("GanEvaluator", "blessing")
    pushed = run.output("Pusher", "pushed_model")
    spans = artifact_property(examples, "spans")
    outcome = {
        "spans": json.loads(spans) if spans else None,
        "fid": artifact_property(blessing, "fid"),
        "blessed": bool(artifact_property(blessing, "blessed")) if blessing is not None else None,
        "reason": artifact_property(blessing, "reason"),
        "pushed_version": artifact_property(pushed, "pushed_version") if artifact_property(pushed, "pushed") else None,
        "run_record": artifact_property(blessing, "run_record"),
        "lineage": json.loads(artifact_property(blessing, "lineage") or "null"),
    }
    if blessing is None and run.stopped_at:
        failed = run.component(run.stopped_at)
        outcome["reason"] = (f"stopped at {run.stopped_at} ({failed.state})" if failed
                             else f"stopped before {run.stopped_at}")
    return outcome


# --------------------------------------------------------------------------- ./gan runs
def format_run(record: dict) -> str:
    metrics = record.get("metrics") or {}
    ratios = " ".join(f"{k.removesuffix('_fid_over_floor')} {v:.2f}x" for k, v in metrics.items()
                      if k.endswith("_fid_over_floor"))
    pushed = f"pushed {record['pushed_version']}" if record.get("pushed_version") else "not pushed"
    spans = ",".join(map(str, record.get("spans") or [])) or "-"
    parent = record.get("parent_version") or "-"
    return (f"{record['time']}  spans {spans:<6} data {str(record.get('data_fingerprint'))[:8]}  "
            f"config {str(record.get('config_hash'))[:8]}  code {str(record.get('code_version'))[:8]}  "
            f"parent {parent}  {pushed:<22} {ratios}\n    {record.get('reason', '')}")


def format_pipeline_run(run: PipelineRun, record: dict | None) -> str:
    """A pipeline run from ML Metadata, with its push-directory record's lineage when it has one."""
    outcome = run_outcome(run)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started))
    states = " ".join(f"{c.component}:{c.state}" for c in run.components)
    if run.not_run:
        states += " | not run: " + " ".join(run.not_run)
    lines = [f"{run.run_id}  {when}", f"    components: {states}"]
    if record is not None:
        lines.append("    " + format_run(record))
    else:
        spans = ",".join(map(str, outcome["spans"] or [])) or "-"
        fid = f"FID {outcome['fid']:.4g}  " if outcome["fid"] is not None else ""
        pushed = f"pushed {outcome['pushed_version']}" if outcome["pushed_version"] else "not pushed"
        lines.append(f"    spans {spans}  {fid}{pushed}")
        if outcome["reason"]:
            lines.append(f"    {outcome['reason']}")
    return "\n".join(lines)


def run_record_of(run: PipelineRun, records_by_model: dict) -> dict | None:
    """The push directory's record of this run: the one its blessing names, else the one of its model."""
    outcome = run_outcome(run)
    model = run.output("GanTrainer", "model")
    if outcome["run_record"] and os.path.isfile(outcome["run_record"]):
        with open(outcome["run_record"]) as f:
            return json.load(f)
    return records_by_model.get(model.uri) if model is not None and outcome["blessed"] is not None else None


def run(args: argparse.Namespace) -> int:
    config = None
    if not args.push_destination:
        from tfx_gan.pipeline.config import load_config  # TensorFlow: not for --help

        try:
            config = load_config(args.config)
        except ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return 2
    base = args.push_destination or config.push_destination
    records = layout.read_run_records(base) if layout.exists(base) else []
    if config is None or not os.path.isfile(config.metadata_path):
        # No ML Metadata here (a copied push directory, or no run yet): the push directory's records.
        if not layout.exists(base):
            where = f" and no ML Metadata at {config.metadata_path}" if config else ""
            print(f"error: push directory {base} does not exist{where} (no run has pushed there yet; "
                  "./gan run first)", file=sys.stderr)
            return 2
        serving = layout.find_latest_usable(base, log=lambda _: None)
        print(f"{base}: {len(layout.list_versions(base))} version(s); serving {serving[0] if serving else 'none'}")
        if not records:
            print("no run records yet")
        for record in records[:args.limit]:
            print(format_run(record))
        return 0

    runs = read_runs(open_store(config.metadata_path))
    serving = layout.find_latest_usable(base, log=lambda _: None) if layout.exists(base) else None
    print(f"{config.pipeline_name}: {len(runs)} pipeline run(s) in {config.metadata_path}; "
          f"push directory {base}: serving {serving[0] if serving else 'none'}")
    by_model = {r.get("model"): r for r in reversed(records)}
    for pipeline_run in runs[:args.limit]:
        print(format_pipeline_run(pipeline_run, run_record_of(pipeline_run, by_model)))
    return 0

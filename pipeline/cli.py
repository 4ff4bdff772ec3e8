"""Command line of the project (``./gan <command>``; ``./gan --help`` lists the commands)."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time

# Each command's module is imported only when that command runs: TFX takes ~20 s to import.
COMMANDS = {
    "run": ("pipeline.cli", "the whole TFX pipeline (default config: the bundled digits)"),
    "make-data": ("data.bundled", "write a bundled dataset (digits, photo_patches) as PNG spans under data/"),
    "make-schema": ("data.schema", "write a curated TFDV schema (image size, channels, labels) for a span"),
    "compile-kfp": ("kubeflow.compile", "compile the pipeline for Kubeflow Pipelines (PipelineSpec YAML)"),
    "launch-kfp": ("kubeflow.launcher", "run a compiled spec here as open-source KFP would (before submit-kfp)"),
    "submit-kfp": ("kubeflow.submit", "submit the compiled pipeline to KFP, once or on a cron schedule"),
    "watch": ("pipeline.watch", "run the pipeline whenever a new span arrives (polls data.input_base)"),
    "report": ("pipeline.report", "one self-contained HTML page per pipeline run: data, training, evaluation, lineage"),
    "tensorboard": ("pipeline.tensorboard", "start TensorBoard on a pipeline's training logs"),
    "runs": ("pipeline.history", "the pipeline's runs, newest first: data, parent, metrics, decision, version pushed"),
    "rollback": ("pipeline.rollback", "serve an earlier version again (published as the newest version)"),
    "serve": ("components.serving.server", "serve a push directory over TF Serving's REST API"),
    "generate": ("components.serving.generate", "write generated images from a push directory or a server"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``run``."""
    from pipeline.config import DEFAULT_CONFIG

    parser.add_argument("--config", default=DEFAULT_CONFIG, help="pipeline config YAML (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set training.train_steps=200 (YAML value)")


def config_from_args(args: argparse.Namespace):
    """The config of ``--config`` and ``--set``, or None after printing the one-line error."""
    from components.options import ConfigError
    from pipeline.config import load_config, parse_overrides

    try:
        return load_config(args.config, parse_overrides(args.set))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 2
    from data.bundled import bundled_dataset_at, write_span

    bundled = bundled_dataset_at(config.data.input_base)
    if bundled:  # the bundled datasets are written on first use
        print(f"[run] bundled {bundled}: {write_span(bundled, config.data.input_base)}")

    from components.gan.train import CheckpointWriteError, TrainingDivergedError
    from components.options import ConfigError
    from components.validation_gate import DataValidationError
    from data.ingest import IngestionError
    from pipeline.local_runner import PipelineBusyError, run_pipeline

    started = time.time()
    try:
        summary = run_pipeline(config)
    except PipelineBusyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except (IngestionError, DataValidationError, TrainingDivergedError, CheckpointWriteError) as e:
        # What a user's data, settings or disk caused: one line (the traceback is above it in the log).
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(f"\n[run] finished in {time.time() - started:.0f} s")
    for c in summary["components"]:
        print(f"  {c['component']:<20} {c['state']:<9} {c['seconds']:>7.1f} s")
    if summary.get("warm_started_from"):
        print(f"  warm start:   from {summary['warm_started_from']}")
    if "fid" in summary:
        print(f"  FID {summary['fid']:.3f} (real-vs-real floor {summary['fid_floor']:.3f}); {summary['reason']}")
    elif "reason" in summary:
        print(f"  {summary['reason']}")
    print(f"  metrics:      {summary.get('metrics_json')}")
    print(f"  sample grid:  {summary.get('samples_png')}")
    print(f"  serving now:  {summary.get('serving_version')}")
    with open(os.path.join(config.output_dir, "last_run.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./gan", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("test", help="run the test suite (handled by ./gan itself)")
    argv = sys.argv[1:] if argv is None else argv
    chosen = argv[0] if argv and not argv[0].startswith("-") else "run"
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        if name == chosen:  # import only the chosen command's module
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(func=module.run)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("absl").setLevel(logging.INFO)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``./gan run``: the whole pipeline on a config (the default: the bundled digits), and the
``--config``/``--set`` arguments ``watch`` and ``tensorboard`` share. Light at import (``./gan run
--help`` imports no TensorFlow: tests/test_cli.py); the config and the runner are imported in the
functions that need them."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tfx_gan.common.options import ConfigError, parse_overrides
from tfx_gan.data.bundled import bundled_dataset_at, write_span


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``run`` (and ``watch``). Light: ``./gan run --help`` imports no TensorFlow."""
    parser.add_argument("--config", default=None,
                        help="pipeline config YAML (default: pipeline/configs/digits.yaml, the bundled digits)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set training.train_steps=200 (YAML value)")


def config_from_args(args: argparse.Namespace):
    """The config of ``--config`` and ``--set``, or None after printing the one-line error."""
    from tfx_gan.pipeline.config import DEFAULT_CONFIG, load_config  # TensorFlow: not for --help

    try:
        return load_config(args.config or DEFAULT_CONFIG, parse_overrides(args.set))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config is None:
        return 2
    bundled = bundled_dataset_at(config.data.input_base)
    if bundled:  # the bundled datasets are written on first use
        print(f"[run] bundled {bundled}: {write_span(bundled, config.data.input_base)}")

    from tfx_gan.pipeline.local_runner import run_pipeline  # TFX: not for --help

    started = time.time()
    # Errors a user's data, settings or disk cause reach main(), which prints them as one line.
    summary = run_pipeline(config)
    print(f"\n[run] finished in {time.time() - started:.0f} s")
    for c in summary["components"]:
        print(f"  {c['component']:<20} {c['state']:<9} {c['seconds']:>7.1f} s")
    if summary.get("warm_started_from"):
        print(f"  warm start:   from {summary['warm_started_from']}")
    if "fid" in summary:
        print(f"  FID {summary['fid']:.3f} (real-vs-real floor {summary['fid_floor']:.3f}); {summary['reason']}")
    elif "reason" in summary:
        print(f"  {summary['reason']}")
    for label, key in (("metrics:", "metrics_json"), ("sample grid:", "samples_png")):
        if summary.get(key):  # a run that did not train writes no grid
            print(f"  {label:<13} {summary[key]}")
    print(f"  serving now:  {summary.get('serving_version') or 'nothing yet'}")
    given = getattr(args, "config", None)
    print("  report:       ./gan report" + (f" --config {given}" if given else ""))
    with open(os.path.join(config.output_dir, "last_run.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return 0

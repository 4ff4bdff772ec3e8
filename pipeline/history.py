"""``./gan runs``: the pipeline's history, newest first, from the run records in the push directory.

Each GanEvaluator run writes ``<push_destination>/.runs/<time>-<model id>.json`` (what it trained
on, its parent version, metrics, decision) and Pusher adds the version it pushed, so the history
lives with the models and this command works wherever the push directory is (a copy, a bucket).
"""
from __future__ import annotations

import argparse
import sys


def push_destination_from(args: argparse.Namespace) -> str:
    """--push_destination, or the push_destination of --config (the default config's)."""
    if args.push_destination:
        return args.push_destination
    from pipeline.config import load_config

    return load_config(args.config).push_destination


def add_push_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.config import DEFAULT_CONFIG

    parser.add_argument("--config", default=DEFAULT_CONFIG, help="whose push_destination (default: %(default)s)")
    parser.add_argument("--push_destination", default=None, help="a push directory (overrides --config)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_push_arguments(parser)
    parser.add_argument("--limit", type=int, default=20, help="newest N runs (default: %(default)s)")


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


def run(args: argparse.Namespace) -> int:
    from components import layout

    base = push_destination_from(args)
    if not layout.exists(base):
        print(f"error: push directory {base} does not exist (no run has pushed there yet)", file=sys.stderr)
        return 2
    records = layout.read_run_records(base)
    serving = layout.find_latest_usable(base, log=lambda _: None)
    print(f"{base}: {len(layout.list_versions(base))} version(s); serving {serving[0] if serving else 'none'}")
    if not records:
        print("no run records yet")
    for record in records[:args.limit]:
        print(format_run(record))
    return 0

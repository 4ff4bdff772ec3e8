"""``./gan rollback --to VERSION``: serve an earlier version again, the TF Serving way.

TF Serving (and ``./gan serve``, KServe) serve the newest version in the push directory, so a
rollback publishes a copy of VERSION as a new, newest version (atomically, like Pusher) whose
lineage says which version it restores. Nothing is deleted; the history stays readable with
``./gan runs``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from tfx_gan.pipeline.history import add_push_arguments, push_destination_from
from tfx_gan.common import layout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_push_arguments(parser)
    parser.add_argument("--to", type=int, required=True, metavar="VERSION", help="the version to serve again")


def rollback(base: str, version: int) -> tuple[str, str]:
    """Publishes a copy of ``version`` as the newest version; returns (new version, path)."""

    versions = dict(layout.list_versions(base))
    if version not in versions:
        raise ValueError(f"no version {version} under {base}; versions: {', '.join(map(str, versions)) or 'none'}")
    problem = layout.problem_loading(versions[version])
    if problem:
        raise ValueError(f"version {version} cannot be served: {problem}")
    lineage = dict((layout.read_metadata(versions[version]) or {}).get("lineage") or {})
    lineage.update(rolled_back_from=version, reason=f"rollback to version {version}")
    new_version, path = layout.publish_version(versions[version], base, metadata={"lineage": lineage})
    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    layout.write_run_record(base, f"{started}-rollback", {
        "time": started, **lineage, "blessed": True, "pushed_version": int(new_version)})
    return new_version, path


def run(args: argparse.Namespace) -> int:
    base = push_destination_from(args)
    try:
        new_version, path = rollback(base, args.to)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"version {args.to} is served again as version {new_version} ({os.path.abspath(path)})")
    return 0

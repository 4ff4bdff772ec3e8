"""Submits the compiled pipeline to a Kubeflow Pipelines endpoint, once or on a schedule.

    ./gan submit-kfp --host https://KFP --package outputs/kubeflow/gan-pipeline.yaml --root gs://BUCKET/gan
    ./gan submit-kfp ... --cron "0 0 2 * * *"     # retrain daily at 02:00 (six fields, seconds first)

Scheduled runs pick up new data spans: ImageExampleGen ingests the newest span-<N>/ under the
data root. On open-source KFP the span is resolved when the ExampleGen executor runs; KFP's own
step cache may still reuse an old ExampleGen output, so scheduled runs disable KFP caching
(TFX's own caching still skips what has not changed).
"""
from __future__ import annotations

import argparse
import re


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="KFP API endpoint")
    parser.add_argument("--package", required=True, help="the YAML from ./gan compile-kfp")
    parser.add_argument("--root", required=True, help="the same --root as at compile time (pipeline root)")
    parser.add_argument("--experiment", default="tfx-gan")
    parser.add_argument("--cron", help="six-field cron expression for a recurring run, e.g. '0 0 2 * * *'")
    parser.add_argument("--name", default="gan-pipeline")


def check_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[\d*/,\-?A-Za-z]+", f) for f in fields):
        raise ValueError(f"--cron needs six fields (seconds minutes hours day month weekday), got {expression!r}")
    return expression


def run(args: argparse.Namespace) -> int:
    import kfp

    client = kfp.Client(host=args.host)
    experiment = client.create_experiment(args.experiment)
    pipeline_root = f"{args.root.rstrip('/')}/outputs/kfp-root"
    if args.cron:
        job = client.create_recurring_run(
            experiment_id=experiment.experiment_id, job_name=args.name, cron_expression=check_cron(args.cron),
            pipeline_package_path=args.package, params={}, enable_caching=False,
            max_concurrency=1, no_catchup=True)
        print(f"recurring run: {job.recurring_run_id} ({args.cron})")
    else:
        run_ = client.create_run_from_pipeline_package(
            args.package, arguments={}, run_name=args.name, experiment_name=args.experiment,
            pipeline_root=pipeline_root)
        print(f"run: {run_.run_id}")
    return 0

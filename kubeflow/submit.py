"""Submits the compiled pipeline to a Kubeflow Pipelines v2 endpoint, once or on a schedule.

    ./gan submit-kfp --host https://KFP --package outputs/kubeflow/gan-pipeline.yaml --root gs://BUCKET/gan
    ./gan submit-kfp ... --cron "0 0 2 * * *"     # every day at 02:00 (six fields, seconds first)

Both kinds of run get the same pipeline root, <root>/outputs/kfp-root, where KFP writes the tasks'
outputs (without one, KFP would use the cluster's default root).

Each run ingests the newest span-<N>/ under <root>/data/<pipeline>/: ImageExampleGen resolves the
span when it runs, and the compiled spec never lets KFP's cache answer for it (its cache key is its
parameters and command, the same whatever spans exist). Since that task runs every time, every task
after it gets new input artifacts, hence a new cache key: KFP's cache skips only ImportSchemaGen,
the one task without input artifacts. TFX's own cache, which skips unchanged components under
./gan run, does not apply: it lives in the ML Metadata of TFX's runners, which KFP v2 does not use.
"""
from __future__ import annotations

import argparse
import re
import sys
from tfx_gan.common.options import ConfigError
from tfx_gan.kubeflow.compile import check_root


def kfp_pipeline_root(root: str) -> str:
    """The pipeline root of every run, one-off or recurring."""
    return f"{root.rstrip('/')}/outputs/kfp-root"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080 (port-forwarded)")
    parser.add_argument("--package", required=True, help="the YAML from ./gan compile-kfp")
    parser.add_argument("--root", required=True, help="the same --root as at compile time (gs:// or s3://)")
    parser.add_argument("--experiment", default="tfx-gan", help="KFP experiment the run is filed under (default: %(default)s)")
    parser.add_argument("--cron", help="six-field cron expression for a recurring run, e.g. '0 0 2 * * *'")
    parser.add_argument("--name", default="gan-pipeline", help="display name of the run (default: %(default)s)")


def check_cron(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[\d*/,\-?A-Za-z]+", f) for f in fields):
        raise ValueError(f"--cron needs six fields (seconds minutes hours day month weekday), got {expression!r}")
    return expression


def submit(client, package: str, root: str, experiment: str, name: str, cron: str | None = None) -> str:
    """Creates the run (or, with ``cron``, the recurring run) through a ``kfp.Client``; returns its id."""
    if cron is not None:
        check_cron(cron)
    experiment_id = client.create_experiment(experiment).experiment_id
    if cron is not None:
        job = client.create_recurring_run(
            experiment_id=experiment_id, job_name=name, cron_expression=cron, pipeline_package_path=package,
            pipeline_root=kfp_pipeline_root(root), max_concurrency=1, no_catchup=True)
        return job.recurring_run_id
    return client.create_run_from_pipeline_package(
        package, arguments={}, run_name=name, experiment_id=experiment_id,
        pipeline_root=kfp_pipeline_root(root)).run_id


def check_package(path: str) -> str:
    """The file must be a PipelineSpec YAML (what ./gan compile-kfp writes): found out before connecting."""
    import yaml

    try:
        with open(path) as f:
            spec = yaml.safe_load(f)
    except OSError as e:
        raise ValueError(f"--package: cannot read {path}: {e.strerror or e}; compile it with ./gan compile-kfp") from None
    except yaml.YAMLError as e:
        raise ValueError(f"--package: {path} is not YAML ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(spec, dict) or not {"pipelineInfo", "root"} <= set(spec):
        raise ValueError(f"--package: {path} is not a pipeline spec (no pipelineInfo/root); "
                         "pass the YAML that ./gan compile-kfp wrote")
    return path


def run(args: argparse.Namespace) -> int:

    # Everything that can be checked here is, before connecting: a bad schedule must not leave a
    # half-made experiment behind.
    try:
        if args.cron is not None:
            check_cron(args.cron)
        check_root(args.root)
        check_package(args.package)
    except (ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import kfp
    import kfp_server_api
    import urllib3

    try:
        submitted = submit(kfp.Client(host=args.host), args.package, args.root, args.experiment, args.name, args.cron)
    except urllib3.exceptions.HTTPError as e:
        # "<urllib3...HTTPConnection object at 0x..>: Failed to establish a new connection: [Errno 111] ..."
        reason = re.sub(r"^<[^>]*>: ", "", " ".join(str(getattr(e, "reason", None) or e).split()))
        print(f"error: cannot reach the KFP API at {args.host} ({reason[:300]}); check --host "
              "and that the endpoint is reachable from here (e.g. kubectl port-forward)", file=sys.stderr)
        return 2
    except kfp_server_api.ApiException as e:
        print(f"error: the KFP API at {args.host} answered {e.status} {e.reason}: "
              f"{' '.join(str(e.body or '').split())[:300]}", file=sys.stderr)
        return 2
    print(f"{'recurring run' if args.cron else 'run'}: {submitted}")
    return 0

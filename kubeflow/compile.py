"""Compiles the pipeline for Kubeflow Pipelines v2: a bare PipelineSpec YAML, pipeline spec 2.1.

    ./gan compile-kfp --root gs://BUCKET/gan --image REGISTRY/tfx-gan:TAG [--set kubeflow.trainer_gpu=false]

What the spec holds beyond TFX's own compile, and why:
- schema 2.1 (parameters as ``constant`` with a parameterType): open-source KFP's driver implements
  no other form; 2.0's ``constantValue`` fails there with "param runtime value spec of type
  *pipelinespec.ValueOrRuntimeParameter_ConstantValue not implemented";
- every task runs kubeflow/container_entrypoint.py: TFX's entrypoint plus the input artifact types
  that OSS KFP leaves empty;
- per task: CPU/memory requests and limits, GanTrainer's GPUs (the config's ``kubeflow:`` section),
  and Beam's worker count from the task's CPU request;
- ``kubeflow.trainer_workers: N`` > 1: GanTrainer's training config says N workers and its container
  env (TFX_GAN_WORKER_PODS) the image and per-worker resources of the N - 1 worker pods its pod
  creates as their chief (training/worker_pods.py);
- no KFP caching for ImageExampleGen: KFP's cache key is a task's parameters and command (not the
  files they name), which a new span does not change, so a cached ExampleGen would ignore it.

Paths: data, push destination and outputs go under ``--root`` (gs:// or s3://: TFX reads artifacts
through tf.io.gfile); the curated schema is read from the image (kubeflow/Dockerfile copies it to
/opt/tfx-gan). The pipeline has no Resolver node: OSS KFP cannot run resolver executors ("resolver
not implemented yet"), so GanTrainer and GanEvaluator find the serving generator themselves.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys

from typing import TYPE_CHECKING

import yaml

from tfx_gan.common.options import ConfigError, parse_overrides
from tfx_gan.training.worker_pods import WORKER_PODS_ENV, pool_settings

if TYPE_CHECKING:  # tfx_gan.pipeline.config imports TensorFlow: ./gan compile-kfp --help must not wait for it
    from tfx_gan.pipeline.config import TaskResources

IMAGE_ROOT = "/opt/tfx-gan"  # where kubeflow/Dockerfile puts the code and the schemas
CONTAINER_COMMAND = ["python", "-m", "tfx_gan.kubeflow.container_entrypoint"]
SPEC_VERSIONS = ("2.1", "2.0")  # 2.0 is TFX's default; only 2.1 runs on open-source KFP
DEFAULT_OUT = os.path.join("outputs", "kubeflow", "gan-pipeline.yaml")  # in the working directory


def cluster_config(config_path: str, root: str, overrides: dict | None = None):
    """The config with its paths moved under ``root`` and the schema read from the image."""
    from tfx_gan.pipeline.config import REPO_ROOT, load_config  # TensorFlow: not for --help

    check_root(root)
    config = load_config(config_path, overrides)
    root = root.rstrip("/")
    schema_dir = os.path.join(REPO_ROOT, "data", "schema")
    relative = os.path.relpath(os.path.realpath(config.data.schema_file), os.path.realpath(REPO_ROOT))
    if not os.path.realpath(config.data.schema_file).startswith(os.path.realpath(schema_dir) + os.sep):
        # The image holds the repository's data/schema/ only (kubeflow/Dockerfile): a schema elsewhere
        # would be a path no task can read.
        raise ConfigError(f"data.schema_file {config.data.schema_file} is not under {schema_dir}, the schemas the "
                          "image carries: copy it to data/schema/<pipeline_name>/schema.pbtxt, point the config "
                          "there and rebuild the image")
    schema_in_image = os.path.join(IMAGE_ROOT, relative)
    workers = config.kubeflow.trainer_workers
    if workers > 1 and config.training.num_workers not in (1, workers):
        raise ConfigError(f"kubeflow.trainer_workers {workers} and training.num_workers "
                          f"{config.training.num_workers} disagree: on Kubeflow set kubeflow.trainer_workers only")
    return dataclasses.replace(
        config,
        training=config.training.replace(num_workers=workers) if workers > 1 else config.training,
        data=dataclasses.replace(config.data, input_base=f"{root}/data/{config.pipeline_name}",
                                 schema_file=schema_in_image),
        push_destination=f"{root}/serving/{config.pipeline_name}",
        output_dir=f"{root}/outputs/{config.pipeline_name}",
    )


def check_root(root: str) -> str:
    if not re.match(r"^(gs|s3)://[^/]", root):
        raise ConfigError(f"--root must be a gs:// or s3:// URI that the cluster can read, got {root!r} (a local "
                          "folder is not one: to run the compiled spec on this machine, compile with a gs:// root "
                          "and run ./gan launch-kfp --local_dir DIR, which maps that root into DIR)")
    return root


def beam_args(resources: TaskResources) -> list[str]:
    """A Beam task runs one worker per requested CPU; with one, in the task's own process (a worker
    process would only import TFX again)."""
    workers = max(1, math.floor(resources.cpu_request))
    mode = "in_memory" if workers == 1 else "multi_processing"
    return [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]


def compile_pipeline(config_path: str, root: str, image: str, out_path: str, overrides: dict | None = None,
                     spec_version: str = "2.1") -> str:
    if spec_version not in SPEC_VERSIONS:
        raise ConfigError(f"spec_version: {spec_version!r} is not one of: {', '.join(SPEC_VERSIONS)}")
    if not out_path.endswith((".yaml", ".yml")):
        raise ConfigError(f"--out must end in .yaml (a bare PipelineSpec, what kfp.Client uploads), got {out_path!r}")
    check_root(root)  # before the ~20 s TFX import
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx import v1 as tfx
    from tfx.components import FileBasedExampleGen
    from tfx.dsl.components.base.base_beam_component import BaseBeamComponent

    # TFX and the pipeline: not for --help (tests/test_cli.py)
    from tfx_gan.components.gan_trainer import GanTrainer
    from tfx_gan.pipeline.pipeline import create_pipeline

    config = cluster_config(config_path, root, overrides)
    pipeline = create_pipeline(config, beam_pipeline_args=[])
    tasks = {component.id: component for component in pipeline.components}
    unknown = sorted(set(config.kubeflow.resources) - set(tasks) - {"default"})
    if unknown:
        raise ConfigError(f"kubeflow.resources: unknown task(s) {', '.join(unknown)}; tasks: {', '.join(tasks)}")
    for task_id, component in tasks.items():
        if isinstance(component, BaseBeamComponent):
            component.with_beam_pipeline_args(beam_args(config.kubeflow.resources_for(task_id)))

    runner_config = tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
        default_image=image, default_commands=CONTAINER_COMMAND, use_pipeline_spec_2_1=spec_version == "2.1")
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(config=runner_config)
    spec = runner.run(pipeline, write_out=False)["pipelineSpec"]

    ContainerSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec
    ResourceSpec = ContainerSpec.ResourceSpec
    for task_id, component in tasks.items():
        task = spec["root"]["dag"]["tasks"][task_id]
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        want = config.kubeflow.resources_for(task_id)
        resources = ResourceSpec(cpu_request=want.cpu_request, cpu_limit=want.cpu_limit,
                                 memory_request=want.memory_request_gb, memory_limit=want.memory_limit_gb)
        if isinstance(component, GanTrainer) and config.kubeflow.trainer_gpu:
            resources.accelerator.type = config.kubeflow.trainer_gpu_type
            resources.accelerator.count = config.kubeflow.trainer_gpu_count
        container = spec["deploymentSpec"]["executors"][label]["container"]
        container["resources"] = json_format.MessageToDict(resources)
        if isinstance(component, GanTrainer) and config.kubeflow.trainer_workers > 1:
            # the chief's pod creates the other workers' pods from this (training/worker_pods.py)
            per_worker = pod_resources(ContainerSpec(resources=resources))
            container.setdefault("env", []).append({"name": WORKER_PODS_ENV, "value": pool_settings(image, per_worker)})
        if isinstance(component, FileBasedExampleGen):
            task["cachingOptions"] = {"enableCache": False}
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # what kfp.Client does with the file

    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n"
                f"# Compiled by ./gan compile-kfp ({spec['sdkVersion']}, pipeline spec {spec['schemaVersion']})\n")
        yaml.safe_dump(spec, f, sort_keys=True)
    return out_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="pipeline config YAML (default: pipeline/configs/digits.yaml, the bundled digits)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set kubeflow.trainer_gpu=false")
    parser.add_argument("--root", required=True, help="gs:// or s3:// URI for data, outputs and the push directory")
    parser.add_argument("--image", required=True, help="container image built from kubeflow/Dockerfile")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="where the PipelineSpec YAML is written (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from tfx_gan.pipeline.config import DEFAULT_CONFIG  # TensorFlow: not for --help

    # ConfigError (bad --root, --out, config) ends as one line in tfx_gan.pipeline.cli.main.
    out = compile_pipeline(args.config or DEFAULT_CONFIG, args.root, args.image, args.out, parse_overrides(args.set))
    print(f"compiled: {out}")
    return 0


def pod_resources(container) -> dict:
    """Requests and limits as KFP 2.5.0's driver writes them into the pod (initPodSpecPatch)."""
    r = container.resources

    def number(value: float) -> str:  # Go's %v of a float64
        return str(int(value)) if float(value).is_integer() else repr(value)

    requests, limits = {}, {}
    if r.cpu_request:
        requests["cpu"] = number(r.cpu_request)
    if r.memory_request:
        requests["memory"] = number(r.memory_request) + "G"
    if r.cpu_limit:
        limits["cpu"] = number(r.cpu_limit)
    if r.memory_limit:
        limits["memory"] = number(r.memory_limit) + "G"
    if r.accelerator.type and r.accelerator.count > 0:
        limits[r.accelerator.type] = str(r.accelerator.count)
    return {"requests": requests, "limits": limits}

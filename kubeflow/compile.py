"""Compiles the pipeline for Kubeflow Pipelines (KFP v2 IR, a bare PipelineSpec YAML).

    ./gan compile-kfp --root gs://BUCKET/gan --image REGISTRY/tfx-gan:TAG

Paths: data, push destination and outputs go under ``--root`` (gs:// or s3://: TFX reads
artifacts through tf.io.gfile, so minio:// does not work); the curated schema is read from the
image (the Dockerfile copies the repository to /opt/tfx-gan). The pipeline has no Resolver node:
open-source KFP cannot run resolver executors, so GanEvaluator finds its baseline in the push
destination itself (the OSS KFP v2 driver answers "resolver not implemented yet").
"""
from __future__ import annotations

import argparse
import dataclasses
import os

from pipeline.config import DEFAULT_CONFIG, REPO_ROOT, load_config

IMAGE_ROOT = "/opt/tfx-gan"  # where kubeflow/Dockerfile puts the repository


def cluster_config(config_path: str, root: str):
    """The local config with its paths moved under ``root`` (and the schema inside the image)."""
    config = load_config(config_path)
    if "://" not in root:
        raise ValueError(f"--root must be a gs:// or s3:// URI that the cluster can read, got {root!r}")
    root = root.rstrip("/")
    schema_in_image = os.path.join(IMAGE_ROOT, os.path.relpath(config.data.schema_file, REPO_ROOT))
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, input_base=f"{root}/data/{config.pipeline_name}",
                                 schema_file=schema_in_image),
        push_destination=f"{root}/serving/{config.pipeline_name}",
        output_dir=f"{root}/outputs/{config.pipeline_name}",
    )


def compile_pipeline(config_path: str, root: str, image: str, out_path: str) -> str:
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    config = cluster_config(config_path, root)
    # Beam runs inside the component's pod; DirectRunner in multi-process mode uses its CPUs.
    pipeline = create_pipeline(config, beam_pipeline_args=["--direct_running_mode=multi_processing",
                                                           "--direct_num_workers=0"])
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(out_path)),
        # A .yaml name makes TFX write a bare PipelineSpec, which kfp.Client accepts (the .json form is a PipelineJob wrapper it rejects).
        output_filename=os.path.basename(out_path),
    )
    runner.run(pipeline)
    return out_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--root", required=True, help="gs:// or s3:// URI for data, outputs and the push directory")
    parser.add_argument("--image", required=True, help="container image built from kubeflow/Dockerfile")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "outputs", "kubeflow", "gan-pipeline.yaml"))


def run(args: argparse.Namespace) -> int:
    print(f"compiled: {compile_pipeline(args.config, args.root, args.image, args.out)}")
    return 0

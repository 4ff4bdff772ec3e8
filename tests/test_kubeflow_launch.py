"""The compiled pipeline, run by kubeflow/emulator/launcher.py under open-source KFP's rules, twice.

Compiled from the default config with a tiny training and evaluation, on ~200 bundled digits in
span-1: every task runs as its own subprocess with the container's command, from the files the
Dockerfile copies; the buckets are local folders. Then span-2 arrives and the spec compiled with
``kubeflow.trainer_workers: 2`` runs: span 2 is ingested, GanTrainer's pod trains as the chief of
a worker pod (run as a local process from the Job manifest the chief writes) and warm-starts from
the generator serving now, and the evaluator compares the new one against it. A 2.0 spec fails in
the driver, before anything runs.

Mocked: only the cluster (the launcher stands in for KFP's driver and launcher, and for Kubernetes'
Job controller and DNS; see its docstring).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfx_gan.common.layout import list_versions
from tfx_gan.data.digits import digits_28x28
from tfx_gan.kubeflow.compile import compile_pipeline
from tfx_gan.kubeflow.emulator.launcher import launch
from tfx_gan.pipeline.config import DEFAULT_CONFIG, REPO_ROOT

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = [pytest.mark.slow, pytest.mark.current_line]

ROOT = "gs://bucket/gan"
TINY = {"training": {"train_steps": 20, "batch_size": 32, "log_every_steps": 10, "checkpoint_every_steps": 10,
                     "sample_every_steps": 10},
        # Twenty steps cannot reach a good FID: blessing is judged on finiteness and the baseline only.
        "evaluation": {"num_samples": 40, "num_draws": 2, "extractors": ["domain_cnn"], "classifier_epochs": 1,
                       "max_fid_over_floor": None, "min_novelty": None, "min_class_share": None,
                       "cas_seeds": 1, "cas_epochs": 1}}
DRIVER_MESSAGE = ("param runtime value spec of type *pipelinespec.ValueOrRuntimeParameter_ConstantValue "
                  "not implemented")


def write_span(local_dir: str, span: int, per_class: int, first: int) -> None:
    images, labels = digits_28x28()
    for label in range(10):
        for index in np.flatnonzero(labels == label)[first:first + per_class]:
            path = os.path.join(local_dir, "gcs", "bucket", "gan", "data", "gan-digits", f"span-{span}", str(label),
                                f"{index:04d}.png")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(images[index]).save(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("kfp-launch")
    local_dir = str(work / "local")
    specs = {version: compile_pipeline(DEFAULT_CONFIG, ROOT, "registry/tfx-gan:test",
                                       str(work / f"gan-pipeline-{version}.yaml"), TINY, version)
             for version in ("2.0", "2.1")}
    specs["2.1-workers"] = compile_pipeline(DEFAULT_CONFIG, ROOT, "registry/tfx-gan:test",
                                            str(work / "gan-pipeline-workers.yaml"),
                                            {**TINY, "kubeflow": {"trainer_workers": 2}}, "2.1")
    write_span(local_dir, 1, per_class=20, first=0)
    return specs, local_dir


def report(result: dict) -> str:
    return "\n".join(f"{name}: {t['state']} {t['seconds']} s fingerprint {t['fingerprint']} {t['error']}"
                     for name, t in result["tasks"].items())


def test_spec_2_0_fails_in_the_oss_driver(setup, tmp_path):
    specs, local_dir = setup
    launched = subprocess.run([sys.executable, "-m", "tfx_gan.kubeflow.emulator.launcher", "--package", specs["2.0"], "--root", ROOT,
                               "--local_dir", str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert launched.returncode == 1, launched.stdout + launched.stderr
    assert ("task ImageExampleGen: failed to resolve inputs: resolving input parameter custom_config: "
            + DRIVER_MESSAGE) in launched.stdout
    (run_dir,) = os.listdir(os.path.join(tmp_path, "runs"))
    with open(os.path.join(tmp_path, "runs", run_dir, "launch.json")) as f:
        tasks = json.load(f)["tasks"]
    assert tasks["ImageExampleGen"]["state"] == "FAILED"
    assert {t["state"] for name, t in tasks.items() if name != "ImageExampleGen"} == {"NOT_RUN"}
    assert not os.path.exists(os.path.join(tmp_path, "gcs"))  # nothing ran, nothing was written


def test_two_launches_ingest_span_2_warm_start_on_two_workers_and_compare(setup):
    specs, local_dir = setup
    serving = os.path.join(local_dir, "gcs", "bucket", "gan", "serving", "gan-digits")

    first = launch(specs["2.1"], ROOT, local_dir, log=print)
    print(report(first))
    assert first["state"] == "SUCCEEDED", report(first)
    assert {t["state"] for t in first["tasks"].values()} == {"SUCCEEDED"}
    ((version_1, _),) = list_versions(serving)
    examples_1 = first["tasks"]["ImageExampleGen"]["outputs"]["examples"]
    assert examples_1["metadata"]["custom:span"] == 1  # resolved by the executor: OSS KFP runs no driver hook
    assert examples_1["uri"].startswith("gs://bucket/gan/outputs/kfp-root/gan-digits/")
    assert first["tasks"]["GanTrainer"]["outputs"]["model"]["metadata"]["warm_started_from"] == ""

    write_span(local_dir, 2, per_class=20, first=20)
    second = launch(specs["2.1-workers"], ROOT, local_dir, log=print)
    print(report(second))
    assert second["state"] == "SUCCEEDED", report(second)
    tasks = second["tasks"]
    # GanTrainer's pod was the chief of two workers, the other one a pod of the Job it created
    with open(tasks["GanTrainer"]["log"]) as f:
        trainer_log = f.read()
    assert "MultiWorkerMirroredStrategy over 2 workers: the chief in this task, 1 worker pod(s) of Job" in trainer_log
    assert "strategy MultiWorkerMirroredStrategy (2 replica(s))" in trainer_log
    pods_dir = os.path.join(os.path.dirname(tasks["GanTrainer"]["log"]), "pods")
    (job_file,) = [f for f in os.listdir(pods_dir) if f.endswith("-job.json")]
    with open(os.path.join(pods_dir, job_file)) as f:
        job = json.load(f)
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 1
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"] == tasks["GanTrainer"]["pod_resources"]
    with open(os.path.join(pods_dir, job_file.replace("-job.json", "-0.log"))) as f:
        assert "training worker 1 of 2" in f.read()
    assert tasks["ImageExampleGen"]["outputs"]["examples"]["metadata"]["custom:span"] == 2
    serving_1 = f"gs://bucket/gan/serving/gan-digits/{version_1}"
    assert tasks["GanTrainer"]["outputs"]["model"]["metadata"]["warm_started_from"] == serving_1
    blessing = tasks["GanEvaluator"]["outputs"]["blessing"]["metadata"]
    assert blessing["baseline_model"] == serving_1 and blessing["baseline_version"] == version_1

    # KFP's cache key cannot see spans: ExampleGen's is the same in both launches (so the spec keeps
    # it from the cache), while everything after it gets new input artifacts and a new key.
    assert tasks["ImageExampleGen"]["fingerprint"] == first["tasks"]["ImageExampleGen"]["fingerprint"]
    assert not tasks["ImageExampleGen"]["cache_enabled"] and tasks["ImageExampleGen"]["state"] == "SUCCEEDED"
    assert tasks["ImportSchemaGen"]["state"] == "CACHED" and tasks["ImportSchemaGen"]["cached_from_run"] == first["run_id"]
    for name in ("StatisticsGen", "GanTrainer", "GanEvaluator", "Pusher"):
        assert tasks[name]["fingerprint"] != first["tasks"][name]["fingerprint"], name

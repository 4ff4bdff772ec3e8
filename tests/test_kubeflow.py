"""Kubeflow: the pipeline compiles to a PipelineSpec that open-source KFP can run.

No Kubeflow cluster can run here, so this checks the compiled spec itself (and submit.py's
argument checks); running it on a cluster is not tested.
"""
import argparse

import pytest
import yaml

from kubeflow import compile as kfp_compile
from kubeflow import submit


def test_compiled_spec_has_no_resolver_and_names_our_executors(tmp_path):
    out = str(tmp_path / "gan-pipeline.yaml")
    kfp_compile.compile_pipeline(kfp_compile.DEFAULT_CONFIG, "gs://bucket/gan", "registry/tfx-gan:1", out)
    with open(out) as f:
        text = f.read()
    spec = yaml.safe_load(text)
    assert spec["pipelineInfo"]["name"] == "gan-digits"
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) >= {"ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator",
                          "GanTrainer", "ReferenceStatsGen", "GanEvaluator", "Pusher"}
    # Open-source KFP v2 rejects resolver executors ("resolver not implemented yet").
    assert "resolver" not in text.lower()
    for executor in ("components.gan_trainer.GanTrainer_Executor",
                     "components.gan_evaluator.GanEvaluator_Executor",
                     "components.reference_stats_gen.ReferenceStatsGen_Executor"):
        assert executor in text
    assert "gs://bucket/gan/serving/gan-digits" in text
    assert "gs://bucket/gan/data/gan-digits" in text
    assert "/opt/tfx-gan/data/schema/digits/schema.pbtxt" in text
    images = {c["container"]["image"] for c in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry/tfx-gan:1"}


def test_local_root_is_refused():
    with pytest.raises(ValueError, match="gs:// or s3://"):
        kfp_compile.cluster_config(kfp_compile.DEFAULT_CONFIG, "/tmp/somewhere")


@pytest.mark.parametrize("expression", ["0 2 * * *", "every day", ""])
def test_cron_needs_six_fields(expression):
    with pytest.raises(ValueError, match="six fields"):
        submit.check_cron(expression)
    assert submit.check_cron("0 0 2 * * *") == "0 0 2 * * *"


def test_submit_arguments():
    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    args = parser.parse_args(["--host", "http://kfp", "--package", "p.yaml", "--root", "gs://b/g", "--cron", "0 0 2 * * *"])
    assert args.cron == "0 0 2 * * *" and args.experiment == "tfx-gan"

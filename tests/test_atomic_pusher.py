"""The pipeline's Pusher: TFX's contract (only blessed models, the PushedModel's properties), whole
versions only, and a spec that Kubeflow runs with this executor.

The executor runs on real artifacts around a real SavedModel (conftest's tiny generator).
"""
from __future__ import annotations

import os

import yaml
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from tfx_gan.common import layout
from tfx_gan.components.atomic_pusher import AtomicPushExecutor


def push(model_dir: str, blessed: int, base: str, pushed_uri: str):
    """Runs AtomicPushExecutor.Do as TFX's launcher would; returns the PushedModel artifact."""
    model = standard_artifacts.Model()
    model.uri = os.path.dirname(model_dir)  # the Model artifact holds Format-Serving/
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = os.path.join(pushed_uri + "-blessing")
    blessing.set_int_custom_property("blessed", blessed)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = pushed_uri
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    AtomicPushExecutor().Do(
        {standard_component_specs.MODEL_KEY: [model], standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_a_blessed_model_becomes_one_whole_version(tiny_serving_model, tmp_path):
    base = str(tmp_path / "serving")
    os.makedirs(base)
    os.mkdir(os.path.join(base, ".123.999999999.partial"))  # left by a killed push (no such process)
    pushed = push(tiny_serving_model, 1, base, str(tmp_path / "pushed"))

    assert pushed.get_int_custom_property("pushed") == 1
    version = pushed.get_string_custom_property("pushed_version")
    destination = pushed.get_string_custom_property("pushed_destination")
    assert destination == os.path.join(base, version)
    assert os.listdir(base) == [version]  # the stale partial is gone, no new one is left
    assert layout.find_latest_usable(base) == (int(version), destination)
    assert os.path.exists(os.path.join(pushed.uri, "saved_model.pb"))  # Pusher's archive copy


def test_a_model_that_is_not_blessed_is_not_pushed(tiny_serving_model, tmp_path):
    base = str(tmp_path / "serving")
    pushed = push(tiny_serving_model, 0, base, str(tmp_path / "pushed"))
    assert pushed.get_int_custom_property("pushed") == 0
    assert layout.list_versions(base) == [] and not os.path.exists(base)


def test_the_kubeflow_spec_runs_this_executor(tmp_path):
    from tfx_gan.kubeflow import compile as kfp_compile
    from tfx_gan.pipeline.config import DEFAULT_CONFIG

    out = str(tmp_path / "spec.yaml")
    kfp_compile.compile_pipeline(DEFAULT_CONFIG, "gs://bucket/gan", "registry/tfx-gan:1", out)
    with open(out) as f:
        spec = yaml.safe_load(f)
    pusher = spec["deploymentSpec"]["executors"]["Pusher_executor"]["container"]
    assert "tfx_gan.components.atomic_pusher.AtomicPushExecutor" in " ".join(pusher["args"])

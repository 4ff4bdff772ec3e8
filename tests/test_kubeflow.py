"""Kubeflow: the compiled spec (pipeline spec 2.1, per-task resources, the container entrypoint),
the parts of the local launcher that mirror open-source KFP (cache key, image staging, the input
types the entrypoint restores), the image's environment, and submit-kfp through the real kfp.Client.

No KFP cluster and no Docker engine can run here. submit-kfp therefore talks to a local HTTP server
that stands in for the KFP API server and records what the real client sends; the image is checked
by what its Dockerfile installs and copies. tests/test_kubeflow_launch.py runs the compiled pipeline.
"""
import argparse
import glob
import http.server
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import threading

import pytest
import yaml

from tfx_gan.common.options import ConfigError
from tfx_gan.kubeflow import compile as kfp_compile
from tfx_gan.kubeflow import submit
from tfx_gan.kubeflow.emulator import image, kfp_cache
from tfx_gan.pipeline.config import DEFAULT_CONFIG, REPO_ROOT, load_config

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

ROOT = "gs://bucket/gan"
TASKS = {"ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DriftValidator", "GanTrainer",
         "ReferenceStatsGen", "GanEvaluator", "Pusher"}
BEAM_TASKS = {"ImageExampleGen", "StatisticsGen", "ReferenceStatsGen"}


def compile_to_dict(tmp_path, overrides=None, spec_version="2.1"):
    out = str(tmp_path / f"gan-pipeline-{spec_version}.yaml")
    kfp_compile.compile_pipeline(DEFAULT_CONFIG, ROOT, "registry/tfx-gan:1", out, overrides, spec_version)
    with open(out) as f:
        text = f.read()
    return text, yaml.safe_load(text)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_to_dict(tmp_path_factory.mktemp("kfp"))


def containers(spec):
    executors = spec["deploymentSpec"]["executors"]
    return {name: executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]]["container"]
            for name, task in spec["root"]["dag"]["tasks"].items()}


def test_compiled_spec_has_no_resolver_and_names_our_executors(compiled):
    text, spec = compiled
    assert spec["pipelineInfo"]["name"] == "gan-digits"
    assert set(spec["root"]["dag"]["tasks"]) == TASKS
    # Open-source KFP v2 rejects resolver executors ("resolver not implemented yet").
    assert "resolver" not in text.lower()
    for executor in ("tfx_gan.components.gan_trainer.GanTrainer_Executor", "tfx_gan.components.gan_evaluator.GanEvaluator_Executor",
                     "tfx_gan.components.reference_stats_gen.ReferenceStatsGen_Executor", "tfx_gan.components.image_example_gen.Executor"):
        assert executor in text
    assert "gs://bucket/gan/serving/gan-digits" in text and "gs://bucket/gan/data/gan-digits" in text
    assert "/opt/tfx-gan/data/schema/digits/schema.pbtxt" in text
    assert {c["image"] for c in containers(spec).values()} == {"registry/tfx-gan:1"}


def test_spec_2_1_passes_every_parameter_as_a_typed_constant(compiled):
    text, spec = compiled
    assert spec["schemaVersion"] == "2.1.0"
    assert "constantValue" not in text  # what OSS KFP's driver refuses
    for name, task in spec["root"]["dag"]["tasks"].items():
        for parameter, value in task["inputs"].get("parameters", {}).items():
            assert set(value) == {"runtimeValue"} and set(value["runtimeValue"]) == {"constant"}, (name, parameter)
    for component in spec["components"].values():
        for parameter in component.get("inputDefinitions", {}).get("parameters", {}).values():
            assert "parameterType" in parameter


def test_every_task_runs_the_container_entrypoint(compiled):
    _, spec = compiled
    for name, container in containers(spec).items():
        assert container["command"] == kfp_compile.CONTAINER_COMMAND, name
        assert "--json_serialized_inputs_spec_args" in container["args"], name  # what the entrypoint reads types from


def test_each_task_requests_its_resources(compiled):
    _, spec = compiled
    for name, container in containers(spec).items():
        resources = container["resources"]
        if name == "GanTrainer":
            assert resources == {"cpuRequest": 4.0, "cpuLimit": 8.0, "memoryRequest": 8.0, "memoryLimit": 16.0,
                                 "accelerator": {"type": "nvidia.com/gpu", "count": "1"}}
        else:
            assert resources == {"cpuRequest": 1.0, "cpuLimit": 2.0, "memoryRequest": 2.0, "memoryLimit": 4.0}, name
        beam = [a for a in container["args"] if a.startswith("--direct_")]
        # One requested CPU: Beam runs in the task's process.
        assert beam == (["--direct_running_mode=in_memory", "--direct_num_workers=1"] if name in BEAM_TASKS else []), name


def test_only_image_example_gen_is_kept_from_kfp_caching(compiled):
    _, spec = compiled
    caching = {name: task.get("cachingOptions", {}).get("enableCache", False)
               for name, task in spec["root"]["dag"]["tasks"].items()}
    assert caching == {name: name != "ImageExampleGen" for name in TASKS}


def test_resources_follow_the_config(tmp_path):
    _, spec = compile_to_dict(tmp_path, {"kubeflow": {
        "trainer_gpu": False,
        "resources": {"default": {"memory_request_gb": 3, "memory_limit_gb": 6},
                      "StatisticsGen": {"cpu_request": 3.5, "cpu_limit": 4}}}})
    by_task = containers(spec)
    assert "accelerator" not in by_task["GanTrainer"]["resources"]
    assert by_task["GanTrainer"]["resources"]["cpuRequest"] == 4.0  # the built-in trainer entry stays
    assert by_task["StatisticsGen"]["resources"] == {"cpuRequest": 3.5, "cpuLimit": 4.0, "memoryRequest": 3.0,
                                                     "memoryLimit": 6.0}
    assert by_task["Pusher"]["resources"]["memoryLimit"] == 6.0
    assert "--direct_running_mode=multi_processing" in by_task["StatisticsGen"]["args"]
    assert "--direct_num_workers=3" in by_task["StatisticsGen"]["args"]


def test_trainer_workers_compile_a_chief_that_creates_worker_pods(tmp_path, compiled):
    from tfx_gan.training.worker_pods import PORT, WORKER_PODS_ENV

    trainer = {"cpu_request": 6, "cpu_limit": 8, "memory_request_gb": 8, "memory_limit_gb": 16}
    _, spec = compile_to_dict(tmp_path, {"kubeflow": {"trainer_workers": 3, "resources": {"GanTrainer": trainer}}})
    trainer = containers(spec)["GanTrainer"]
    (env,) = [e for e in trainer["env"] if e["name"] == WORKER_PODS_ENV]
    # every worker pod: the task's image and what the task's own pod requests, GPU included
    assert json.loads(env["value"]) == {"image": "registry/tfx-gan:1", "port": PORT, "resources": {
        "requests": {"cpu": "6", "memory": "8G"}, "limits": {"cpu": "8", "memory": "16G", "nvidia.com/gpu": "1"}}}
    training = json.loads(spec["root"]["dag"]["tasks"]["GanTrainer"]["inputs"]["parameters"]["training_config"]
                          ["runtimeValue"]["constant"])
    assert training["num_workers"] == 3
    # one worker (the default): no worker pods
    assert all(WORKER_PODS_ENV not in json.dumps(c.get("env", [])) for c in containers(compiled[1]).values())


def test_trainer_workers_and_num_workers_that_disagree_are_named(tmp_path):
    with pytest.raises(ConfigError, match="kubeflow.trainer_workers 2 and training.num_workers 3 disagree"):
        compile_to_dict(tmp_path, {"kubeflow": {"trainer_workers": 2}, "training": {"num_workers": 3}})


def test_unknown_task_in_resources_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"kubeflow.resources: unknown task\(s\) Trainer; tasks: ImageExampleGen"):
        compile_to_dict(tmp_path, {"kubeflow": {"resources": {"Trainer": {"cpu_request": 2}}}})


@pytest.mark.parametrize("kubeflow, message", [
    ({"gpu": True}, r"kubeflow: unknown key\(s\) 'gpu'; valid keys: trainer_gpu"),
    ({"trainer_gpu": "yes"}, "kubeflow.trainer_gpu: expected true or false"),
    ({"trainer_gpu_count": 0}, "kubeflow.trainer_gpu_count: must be >= 1"),
    ({"trainer_workers": 0}, r"kubeflow.trainer_workers: must be in \[1, 64\]"),
    ({"resources": {"GanTrainer": {"cpu_request": 4, "cpu_limit": 2}}},
     "kubeflow.resources.GanTrainer.cpu_limit: 2 is below cpu_request 4"),
    ({"resources": {"default": {"memory_gb": 2}}}, r"kubeflow.resources.default: unknown key\(s\) 'memory_gb'"),
    ({"resources": ["GanTrainer"]}, "kubeflow.resources: expected a mapping of task name"),
    ({"resources": {"Pusher": {"cpu_request": 0}}}, "kubeflow.resources.Pusher.cpu_request: must be > 0"),
    ("big", "kubeflow: expected a mapping"),
])
def test_bad_kubeflow_values_are_named(kubeflow, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides={"kubeflow": kubeflow})


def test_local_root_and_bad_out_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="gs:// or s3://"):
        kfp_compile.cluster_config(DEFAULT_CONFIG, "/tmp/somewhere")
    with pytest.raises(ConfigError, match=r"--out must end in .yaml"):
        kfp_compile.compile_pipeline(DEFAULT_CONFIG, ROOT, "i:1", str(tmp_path / "p.json"))


def test_a_schema_the_image_does_not_carry_is_refused(tmp_path):
    """The image copies data/schema/ only: a schema elsewhere (the own-data recipe's) is named with what to do."""
    schema = tmp_path / "my_schema.pbtxt"
    with open(load_config().data.schema_file) as f:
        schema.write_text(f.read())
    with pytest.raises(ConfigError, match=r"is not under .*data/schema, the schemas the image carries"):
        kfp_compile.cluster_config(DEFAULT_CONFIG, ROOT, {"data": {"schema_file": str(schema)}})
    shipped = kfp_compile.cluster_config(DEFAULT_CONFIG, ROOT)
    assert shipped.data.schema_file == kfp_compile.IMAGE_ROOT + "/data/schema/digits/schema.pbtxt"


# --------------------------------------------------------------------------- submit-kfp
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


class RecordingKfpServer(http.server.ThreadingHTTPServer):
    """Stands in for the KFP API server (none can run here): records each request and answers with
    the smallest body the client accepts."""

    ANSWERS = {("GET", "/apis/v2beta1/healthz"): {"multi_user": False},
               ("GET", "/apis/v2beta1/experiments"): {},
               ("POST", "/apis/v2beta1/experiments"): {"experiment_id": "exp-1", "display_name": "tfx-gan"},
               ("POST", "/apis/v2beta1/runs"): {"run_id": "run-1"},
               ("POST", "/apis/v2beta1/recurringruns"): {"recurring_run_id": "recurring-1"}}

    def __init__(self):
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0]
                server.requests.append((self.command, path, body))
                answer = server.ANSWERS.get((self.command, path))
                self.send_response(200 if answer is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(answer if answer is not None else {"error": "not found"}).encode())

            do_GET = do_POST = _answer

            def log_message(self, *args):
                """Quiet: the test reads the recorded requests, not the server's log."""

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def kfp_server(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no kfp context file from this machine
    server = RecordingKfpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_one_off_and_recurring_runs_get_the_pipeline_root(kfp_server, compiled, tmp_path):
    import kfp

    package = tmp_path / "gan-pipeline.yaml"
    package.write_text(compiled[0])
    client = kfp.Client(host=f"http://127.0.0.1:{kfp_server.server_port}")
    assert submit.submit(client, str(package), ROOT, "tfx-gan", "gan-pipeline") == "run-1"
    assert submit.submit(client, str(package), ROOT, "tfx-gan", "gan-nightly", cron="0 0 2 * * *") == "recurring-1"

    bodies = {path: body for method, path, body in kfp_server.requests if method == "POST"}
    run, recurring = bodies["/apis/v2beta1/runs"], bodies["/apis/v2beta1/recurringruns"]
    for body in (run, recurring):
        assert body["runtime_config"]["pipeline_root"] == "gs://bucket/gan/outputs/kfp-root"
        assert body["experiment_id"] == "exp-1"
        assert body["pipeline_spec"]["schemaVersion"] == "2.1.0"
        tasks = body["pipeline_spec"]["root"]["dag"]["tasks"]
        assert not tasks["ImageExampleGen"]["cachingOptions"].get("enableCache")  # the client drops false values
        assert tasks["GanTrainer"]["cachingOptions"] == {"enableCache": True}
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 2 * * *"
    assert recurring["display_name"] == "gan-nightly" and int(recurring["max_concurrency"]) == 1
    assert recurring["no_catchup"] is True and recurring["mode"] == "ENABLE"
    assert run["display_name"] == "gan-pipeline"


def test_a_five_field_cron_is_refused_before_anything_reaches_the_server(kfp_server, compiled, tmp_path, capsys):
    package = tmp_path / "gan-pipeline.yaml"
    package.write_text(compiled[0])
    parser = argparse.ArgumentParser()
    submit.add_arguments(parser)
    args = parser.parse_args(["--host", f"http://127.0.0.1:{kfp_server.server_port}", "--package", str(package),
                              "--root", ROOT, "--cron", "0 2 * * *"])
    assert submit.run(args) == 2
    assert "--cron needs six fields" in capsys.readouterr().err
    assert kfp_server.requests == []  # no experiment made, nothing half-submitted


# --------------------------------------------------------------------------- what the launcher mirrors
def test_cache_fingerprints_match_the_kfp_backend(tmp_path):
    """The two fingerprints of KFP 2.5.0's backend/src/v2/cacheutils/cache_test.go."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    model_schema = "title: kfp.Model\ntype: object\nproperties:\n  framework:\n    type: string\n  framework_version:\n    type: string\n"
    inputs = json_format.ParseDict({
        "parameterValues": {"message": "Some string value", "num_steps": 5},
        "artifacts": {"dataset_one": {"artifacts": [{"name": "1", "uri": "gs://some-bucket/dataset-one", "metadata": {},
                                                     "type": {"instanceSchema": "title: kfp.Dataset\n"}}]},
                      "dataset_two": {"artifacts": [{"name": "2", "uri": "gs://some-bucket/dataset-two",
                                                     "type": {"schemaTitle": "kfp.Model"}}]}}}, pb.ExecutorInput.Inputs())
    outputs = json_format.ParseDict({
        "parameters": {"output_parameter_one": {"outputFile": "/tmp/1"}, "output_parameter_two": {"outputFile": "/tmp/2"}},
        "artifacts": {"model": {"artifacts": [{"name": "model", "uri": "gs://my-bucket/model",
                                               "type": {"instanceSchema": model_schema}, "metadata": {"name": "model"}}]},
                      "metrics": {"artifacts": [{"name": "metrics", "uri": "gs://my-bucket/metrics",
                                                 "type": {"schemaTitle": "kfp.Metrics"}, "metadata": {"name": "metrics"}}]}},
        "outputFile": "/tmp/kfp_outputs/output_metadata.json"}, pb.ExecutorInput.Outputs())
    key = kfp_cache.cache_key(inputs, outputs, {"output_parameter_one": "STRING", "output_parameter_two": "INT"},
                              ["sh", "ec", "test"], "python:3.9")
    assert kfp_cache.fingerprint(key) == "4e8a5d7d70997b0a35429fcd481af8fcd5b9f58ef4391bdb6ad900fd1c63622b"

    inputs = json_format.ParseDict({"artifacts": {"dataset": {"artifacts": [{"name": "10"}]}}}, pb.ExecutorInput.Inputs())
    outputs = json_format.ParseDict({"parameters": {"output_parameter": {"outputFile": "/tmp/o"}}}, pb.ExecutorInput.Outputs())
    key = kfp_cache.cache_key(inputs, outputs, {"output_parameter": "DOUBLE"}, ["sh", "ec", "run"], "python:3.9")
    assert kfp_cache.fingerprint(key) == "0a4cc1f15cdfad5170e1358518f7128c5278500a670db1b9a3f3d83b93db396e"


@pytest.mark.parametrize("value, encoded", [
    (5.0, "5"), (0.0004, "0.0004"), (1e21, "1e+21"), (1e-7, "1e-7"), (123456789.0, "123456789"), (-2.5, "-2.5"),
    ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'), ({"b": [1, True, None], "a": "é"}, '{"a":"é","b":[1,true,null]}'),
])
def test_go_json_encoding(value, encoded):
    assert kfp_cache.go_json(value) == encoded


def test_entrypoint_restores_the_input_types_oss_kfp_drops():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils
    from tfx.types import standard_artifacts

    from tfx_gan.kubeflow.container_entrypoint import with_input_types

    schema = "title: tfx.Examples\ntype: object\n"
    oss_input = json.dumps({"inputs": {"artifacts": {"examples": {"artifacts": [
        {"name": "7", "uri": "gs://b/examples", "type": {"instanceSchema": ""}, "metadata": {"span": 2}}]}}}})
    inputs_spec = json.dumps({"artifacts": {"examples": {"artifactType": {"instanceSchema": schema}}}})

    def parse(executor_input_json):
        executor_input = json_format.Parse(executor_input_json, pb.ExecutorInput())
        return kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(executor_input.inputs.artifacts)

    with pytest.raises(AttributeError):  # TFX's own entrypoint on what OSS KFP sends (tensorflow/tfx#7768)
        parse(oss_input)
    examples = parse(with_input_types(oss_input, inputs_spec))["examples"][0]
    assert isinstance(examples, standard_artifacts.Examples) and examples.uri == "gs://b/examples"
    assert examples.span == 2


def test_example_gen_resolves_the_newest_span_itself(tmp_path):
    from tfx.types import standard_artifacts

    from tfx_gan.components.image_example_gen import resolve_spans

    for span in (1, 3, 2):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "a.png").write_bytes(b"x" * span)
    exec_properties = {"input_base": str(tmp_path), "output_data_format": 6,
                       "input_config": json.dumps({"splits": [{"name": "images", "pattern": "span-{SPAN}/*"}]})}
    examples = standard_artifacts.Examples()
    resolved = resolve_spans(exec_properties, examples)
    assert json.loads(resolved["input_config"])["splits"][0]["pattern"] == "span-3/*"
    assert resolved["span"] == 3 and resolved["input_fingerprint"].startswith("spans:3,sha256:")
    assert examples.get_int_custom_property("span") == 3
    assert resolve_spans(resolved, standard_artifacts.Examples()) is resolved  # a driver already did it


def test_a_pinned_span_is_read_even_when_a_newer_one_is_there(tmp_path):
    """What `./gan watch` runs: ImageExampleGen(newest_span=2) resolves span 2 (TFX's static range)
    while span-3 is still being copied, and fingerprints span 2's files only."""
    from tfx.types import standard_artifacts

    from tfx_gan.components.image_example_gen import ImageExampleGen, resolve_spans

    for span in (1, 2, 3):
        (tmp_path / f"span-{span}").mkdir()
        (tmp_path / f"span-{span}" / "a.png").write_bytes(b"x" * span)
    from google.protobuf.message import Message
    from tfx.utils import proto_utils

    component = ImageExampleGen(str(tmp_path), newest_span=2)
    # as the executor receives them: protos as JSON text
    exec_properties = {name: proto_utils.proto_to_json(value) if isinstance(value, Message) else value
                       for name, value in component.exec_properties.items() if value is not None}
    resolved = resolve_spans(exec_properties, standard_artifacts.Examples())
    assert resolved["span"] == 2 and json.loads(resolved["input_config"])["splits"][0]["pattern"] == "span-2/*"
    assert resolved["input_fingerprint"].startswith("spans:2,sha256:")


# --------------------------------------------------------------------------- the image
def test_image_staging_takes_only_what_the_dockerfile_copies(tmp_path):
    staged = image.stage(os.path.join(REPO_ROOT, "kubeflow", "Dockerfile"), REPO_ROOT, str(tmp_path / "image"))
    app = staged.local(staged.workdir)
    assert staged.workdir == kfp_compile.IMAGE_ROOT
    assert os.path.isfile(os.path.join(app, "kubeflow", "container_entrypoint.py"))
    assert os.path.isfile(os.path.join(app, "components", "gan_trainer.py"))
    assert os.path.isfile(os.path.join(app, "data", "schema", "digits", "schema.pbtxt"))
    # the import root with its links: every package the tasks may import, as in a checkout
    from tfx_gan import PACKAGES

    for name in PACKAGES:
        assert os.readlink(os.path.join(app, "tfx_gan", name)) == os.path.join("..", name)
        assert os.path.isdir(os.path.join(app, "tfx_gan", name)), name
    for absent in ("tests", "benchmarks", "docs", ".venv", ".git", "data/digits", "components/__pycache__"):
        assert not os.path.exists(os.path.join(app, absent)), absent
    assert staged.env["PYTHONPATH"] == kfp_compile.IMAGE_ROOT and staged.env["TF_USE_LEGACY_KERAS"] == "0"


@pytest.mark.parametrize("line, message", [
    ("COPY tests ./tests", "COPY tests: not in the build context"),  # .dockerignore leaves it out
    ("COPY nowhere.py ./", "COPY nowhere.py: not in the build context"),
    ("ADD components ./components", "ADD is not reproduced"),
    ("COPY --from=builder /x /x", "only plain COPY"),
])
def test_image_staging_refuses_what_it_cannot_reproduce(tmp_path, line, message):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.13-slim-trixie\nWORKDIR /opt/tfx-gan\n{line}\n")
    with pytest.raises(image.DockerfileError, match=message):
        image.stage(str(dockerfile), REPO_ROOT, str(tmp_path / "image"))


def test_dockerfile_installs_what_uv_lock_says(tmp_path):
    with open(os.path.join(REPO_ROOT, "kubeflow", "Dockerfile")) as f:
        dockerfile = "\n".join(line for line in f.read().replace("\\\n", " ").splitlines()
                               if not line.startswith("#"))
    with open(os.path.join(REPO_ROOT, "gan")) as f:
        uv_pin = re.search(r'"uv==([\d.]+)"', f.read()).group(1)
    # The TFX 1.21 line by default: Debian 13 (glibc 2.41, which its TFDV and ML Metadata wheels need).
    python = re.search(r"^ARG PYTHON_VERSION=(3\.1[123])$", dockerfile, re.M).group(1)
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim-trixie$", dockerfile, re.M)
    runs = re.findall(r"^RUN (.*)$", dockerfile, re.M)
    # Nothing floats: pip installs uv alone (the pin ./gan uses), then uv installs uv.lock as it is.
    assert [line for line in runs if "pip" in line] == [f'python -m pip install --no-cache-dir "uv=={uv_pin}"']
    (sync,) = [shlex.split(line.replace("${PYTHON_VERSION}", python)) for line in runs if "uv sync" in line]
    assert re.search(r"^COPY pyproject\.toml uv\.lock \./$", dockerfile, re.M)
    assert dockerfile.index("COPY pyproject.toml uv.lock") < dockerfile.index("RUN UV_PROJECT_ENVIRONMENT")
    assert re.search(r"^ENV PATH=/opt/venv/bin:\$PATH$", dockerfile, re.M)

    # The Dockerfile's own `uv sync` line, as a dry run (offline: uv.lock alone says what it installs).
    uv = os.path.join(REPO_ROOT, ".cache", "uv-bootstrap", "bin", "uv")
    if not os.path.exists(uv):
        pytest.skip("no bootstrapped uv (./gan installs it into .cache/uv-bootstrap/)")
    env_items = [item for item in sync if re.match(r"^[A-Z_]+=", item)]
    command = sync[len(env_items):]
    assert command[:4] == ["uv", "sync", "--frozen", "--no-dev"] and command[-2:] == ["--python", python], command
    env = {**os.environ, **dict(item.split("=", 1) for item in env_items),
           "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_OFFLINE": "1"}
    # uv is given the interpreter's path: a pyenv shim for another version would stop its search.
    interpreters = [sys.executable] if "%d.%d" % sys.version_info[:2] == python else sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{python}*/bin/python{python}"))) + [f"/usr/bin/python{python}"]
    interpreter = next((path for path in interpreters if os.path.exists(path)), None)
    if interpreter is None:
        pytest.skip(f"no Python {python} on this machine for uv's dry run")
    # The image's platform, whatever this machine's glibc: Debian 13 has glibc 2.41.
    dry_run = subprocess.run([uv, *command[1:-1], interpreter, "--python-platform", "x86_64-manylinux_2_39",
                              "--dry-run"], cwd=REPO_ROOT, env=env,
                             capture_output=True, text=True)
    assert dry_run.returncode == 0, dry_run.stderr
    installs = dict(re.findall(r"^ \+ ([A-Za-z0-9_.\-]+)==(\S+)$", dry_run.stdout + dry_run.stderr, re.M))
    assert installs["tfx"] == "1.21.0" and installs["tensorflow"].startswith("2.21.") and installs["protobuf"].startswith("6.")
    assert not {"pytest", "hypothesis"} & set(installs)  # the dev group stays out of the image
    if "%d.%d" % sys.version_info[:2] == python:
        # On the image's own Python (the Debian 13 root of ./gan test): exactly what the tests ran with.
        mismatched = {name: (version, _installed(name)) for name, version in installs.items()
                      if _installed(name) != version}
        assert not mismatched, f"the image would install (version, .venv has): {mismatched}"


def _installed(name: str):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize("path", [".venv/bin/python", "outputs/gan-digits/metadata.sqlite", "serving/gan-digits/1/x",
                                  ".cache/uv", "data/digits/span-1/0/0.png", ".git/HEAD", "tests/test_cli.py",
                                  "components/__pycache__/x.pyc", "data/emoji/span-1/flags/1f1e6.png"])
def test_dockerignore_keeps_the_build_context_small(path):
    assert image._ignored(path, image._ignore_patterns(REPO_ROOT))


# --------------------------------------------------------------------------- the launcher's driver
def test_driver_refuses_constant_value_unless_vertex(tmp_path):
    from tfx_gan.kubeflow.emulator import launcher

    _, spec_dict = compile_to_dict(tmp_path, spec_version="2.0")
    package = tmp_path / "spec.yaml"
    package.write_text(yaml.safe_dump(spec_dict))
    spec = launcher.load_spec(str(package))
    task, component = spec.root.dag.tasks["ImageExampleGen"], spec.components["ImageExampleGen"]
    run = {"id": "r", "name": "run-r", "display_name": "gan-digits", "dag_execution_id": 1}
    with pytest.raises(launcher.LaunchError, match=re.escape(
            "task ImageExampleGen: failed to resolve inputs: resolving input parameter custom_config: param runtime "
            "value spec of type *pipelinespec.ValueOrRuntimeParameter_ConstantValue not implemented")):
        launcher.resolve_inputs("ImageExampleGen", task, component, {}, run, vertex=False)
    inputs = launcher.resolve_inputs("ImageExampleGen", task, component, {}, run, vertex=True)
    assert inputs.parameters["input_base"].string_value == "gs://bucket/gan/data/gan-digits"  # Vertex's 2.0 form


def test_driver_checks_parameter_types_and_passes_inputs_as_oss_kfp(compiled, tmp_path):
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    from tfx_gan.kubeflow.emulator import launcher

    package = tmp_path / "spec.yaml"
    package.write_text(compiled[0])
    spec = launcher.load_spec(str(package))
    run = {"id": "r", "name": "run-r", "display_name": "gan-digits", "dag_execution_id": 1}
    produced = {"ImageExampleGen": {"examples": {"name": "7", "uri": "gs://b/e", "metadata": {"span": 2},
                                                 "type": {"instanceSchema": "title: tfx.Examples\n"}}}}
    inputs = launcher.resolve_inputs("StatisticsGen", spec.root.dag.tasks["StatisticsGen"],
                                     spec.components["StatisticsGen"], produced, run, vertex=False)
    (examples,) = inputs.artifacts["examples"].artifacts
    assert examples.name == "7" and examples.uri == "gs://b/e"
    assert examples.type.WhichOneof("kind") == "instance_schema" and examples.type.instance_schema == ""
    component = pb.ComponentSpec()
    component.CopyFrom(spec.components["ImageExampleGen"])
    component.input_definitions.parameters["input_base"].parameter_type = pb.ParameterType.NUMBER_INTEGER
    with pytest.raises(launcher.LaunchError, match='input parameter "input_base" type mismatch: expect NUMBER_INTEGER, got string'):
        launcher.resolve_inputs("ImageExampleGen", spec.root.dag.tasks["ImageExampleGen"], component, {}, run, vertex=False)
    with pytest.raises(launcher.LaunchError, match='cannot find output artifact key "examples" in producer task "ImageExampleGen"'):
        launcher.resolve_inputs("StatisticsGen", spec.root.dag.tasks["StatisticsGen"],
                                spec.components["StatisticsGen"], {}, run, vertex=False)


def test_launcher_refuses_what_is_not_a_runnable_spec(tmp_path):
    from tfx_gan.kubeflow.emulator import launcher

    for text, message in (("a: [", "is not YAML"), ("pipelineInfo: {name: x}", "not a PipelineSpec"),
                          ("root: {dag: {tasks: {a: {dependentTasks: [b]}, b: {dependentTasks: [a]}}}}", "cycle")):
        package = tmp_path / "spec.yaml"
        package.write_text(text)
        with pytest.raises(launcher.LaunchError, match=message):
            launcher.dependency_order(launcher.load_spec(str(package)))
    with pytest.raises(launcher.LaunchError, match="file not found"):
        launcher.load_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(launcher.LaunchError, match="--root must be a gs:// or s3:// URI"):
        launcher.launch(str(package), "/tmp/gan", str(tmp_path / "local"))

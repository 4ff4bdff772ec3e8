"""Runs a compiled pipeline spec on this machine the way open-source Kubeflow Pipelines v2 runs it:
what its driver and launcher do for each task (KFP backend 2.5.0: backend/src/v2/driver/driver.go,
backend/src/v2/component/launcher_v2.go), with this checkout standing in for the cluster. It is the
check of every Kubeflow claim here, and a dry run of a spec before it is submitted.

    .venv/bin/python -m tfx_gan.kubeflow.emulator.launcher --package outputs/kubeflow/gan-pipeline.yaml \\
        --root gs://BUCKET/gan --local_dir outputs/kfp-local

As OSS KFP does:
- tasks run in dependency order, each once its upstream tasks succeeded (independent ones at once);
  after a failure no new task starts;
- the ExecutorInput is the driver's: parameters only from ``runtimeValue.constant`` (any other form
  fails with the driver's message, e.g. "param runtime value spec of type
  *pipelinespec.ValueOrRuntimeParameter_ConstantValue not implemented"), then its type checks;
  upstream artifacts named by their ML Metadata id, with the metadata ML Metadata stored and an
  empty type schema; outputs at <pipeline root>/<pipeline>/<run id>/<task>/<uuid>/<output>;
- each task's cache key and fingerprint are computed (kubeflow/emulator/kfp_cache.py) and reported; a task
  that enables caching reuses the outputs of an earlier task with the same fingerprint;
- the container's command and args run as they are, placeholders filled in, as a subprocess; its
  executor output file gives the output artifacts' URIs and metadata, handed to the consumers;
- lifecycle hooks do not run (OSS KFP has none).

Standing in for the cluster:
- the image: the files kubeflow/Dockerfile COPYs, staged in the run folder, with its ENV and
  WORKDIR; ``python`` is the interpreter running the launcher (./gan's .venv, synced from uv.lock,
  which is what the Dockerfile installs);
- storage: a task sees gs://B/P as <local_dir>/gcs/B/P (s3:// as <local_dir>/s3/), the folders
  KFP's launcher uses for those URIs, and image paths as their staged copies; cache keys and
  records keep the URIs the cluster would see;
- ML Metadata and KFP's cache table: <local_dir>/kfp-state.json;
- resources: reported as the driver writes them into the pod, not enforced;
- Kubernetes itself, for a GanTrainer that creates worker pods (``kubeflow.trainer_workers``):
  the pods of its Job run as local processes, loopback ports standing in for the Service's DNS.

``--vertex`` runs the lifecycle hooks before the executor and accepts ``constantValue`` parameters,
as Vertex AI does, and passes artifact types; its cache keys are still OSS KFP's.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid

import tfx_gan  # Keras 3 for anything imported below (the tasks get the Dockerfile's ENV)

import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

from tfx_gan.kubeflow.emulator import image as image_staging
from tfx_gan.kubeflow.emulator import kfp_cache
from tfx_gan.training import worker_pods
from tfx_gan.kubeflow.compile import pod_resources
from tfx_gan.kubeflow.submit import kfp_pipeline_root
from tfx_gan.common.errors import UserError

REPO_ROOT = tfx_gan.SOURCE_ROOT  # the image's build context: the checkout
KFP_BACKEND = "2.5.0"  # the release whose driver and launcher this follows
DOCKERFILE = os.path.join(REPO_ROOT, "kubeflow", "Dockerfile")
# KFP 2.5.0's launcher has one executor output file per pod at this path; here each task gets its own.
OUTPUT_METADATA_FILE = os.path.join("tmp", "kfp_outputs", "output_metadata.json")
STATE_FILE = "kfp-state.json"
REMOTE_SCHEMES = {"gs://": "gcs", "s3://": "s3"}


class LaunchError(UserError, RuntimeError):
    """The spec cannot run, or a task failed; the message says which and why, on one line."""


@dataclasses.dataclass
class TaskRecord:
    name: str
    state: str = "PENDING"            # SUCCEEDED, CACHED, FAILED, NOT_RUN (an upstream task failed)
    seconds: float = 0.0
    fingerprint: str = ""
    cache_enabled: bool = False
    cached_from_run: str = ""
    pod_resources: dict = dataclasses.field(default_factory=dict)
    outputs: dict = dataclasses.field(default_factory=dict)  # output -> RuntimeArtifact JSON as recorded
    log: str = ""
    error: str = ""
    notes: list = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------- the spec
def load_spec(package: str) -> pb.PipelineSpec:
    """The PipelineSpec in a compiled YAML, read as kfp.Client reads it (first YAML document)."""
    if not os.path.isfile(package):
        raise LaunchError(f"--package: file not found: {package}")
    with open(package, encoding="utf-8") as f:
        try:
            document = next(yaml.safe_load_all(f), None)
        except yaml.YAMLError as e:
            raise LaunchError(f"{package} is not YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(document, dict) or "root" not in document:
        raise LaunchError(f"{package} is not a PipelineSpec (no root DAG); compile it with ./gan compile-kfp")
    try:
        return json_format.ParseDict(document, pb.PipelineSpec())
    except json_format.ParseError as e:
        raise LaunchError(f"{package} is not a PipelineSpec: {e}") from None


def dependency_order(spec: pb.PipelineSpec) -> dict[str, set[str]]:
    """Task -> the tasks it waits for (dependentTasks and artifact producers), in a valid order."""
    tasks = spec.root.dag.tasks
    upstream = {}
    for name, task in tasks.items():
        needs = set(task.dependent_tasks)
        needs |= {a.task_output_artifact.producer_task for a in task.inputs.artifacts.values()
                  if a.WhichOneof("kind") == "task_output_artifact"}
        unknown = needs - set(tasks)
        if unknown:
            raise LaunchError(f"task {name} depends on unknown task(s) {', '.join(sorted(unknown))}")
        upstream[name] = needs
    ordered, done = {}, set()
    while len(ordered) < len(upstream):
        ready = sorted(n for n in upstream if n not in done and upstream[n] <= done)
        if not ready:
            raise LaunchError(f"the DAG has a cycle among {', '.join(sorted(set(upstream) - done))}")
        for name in ready:
            ordered[name] = upstream[name]
            done.add(name)
    return ordered


def containers_of(spec: pb.PipelineSpec) -> dict:
    """Task -> (its ComponentSpec, its container); other executor kinds are refused by name."""
    deployment = json_format.ParseDict(json_format.MessageToDict(spec.deployment_spec), pb.PipelineDeploymentConfig())
    return {name: _container_of(spec, deployment, name) for name in spec.root.dag.tasks}


def _container_of(spec: pb.PipelineSpec, deployment: pb.PipelineDeploymentConfig, task_name: str):
    component = spec.components[spec.root.dag.tasks[task_name].component_ref.name]
    if component.executor_label not in deployment.executors:
        raise LaunchError(f"task {task_name}: no executor {component.executor_label!r} in deploymentSpec")
    executor = deployment.executors[component.executor_label]
    if executor.WhichOneof("spec") != "container":
        raise LaunchError(f"task {task_name}: {executor.WhichOneof('spec')} executors are not run by this launcher "
                          "(OSS KFP answers resolvers with 'resolver not implemented yet')")
    return component, executor.container


# --------------------------------------------------------------------------- the driver
def _go_type(message_name: str, field: str | None) -> str:
    """Go's %T of a oneof field's wrapper, as the driver's errors print it."""
    if field is None:
        return "<nil>"
    suffix = "".join(part.capitalize() for part in field.split("_"))
    return f"*pipelinespec.{message_name}_{suffix}"


def _special_constant(value: struct_pb2.Value, run: dict, task_name: str) -> struct_pb2.Value:
    """The placeholders KFP 2.5.0's driver fills in a constant."""
    special = {"{{$.pipeline_job_name}}": run["display_name"], "{{$.pipeline_job_resource_name}}": run["name"],
               "{{$.pipeline_job_uuid}}": run["id"], "{{$.pipeline_task_name}}": task_name,
               "{{$.pipeline_task_uuid}}": str(run["dag_execution_id"])}
    if value.WhichOneof("kind") == "string_value" and value.string_value in special:
        return struct_pb2.Value(string_value=special[value.string_value])
    return value


def _value_to_text(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return kfp_cache.go_json(value.number_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("list_value", "struct_value"):
        return kfp_cache.go_json(json_format.MessageToDict(value))
    return ""


def resolve_inputs(task_name: str, task: pb.PipelineTaskSpec, component: pb.ComponentSpec, produced: dict,
                   run: dict, vertex: bool) -> pb.ExecutorInput.Inputs:
    """The driver's resolveInputs: parameters, their type checks, upstream artifacts."""
    def fail(message: str) -> LaunchError:
        return LaunchError(f"task {task_name}: failed to resolve inputs: {message}")

    inputs = pb.ExecutorInput.Inputs()
    for name in sorted(task.inputs.parameters):
        spec = task.inputs.parameters[name]
        kind = spec.WhichOneof("kind")
        if kind != "runtime_value":
            raise fail(f"resolving input parameter {name}: parameter spec of type "
                       f"{_go_type('TaskInputsSpec_InputParameterSpec', kind)} not implemented by this launcher "
                       "(the compiled pipeline passes constants only)")
        which = spec.runtime_value.WhichOneof("value")
        if which == "constant":
            inputs.parameter_values[name].CopyFrom(_special_constant(spec.runtime_value.constant, run, task_name))
        elif which == "constant_value" and vertex:
            inputs.parameters[name].CopyFrom(spec.runtime_value.constant_value)
        else:
            raise fail(f"resolving input parameter {name}: param runtime value spec of type "
                       f"{_go_type('ValueOrRuntimeParameter', which)} not implemented")
    for name in sorted(task.inputs.artifacts):
        spec = task.inputs.artifacts[name]
        if spec.WhichOneof("kind") != "task_output_artifact":
            raise fail(f"artifact {name}: artifact spec of type "
                       f"{_go_type('TaskInputsSpec_InputArtifactSpec', spec.WhichOneof('kind'))} not implemented yet")
        producer, key = spec.task_output_artifact.producer_task, spec.task_output_artifact.output_artifact_key
        recorded = produced.get(producer, {}).get(key)
        if recorded is None:
            raise fail(f'artifact {name}: cannot find output artifact key "{key}" in producer task "{producer}"')
        artifact = inputs.artifacts[name].artifacts.add()
        json_format.ParseDict(recorded, artifact)
        if not vertex:
            # The OSS driver reads no type back from ML Metadata (metadata/client.go: "TODO(Bobgy):
            # figure out how to get schema"): every input artifact arrives with an empty schema.
            artifact.type.Clear()
            artifact.type.instance_schema = ""
    if not vertex:
        _check_parameter_types(inputs, component, fail)
    return inputs


def _check_parameter_types(inputs: pb.ExecutorInput.Inputs, component: pb.ComponentSpec, fail) -> None:
    """The driver's handleParamTypeValidationAndConversion."""
    types = pb.ParameterType.ParameterTypeEnum
    kinds = {"string_value": ("string", {types.STRING}), "number_value": ("number", {types.NUMBER_DOUBLE, types.NUMBER_INTEGER}),
             "bool_value": ("bool", {types.BOOLEAN}), "list_value": ("list", {types.LIST}),
             "struct_value": ("struct", {types.STRUCT, types.TASK_FINAL_STATUS})}
    for name in sorted(component.input_definitions.parameters):
        spec = component.input_definitions.parameters[name]
        if name not in inputs.parameter_values:
            if not spec.is_optional and not spec.HasField("default_value"):
                raise fail(f'neither value nor default value provided for non-optional parameter "{name}"')
            continue
        value = inputs.parameter_values[name]
        if spec.parameter_type == types.STRING:
            if value.WhichOneof("kind") != "string_value":
                inputs.parameter_values[name].CopyFrom(struct_pb2.Value(string_value=_value_to_text(value)))
            continue
        kind = value.WhichOneof("kind")
        if kind == "null_value":
            raise fail(f'got null for input parameter "{name}"')
        label, allowed = kinds[kind]
        if spec.parameter_type not in allowed:
            raise fail(f'input parameter "{name}" type mismatch: expect '
                       f"{types.Name(spec.parameter_type)}, got {label}")


def provision_outputs(pipeline_root: str, pipeline_name: str, run_id: str, task_name: str,
                      component: pb.ComponentSpec, output_file: str) -> pb.ExecutorInput.Outputs:
    """The driver's provisionOutputs (2.5.0: output artifacts carry no name)."""
    if component.output_definitions.parameters:
        raise LaunchError(f"task {task_name}: output parameters are not run by this launcher "
                          f"({', '.join(component.output_definitions.parameters)})")
    outputs = pb.ExecutorInput.Outputs(output_file=output_file)
    salt = str(uuid.uuid4())
    for name in sorted(component.output_definitions.artifacts):
        spec = component.output_definitions.artifacts[name]
        artifact = outputs.artifacts[name].artifacts.add()
        artifact.uri = f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}/{task_name}/{salt}/{name}"
        artifact.type.CopyFrom(spec.artifact_type)
        if spec.HasField("metadata"):
            artifact.metadata.CopyFrom(spec.metadata)
    return outputs


def _through_ml_metadata(metadata: dict, output_name: str, task_name: str) -> dict:
    """Artifact metadata as the next task gets it back: the launcher stores each field as an ML
    Metadata custom property (metadata/converter.go) and the driver reads them back."""
    stored = {}
    for key, value in metadata.items():
        if value is None:
            raise LaunchError(f'task {task_name}: unable to produce MLMD artifact for output "{output_name}": '
                              f"unknown/unsupported value type *structpb.Value_NullValue (metadata {key!r})")
        if isinstance(value, bool):
            value = 1 if value else 0
        elif isinstance(value, list):
            value = {"list": value}
        elif isinstance(value, dict):
            value = {"struct": value}
        stored[key] = value
    stored.setdefault("display_name", output_name)
    return stored


# --------------------------------------------------------------------------- running a task
class Workspace:
    """The local stand-ins of one launch: storage folders, the staged image, the task folders."""

    def __init__(self, local_dir: str, run_id: str, dockerfile: str):
        self.local_dir = os.path.abspath(local_dir)
        self.run_dir = os.path.join(self.local_dir, "runs", run_id)
        os.makedirs(self.run_dir, exist_ok=False)
        self.image = image_staging.stage(dockerfile, REPO_ROOT, os.path.join(self.run_dir, "image"))
        self.bin_dir = os.path.join(self.run_dir, "bin")
        os.makedirs(self.bin_dir)
        with open(os.path.join(self.bin_dir, "python"), "w") as f:  # a script: a symlink would lose the venv
            f.write(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        os.chmod(os.path.join(self.bin_dir, "python"), 0o755)
        self.home = os.path.join(self.run_dir, "home")
        os.makedirs(self.home)

    def to_local(self, text: str) -> str:
        for scheme, folder in REMOTE_SCHEMES.items():
            text = text.replace(scheme, f"{self.local_dir}/{folder}/")
        return text.replace(self.image.workdir, self.image.local(self.image.workdir))

    def to_remote(self, text: str) -> str:
        for scheme, folder in REMOTE_SCHEMES.items():
            text = text.replace(f"{self.local_dir}/{folder}/", scheme)
        return text

    def env(self) -> dict:
        env = {name: self.to_local(value) for name, value in self.image.env.items() if name != "PATH"}
        env.update(PATH=f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin", HOME=self.home, LANG="C.UTF-8")
        return env

    def task_dir(self, task_name: str) -> str:
        return os.path.join(self.run_dir, "tasks", task_name)


def _map_value(v: struct_pb2.Value, convert) -> None:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        v.string_value = convert(v.string_value)
    elif kind == "list_value":
        for item in v.list_value.values:
            _map_value(item, convert)
    elif kind == "struct_value":
        for item in v.struct_value.fields.values():
            _map_value(item, convert)


def _map_strings_in(artifact: pb.RuntimeArtifact, convert) -> None:
    artifact.uri = convert(artifact.uri)
    for v in artifact.metadata.fields.values():
        _map_value(v, convert)


def _map_strings(message: pb.ExecutorInput, convert) -> None:
    """Applies ``convert`` to every string parameter and artifact URI and metadata string, in place."""
    for v in message.inputs.parameter_values.values():
        _map_value(v, convert)
    for v in message.inputs.parameters.values():
        if v.WhichOneof("value") == "string_value":
            v.string_value = convert(v.string_value)
    for side in (message.inputs.artifacts, message.outputs.artifacts):
        for artifact_list in side.values():
            for artifact in artifact_list.artifacts:
                _map_strings_in(artifact, convert)


def _placeholders(executor_input: pb.ExecutorInput) -> dict[str, str]:
    """The launcher's getPlaceholders (2.5.0)."""
    values = {"{{$}}": json.dumps(json_format.MessageToDict(executor_input), separators=(",", ":"))}
    for side, key in ((executor_input.inputs.artifacts, "inputs"), (executor_input.outputs.artifacts, "outputs")):
        for name, artifact_list in side.items():
            if artifact_list.artifacts:
                values[f"{{{{$.{key}.artifacts['{name}'].uri}}}}"] = artifact_list.artifacts[0].uri
                values[f"{{{{$.{key}.artifacts['{name}'].path}}}}"] = artifact_list.artifacts[0].uri
    for name, value in executor_input.inputs.parameter_values.items():
        values[f"{{{{$.inputs.parameters['{name}']}}}}"] = _value_to_text(value)
    return values


def _fill(items, placeholders: dict[str, str]) -> list[str]:
    filled = []
    for item in items:
        for placeholder, replacement in placeholders.items():
            item = item.replace(placeholder, replacement)
        filled.append(item)
    return filled


def container_env(container, workspace: Workspace, task_dir: str) -> dict:
    """The pod's environment: the image's ENV, then the container's own env (the driver's
    userEnvVar); a GanTrainer that creates worker pods gets them as local processes
    (training/worker_pods.py's LocalPods, their logs in <task>/pods/)."""
    env = workspace.env()
    env.update({e.name: workspace.to_local(e.value) for e in container.env})
    if worker_pods.WORKER_PODS_ENV in env:
        env[worker_pods.LOCAL_PODS_ENV] = os.path.join(task_dir, "pods")
    return env


def _run(command: list[str], workspace: Workspace, log_path: str, what: str, env: dict) -> None:
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(command[:3])} ... ({what})\n")
        log.flush()
        try:
            exit_code = subprocess.run(command, cwd=workspace.image.local(workspace.image.workdir), env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        except OSError as e:  # the command itself is missing: the pod would not start either
            raise LaunchError(f"{what}: cannot run {command[0]!r}: {e.strerror}") from None
    if exit_code != 0:
        with open(log_path, errors="replace") as log:
            lines = [line.strip() for line in log if line.strip()]
        raise LaunchError(f"{what} exited with {exit_code}: {lines[-1] if lines else 'no output'} (log: {log_path})")


def execute(task_name: str, executor_input: pb.ExecutorInput, component: pb.ComponentSpec, container,
            workspace: Workspace, vertex: bool) -> pb.ExecutorOutput:
    """The launcher's executeV2 (and, with ``vertex``, Vertex AI's preCacheCheck hook first)."""
    local_input = pb.ExecutorInput()
    local_input.CopyFrom(executor_input)
    _map_strings(local_input, workspace.to_local)
    for name, spec in component.input_definitions.parameters.items():  # addDefaultParams
        if spec.HasField("default_value") and name not in local_input.inputs.parameter_values:
            local_input.inputs.parameter_values[name].CopyFrom(spec.default_value)
    for artifact_list in local_input.outputs.artifacts.values():  # prepareOutputFolders
        for artifact in artifact_list.artifacts:
            os.makedirs(os.path.dirname(artifact.uri), exist_ok=True)
    os.makedirs(os.path.dirname(local_input.outputs.output_file), exist_ok=True)
    log_path = os.path.join(workspace.task_dir(task_name), "log.txt")
    env = container_env(container, workspace, workspace.task_dir(task_name))
    if vertex and container.lifecycle.HasField("pre_cache_check"):
        hook = container.lifecycle.pre_cache_check
        placeholders = _placeholders(local_input)
        _run(_fill(list(hook.command) + list(hook.args), placeholders), workspace, log_path,
             "lifecycle.preCacheCheck", env)
        driver_output = _read_executor_output(local_input.outputs.output_file)
        for name, artifact_list in driver_output.artifacts.items():  # Vertex updates the outputs first
            if artifact_list.artifacts and local_input.outputs.artifacts[name].artifacts:
                local_input.outputs.artifacts[name].artifacts[0].metadata.update(
                    json_format.MessageToDict(artifact_list.artifacts[0].metadata))
    placeholders = _placeholders(local_input)
    _run(_fill(list(container.command) + list(container.args), placeholders), workspace, log_path, "the container", env)
    return _read_executor_output(local_input.outputs.output_file)


def _read_executor_output(path: str) -> pb.ExecutorOutput:
    output = pb.ExecutorOutput()
    if os.path.exists(path):  # a task may write none: then its outputs keep their provisioned URIs
        with open(path, encoding="utf-8") as f:
            json_format.Parse(f.read(), output, ignore_unknown_fields=True)
    return output


# --------------------------------------------------------------------------- the launch
def _load_state(path: str) -> dict:
    if not os.path.exists(path):
        return {"next_artifact_id": 1, "cache": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save_state(path: str, state: dict) -> None:
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(partial, path)


def launch(package: str, root: str, local_dir: str, *, vertex: bool = False, run_id: str | None = None,
           parallelism: int = 0, dockerfile: str = DOCKERFILE, log=print) -> dict:
    """Runs every task of the spec; returns the launch record (also written to <run folder>/launch.json).
    Raises LaunchError for a spec that cannot run; a failed task is recorded, and the record's
    ``state`` is FAILED."""
    if not root.startswith(tuple(REMOTE_SCHEMES)):
        raise LaunchError(f"--root must be a gs:// or s3:// URI (the one the spec was compiled with), got {root!r}")
    run_id = run_id or str(uuid.uuid4())
    run = _Run(load_spec(package), kfp_pipeline_root(root), run_id, Workspace(local_dir, run_id, dockerfile), vertex)
    log(f"[launch] run {run.run_id}: {run.pipeline_name}, pipeline root {run.pipeline_root} "
        f"({run.workspace.to_local(run.pipeline_root)}), {'Vertex AI' if vertex else f'OSS KFP {KFP_BACKEND}'} rules")
    started_at = time.time()
    failed = run.execute_all(parallelism, log)
    _save_state(run.state_path, run.state)
    result = {"run_id": run.run_id, "pipeline": run.pipeline_name, "pipeline_root": run.pipeline_root,
              "kfp_backend": KFP_BACKEND, "mode": "vertex" if vertex else "oss", "package": os.path.abspath(package),
              "state": "FAILED" if failed else "SUCCEEDED", "failed_task": failed,
              "seconds": round(time.time() - started_at, 1), "run_dir": run.workspace.run_dir,
              "local_storage": {scheme: f"{run.workspace.local_dir}/{folder}/" for scheme, folder in REMOTE_SCHEMES.items()},
              "tasks": {name: dataclasses.asdict(run.records[name]) for name in run.order}}
    with open(os.path.join(run.workspace.run_dir, "launch.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


class _Run:
    """One launch of a spec: the tasks' records, what finished tasks produced, the cache, and the three
    jobs of KFP's backend per task (the driver's prepare, the executor, the launcher's publish)."""

    def __init__(self, spec, pipeline_root: str, run_id: str, workspace: Workspace, vertex: bool):
        self.spec, self.pipeline_root, self.run_id, self.vertex = spec, pipeline_root, run_id, vertex
        self.order = dependency_order(spec)
        self.containers = containers_of(spec)
        self.pipeline_name = spec.pipeline_info.name
        self.run = {"id": run_id, "name": f"run-{run_id}", "display_name": self.pipeline_name, "dag_execution_id": 1}
        self.workspace = workspace
        self.state_path = os.path.join(self.workspace.local_dir, STATE_FILE)
        self.state = _load_state(self.state_path)
        self.cache = self.state["cache"].setdefault(f"pipeline/{self.pipeline_name}", {})
        self.records = {name: TaskRecord(name, pod_resources=pod_resources(self.containers[name][1]))
                        for name in self.order}
        self.produced: dict[str, dict] = {}

    def prepare(self, name: str):
        """The driver's part: inputs, outputs, cache key; a cache hit finishes the task here (None)."""
        task = self.spec.root.dag.tasks[name]
        component, container = self.containers[name]
        record, workspace = self.records[name], self.workspace
        executor_input = pb.ExecutorInput(inputs=resolve_inputs(name, task, component, self.produced, self.run,
                                                                self.vertex))
        output_file = os.path.join(workspace.task_dir(name), OUTPUT_METADATA_FILE)
        executor_input.outputs.CopyFrom(provision_outputs(self.pipeline_root, self.pipeline_name, self.run_id, name,
                                                          component, output_file))
        key = kfp_cache.cache_key(executor_input.inputs, executor_input.outputs, {},
                                  list(container.command) + list(container.args), container.image)
        record.fingerprint = kfp_cache.fingerprint(key)
        record.cache_enabled = task.caching_options.enable_cache
        if container.lifecycle.HasField("pre_cache_check") and not self.vertex:
            record.notes.append("lifecycle.preCacheCheck not run (OSS KFP runs no hooks)")
        if any(e.name == worker_pods.WORKER_PODS_ENV for e in container.env):
            record.notes.append("creates worker pods: run here as local processes (logs in its pods/ folder)")
        accelerators = set(record.pod_resources["limits"]) - {"cpu", "memory"}
        if accelerators:
            record.notes.append(f"requests {', '.join(sorted(accelerators))}: not enforced here")
        os.makedirs(workspace.task_dir(name), exist_ok=True)
        with open(os.path.join(workspace.task_dir(name), "cache_key.json"), "w") as f:
            json.dump(key, f, indent=1, sort_keys=True)
        hit = self.cache.get(record.fingerprint) if record.cache_enabled else None
        if hit:
            record.state, record.cached_from_run, record.outputs = "CACHED", hit["run_id"], hit["outputs"]
            return None
        return executor_input

    def publish(self, name: str, executor_input: pb.ExecutorInput, executor_output: pb.ExecutorOutput) -> None:
        """The launcher's uploadOutputArtifacts: merge the executor's output, record it."""
        record = self.records[name]
        for output_name, artifact_list in executor_input.outputs.artifacts.items():
            artifact = artifact_list.artifacts[0]
            reported = executor_output.artifacts.get(output_name)
            metadata = json_format.MessageToDict(artifact.metadata) if artifact.HasField("metadata") else {}
            if reported is not None and reported.artifacts:
                # Paths the task saw as local are the cluster's URIs again in the records.
                _map_strings_in(reported.artifacts[0], self.workspace.to_remote)
                if reported.artifacts[0].uri:
                    artifact.uri = reported.artifacts[0].uri
                metadata.update(json_format.MessageToDict(reported.artifacts[0].metadata))
            artifact_id = self.state["next_artifact_id"]
            self.state["next_artifact_id"] += 1
            record.outputs[output_name] = {"name": str(artifact_id), "uri": artifact.uri,
                                           "type": json_format.MessageToDict(artifact.type),
                                           "metadata": _through_ml_metadata(metadata, output_name, name)}
        record.state = "SUCCEEDED"
        if record.cache_enabled:
            self.cache[record.fingerprint] = {"run_id": self.run_id, "task": name, "outputs": record.outputs}

    def ready(self, name: str) -> bool:
        return self.records[name].state == "PENDING" and all(
            self.records[n].state in ("SUCCEEDED", "CACHED") for n in self.order[name])

    def execute_all(self, parallelism: int, log) -> str | None:
        """Runs the tasks as their dependencies finish, at most ``parallelism`` at once (0: no limit);
        stops scheduling at the first failure. Returns the first failed task, or None."""
        failed = None
        running: dict = {}  # future -> (task, start time, its ExecutorInput)
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallelism or len(self.order)) as pool:
            while True:
                if failed is None:
                    failed = self._schedule_ready(pool, running, parallelism, log)
                if not running:
                    break
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    failed_now = self._collect(future, *running.pop(future), log)
                    failed = failed or failed_now
        for record in self.records.values():
            if record.state in ("PENDING", "RUNNING"):
                record.state = "NOT_RUN"
        return failed

    def _schedule_ready(self, pool, running: dict, parallelism: int, log) -> str | None:
        """Starts every ready task (a cache hit finishes at once and may make others ready); returns a
        task whose preparation failed, or None."""
        scheduled = True
        while scheduled:
            scheduled = False
            for name in [n for n in self.order if self.ready(n)]:
                if parallelism and len(running) >= parallelism:
                    return None
                record = self.records[name]
                record.log = os.path.join(self.workspace.task_dir(name), "log.txt")
                try:
                    executor_input = self.prepare(name)
                except LaunchError as e:
                    record.state, record.error = "FAILED", str(e)
                    log(f"[launch] {name:<18} FAILED     {e}")
                    return name
                scheduled = True
                if executor_input is None:
                    self.produced[name] = record.outputs
                    log(f"[launch] {name:<18} CACHED     fingerprint {record.fingerprint[:16]} "
                        f"(outputs of run {record.cached_from_run})")
                    continue
                record.state = "RUNNING"
                future = pool.submit(execute, name, executor_input, *self.containers[name], self.workspace, self.vertex)
                running[future] = (name, time.time(), executor_input)
        return None

    def _collect(self, future, name: str, task_started: float, executor_input, log) -> str | None:
        """A finished task's outputs published; returns its name if it failed."""
        record = self.records[name]
        record.seconds = round(time.time() - task_started, 1)
        try:
            self.publish(name, executor_input, future.result())
        except LaunchError as e:
            record.state, record.error = "FAILED", f"task {name}: {e}"
            log(f"[launch] {name:<18} FAILED  {record.seconds:7.1f} s  {e}")
            return name
        self.produced[name] = record.outputs
        log(f"[launch] {name:<18} SUCCEEDED {record.seconds:7.1f} s  fingerprint {record.fingerprint[:16]}"
            f"{'' if record.cache_enabled else ' (caching off)'}")
        return None


def print_summary(result: dict) -> None:
    print(f"\n[launch] {result['state']} in {result['seconds']:.0f} s: run {result['run_id']} "
          f"({result['run_dir']}/launch.json)")
    for name, task in result["tasks"].items():
        requests = " ".join(f"{k}={v}" for k, v in task["pod_resources"]["requests"].items())
        limits = " ".join(f"{k}={v}" for k, v in task["pod_resources"]["limits"].items())
        cache = (("cache on " if task["cache_enabled"] else "cache off") + f" {task['fingerprint'][:16]}"
                 if task["fingerprint"] else f"{'-':<26}")
        print(f"  {name:<18} {task['state']:<9} {task['seconds']:7.1f} s  {cache}  requests {requests}  limits {limits}")
        for note in task["notes"]:
            print(f"  {'':<18} {note}")
        if task["error"]:
            print(f"  {'':<18} {task['error']}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", required=True, help="the YAML from ./gan compile-kfp")
    parser.add_argument("--root", required=True, help="the same --root as at compile time (gs:// or s3://)")
    parser.add_argument("--local_dir", required=True,
                        help="stands in for the buckets (<dir>/gcs/BUCKET/...), ML Metadata and the run folders")
    parser.add_argument("--vertex", action="store_true",
                        help="Vertex AI's rules: run lifecycle hooks, accept constantValue parameters")
    parser.add_argument("--run_id", help="default: a new UUID, as KFP gives each run")
    parser.add_argument("--parallelism", type=int, default=0, help="tasks at once (default: every ready task)")


def run(args: argparse.Namespace) -> int:
    try:
        result = launch(args.package, args.root, args.local_dir, vertex=args.vertex, run_id=args.run_id,
                        parallelism=args.parallelism)
    except (LaunchError, image_staging.DockerfileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_summary(result)
    return 0 if result["state"] == "SUCCEEDED" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfx_gan.kubeflow.emulator.launcher", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

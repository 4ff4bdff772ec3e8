"""The pipeline's configuration: one YAML file a user edits (pipeline/configs/digits.yaml).

Loading validates every value and fails with a message that names the key, the bad value and
what is allowed.

Relative paths: a path written in a config file is relative to the folder of that file (as in
docker-compose or tsconfig), so a config means the same from any working directory; a path given
on the command line (``--config``, ``--set data.input_base=...``) is relative to the working
directory. ``output_dir`` and ``push_destination`` follow ``pipeline_name`` unless set:
``outputs/<pipeline_name>`` and ``serving/<pipeline_name>`` under the working directory, so a
copied config never writes into another pipeline's folders.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re

from typing import Any

import yaml

from tfx_gan import SOURCE_ROOT
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.training.config import TrainConfig
from tfx_gan.common.options import ConfigError, option, parse_options
from tfx_gan.data.config import DataConfig
from tfx_gan.data.ingest import parse_span_policy

REPO_ROOT = SOURCE_ROOT  # where the code is, not user data
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "pipeline", "configs", "digits.yaml")


@dataclasses.dataclass(frozen=True)
class PushConfig:
    keep_versions: int | None = option(None, minimum=1, help="versions kept after a push (never the serving "
                                       "one); null: all")


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    per_class: int = option(0, minimum=0, help="generated training examples per class that SyntheticExamplesGen "
                            "writes after Pusher (an Examples artifact for a downstream Trainer); 0: no such step")
    seed: int = option(0, minimum=0, help="latent seed of the synthetic examples")


@dataclasses.dataclass(frozen=True)
class TaskResources:
    """What one task's pod asks Kubernetes for (KFP's driver writes these into the pod spec)."""
    cpu_request: float = option(1.0, minimum=0, exclusive=True,
                                help="CPU cores; a Beam task runs this many workers (rounded down, at least 1)")
    cpu_limit: float = option(2.0, minimum=0, exclusive=True, help="CPU cores at most")
    memory_request_gb: float = option(2.0, minimum=0, exclusive=True, help="memory requested, GB")
    memory_limit_gb: float = option(4.0, minimum=0, exclusive=True, help="memory at most, GB")

    def check(self, prefix: str) -> None:
        for kind, unit in (("cpu", ""), ("memory", "_gb")):
            request, limit = getattr(self, f"{kind}_request{unit}"), getattr(self, f"{kind}_limit{unit}")
            if limit < request:
                raise ConfigError(f"{prefix}.{kind}_limit{unit}: {limit:g} is below {kind}_request{unit} {request:g}")


# Tasks not named in kubeflow.resources get the `default` entry; an entry's missing keys come from it too.
DEFAULT_TASK_RESOURCES = {
    "default": TaskResources(),
    "GanTrainer": TaskResources(cpu_request=4.0, cpu_limit=8.0, memory_request_gb=8.0, memory_limit_gb=16.0),
}


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
    """The ``kubeflow:`` section: what each task of the compiled spec requests (./gan compile-kfp only)."""
    trainer_gpu: bool = option(True, help="GanTrainer requests GPUs; false on clusters without them")
    trainer_gpu_type: str = option("nvidia.com/gpu", help="the GPU's Kubernetes resource name")
    trainer_gpu_count: int = option(1, minimum=1, help="GPUs GanTrainer requests")
    trainer_workers: int = option(1, minimum=1, maximum=64,
                                  help="GanTrainer's workers (MultiWorkerMirroredStrategy): >1 makes its pod the "
                                  "chief of that many, the others worker pods of an Indexed Job behind a headless "
                                  "Service, each with GanTrainer's resources (training/worker_pods.py); sets "
                                  "training.num_workers in the compiled spec")
    resources: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_TASK_RESOURCES))

    @classmethod
    def from_dict(cls, raw: dict | None) -> "KubeflowConfig":
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"kubeflow: expected a mapping, got {type(raw).__name__}")
        raw = dict(raw or {})
        resources_raw = raw.pop("resources", None)
        parsed = parse_options(cls, raw, "kubeflow")
        return dataclasses.replace(parsed, resources=_parse_task_resources(resources_raw))

    def resources_for(self, task: str) -> TaskResources:
        return self.resources.get(task, self.resources["default"])


def _parse_task_resources(raw) -> dict:
    """``{task: {cpu_request: ..., ...}}`` over DEFAULT_TASK_RESOURCES; task names are checked at compile time,
    against the compiled spec's tasks."""
    if raw is None:
        return dict(DEFAULT_TASK_RESOURCES)
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("kubeflow.resources: expected a mapping of task name -> {cpu_request, cpu_limit, "
                          "memory_request_gb, memory_limit_gb}")
    default_raw = raw.get("default") or {}
    default = parse_options(TaskResources, {**dataclasses.asdict(TaskResources()), **default_raw},
                            "kubeflow.resources.default")
    resources = {**DEFAULT_TASK_RESOURCES, "default": default}
    for task, entry in raw.items():
        if task != "default":
            resources[str(task)] = parse_options(TaskResources, {**dataclasses.asdict(default), **entry},
                                                 f"kubeflow.resources.{task}")
    return resources


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str
    data: DataConfig
    training: TrainConfig
    evaluation: EvaluationConfig
    push_destination: str             # versioned serving directory: <dir>/<unix time>/saved_model.pb
    output_dir: str                   # pipeline root, metadata DB, checkpoints and caches
    # (both absolute once loaded; unset in the file: serving/<pipeline_name>, outputs/<pipeline_name>)
    enable_cache: bool = True
    kubeflow: KubeflowConfig = dataclasses.field(default_factory=KubeflowConfig)
    push: PushConfig = dataclasses.field(default_factory=PushConfig)
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.output_dir, "cache")

    @property
    def statistics_store(self) -> str:
        """Every accepted span's statistics, for the drift check (common/drift.py)."""
        return os.path.join(self.pipeline_root, "span_statistics")

    def training_json(self) -> str:
        """The options the config sets (the trainer's recipe decides the rest from the data)."""
        return self.training.to_json(given_only=True)

    def evaluation_json(self) -> str:
        return json.dumps(self.evaluation.to_dict(), sort_keys=True)


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


# The config keys that hold paths: (section or None for the top level, key).
PATH_KEYS = (("data", "input_base"), ("data", "schema_file"), (None, "push_destination"), (None, "output_dir"))
DEFAULT_OUTPUT_DIRS = {"output_dir": "outputs", "push_destination": "serving"}  # + /<pipeline_name>


def _resolve(path, base: str):
    """A relative path joined to ``base`` (``~`` expanded); absolute paths, URIs (gs://, s3://) and
    non-strings (refused later, by key) stay as they are."""
    if not isinstance(path, str) or not path or "://" in path:
        return path
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def resolve_paths(raw: dict, base: str) -> dict:
    """A copy of ``raw`` (a config mapping, or ``--set`` overrides) whose PATH_KEYS are relative to ``base``."""
    raw = dict(raw)
    for section, key in PATH_KEYS:
        if section is None and key in raw:
            raw[key] = _resolve(raw[key], base)
        elif isinstance(raw.get(section), dict) and key in raw[section]:
            raw[section] = {**raw[section], key: _resolve(raw[section][key], base)}
    return raw


def load_config(path: str = DEFAULT_CONFIG, overrides: dict | None = None) -> PipelineConfig:
    """Reads, merges ``overrides`` (nested dict) into, and validates a pipeline config file. The
    file's paths are relative to its folder, the overrides' to the working directory."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = resolve_paths(raw, os.path.dirname(os.path.abspath(path)))
    for key, value in resolve_paths(overrides or {}, os.getcwd()).items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_config(raw)


def _training(section) -> TrainConfig:
    """The training section; a pipeline that names no architecture gets the recipe chosen for its data
    (``auto``: training/recipe.py, printed when the trainer starts)."""
    if isinstance(section, dict) and "architecture" not in section:
        section = {**section, "architecture": "auto"}
    elif section is None:
        section = {"architecture": "auto"}
    return TrainConfig.from_dict(section)


def parse_config(raw: dict) -> PipelineConfig:
    """Validates a config mapping; its relative paths (none, from ``load_config``) are relative to the
    working directory."""
    top = {"pipeline_name", "data", "training", "evaluation", "push_destination", "output_dir", "enable_cache",
           "kubeflow", "push", "synthetic"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(top))}")

    name = raw.get("pipeline_name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"pipeline_name: {name!r} must be 1-63 lowercase letters, digits or '-', "
                          "starting with a letter or digit")

    data = parse_options(DataConfig, raw.get("data"), "data")
    cwd = os.getcwd()
    data = dataclasses.replace(data, input_base=_resolve(data.input_base, cwd),
                               schema_file=_resolve(data.schema_file, cwd))
    if not os.path.isfile(data.schema_file):
        raise ConfigError(f"data.schema_file: file not found: {data.schema_file}")
    evaluation = EvaluationConfig.from_dict(raw.get("evaluation"))

    folders = {}
    for key, parent in DEFAULT_OUTPUT_DIRS.items():
        value = raw.get(key)
        if value is None:  # unset: this pipeline's own folder, never another pipeline's
            value = os.path.join(parent, name)
        elif not isinstance(value, str) or not value:
            raise ConfigError(f"{key}: expected a directory path, got {value!r}; leave it out for "
                              f"{parent}/<pipeline_name> under the working directory")
        folders[key] = _resolve(value, cwd)
    enable_cache = raw.get("enable_cache", True)
    if not isinstance(enable_cache, bool):
        raise ConfigError(f"enable_cache: expected true or false, got {enable_cache!r}")

    return PipelineConfig(
        pipeline_name=name,
        data=data,
        training=_training(raw.get("training")),
        evaluation=evaluation,
        push_destination=folders["push_destination"],
        output_dir=folders["output_dir"],
        enable_cache=enable_cache,
        kubeflow=KubeflowConfig.from_dict(raw.get("kubeflow")),
        push=parse_options(PushConfig, raw.get("push"), "push"),
        synthetic=parse_options(SyntheticConfig, raw.get("synthetic"), "synthetic"),
    )


def check_input_data(config: PipelineConfig) -> str:
    """Fails early, with a one-line message, when a span the run would ingest is missing or empty;
    returns the newest span's folder."""

    base = config.data.input_base
    if not os.path.isdir(base):
        raise ConfigError(f"data.input_base: folder not found: {base}")
    spans = sorted(int(d.split("-")[1]) for d in os.listdir(base)
                   if re.fullmatch(r"span-\d+", d) and os.path.isdir(os.path.join(base, d)))
    if not spans:
        raise ConfigError(f"data.input_base: {base} holds no span-<N>/ folder; put the data in {base}/span-1/")
    window = parse_span_policy(config.data.spans)
    selected = spans if window is None else spans[-window:]
    empty = [s for s in selected if not [e for e in os.listdir(os.path.join(base, f"span-{s}")) if not e.startswith(".")]]
    if empty:
        which = "the newest span folder" if empty == [spans[-1]] else f"data.spans {config.data.spans}: span folder(s)"
        raise ConfigError(f"data.input_base: {which} {', '.join(os.path.join(base, f'span-{s}') for s in empty)} "
                          f"{'is' if len(empty) == 1 else 'are'} empty; add images or remove the folder")
    return os.path.join(base, f"span-{spans[-1]}")

"""The pipeline's configuration: one YAML file a user edits (pipeline/configs/digits.yaml).

Loading validates every value and fails with a message that names the key, the bad value and
what is allowed. Relative paths are resolved against the repository root, so the pipeline runs
the same from any working directory.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re

import yaml

from components.evaluation import EvaluationConfig
from components.gan.config import TrainConfig
from components.options import ConfigError, option, parse_options

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "pipeline", "configs", "digits.yaml")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    input_base: str = option(help="holds span-1/, span-2/, ...; the newest span is ingested")
    schema_file: str = option(help="curated TFDV schema: image size, channels, label domain")
    train_buckets: int = option(4, minimum=1, help="train:eval split by hash buckets")
    eval_buckets: int = option(1, minimum=1)

    def check(self, prefix: str) -> None:
        for name in ("input_base", "schema_file"):
            if not getattr(self, name):
                raise ConfigError(f"{prefix}.{name} is required")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    pipeline_name: str
    data: DataConfig
    training: TrainConfig
    evaluation: EvaluationConfig
    push_destination: str             # versioned serving directory: <dir>/<unix time>/saved_model.pb
    output_dir: str                   # pipeline root, metadata DB, checkpoints and caches
    enable_cache: bool = True

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.output_dir, "cache")

    def training_json(self) -> str:
        return json.dumps(self.training.to_dict(), sort_keys=True)

    def evaluation_json(self) -> str:
        return json.dumps(self.evaluation.to_dict(), sort_keys=True)


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _resolve(path: str) -> str:
    """Repo-relative paths become absolute; absolute paths and URIs (gs://, s3://) stay as they are."""
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(REPO_ROOT, path))


def parse_overrides(pairs: list[str]) -> dict:
    """``--set`` items -> the nested dict ``load_config`` merges: ``SECTION.KEY=VALUE`` sets one key
    of a section (``training.train_steps=200``), ``KEY=VALUE`` a top-level one; values are YAML.
    ./gan run and the benchmarks all parse ``--set`` here."""
    overrides: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {pair!r}")
        section, _, name = key.rpartition(".")
        target = overrides.setdefault(section, {}) if section else overrides
        if not isinstance(target, dict):
            raise ConfigError(f"--set {pair!r}: {section!r} is not a section")
        target[name] = yaml.safe_load(value)
    return overrides


def load_config(path: str = DEFAULT_CONFIG, overrides: dict | None = None) -> PipelineConfig:
    """Reads, merges ``overrides`` (nested dict) into, and validates a pipeline config file."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_config(raw)


def parse_config(raw: dict) -> PipelineConfig:
    top = {"pipeline_name", "data", "training", "evaluation", "push_destination", "output_dir", "enable_cache"}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(top))}")

    name = raw.get("pipeline_name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"pipeline_name: {name!r} must be 1-63 lowercase letters, digits or '-', "
                          "starting with a letter or digit")

    data = parse_options(DataConfig, raw.get("data"), "data")
    data = dataclasses.replace(data, input_base=_resolve(data.input_base), schema_file=_resolve(data.schema_file))
    if not os.path.isfile(data.schema_file):
        raise ConfigError(f"data.schema_file: file not found: {data.schema_file}")
    evaluation = EvaluationConfig.from_dict(raw.get("evaluation"))

    for key in ("push_destination", "output_dir"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{key} is required (a directory path)")
    enable_cache = raw.get("enable_cache", True)
    if not isinstance(enable_cache, bool):
        raise ConfigError(f"enable_cache: expected true or false, got {enable_cache!r}")

    return PipelineConfig(
        pipeline_name=name,
        data=data,
        training=TrainConfig.from_dict(raw.get("training")),
        evaluation=evaluation,
        push_destination=_resolve(raw["push_destination"]),
        output_dir=_resolve(raw["output_dir"]),
        enable_cache=enable_cache,
    )


def check_input_data(config: PipelineConfig) -> str:
    """Fails early, with a clear message, when there is no span to ingest; returns the newest span."""
    base = config.data.input_base
    if not os.path.isdir(base):
        raise ConfigError(f"data.input_base: folder not found: {base}")
    spans = [d for d in os.listdir(base) if re.fullmatch(r"span-\d+", d) and os.path.isdir(os.path.join(base, d))]
    if not spans:
        raise ConfigError(f"data.input_base: {base} holds no span-<N>/ folder; put the data in {base}/span-1/")
    newest = max(spans, key=lambda d: int(d.split("-")[1]))
    newest_dir = os.path.join(base, newest)
    if not [e for e in os.listdir(newest_dir) if not e.startswith(".")]:
        raise ConfigError(f"data.input_base: the newest span folder {newest_dir} is empty")
    return newest_dir

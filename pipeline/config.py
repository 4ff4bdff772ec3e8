"""The pipeline's configuration: one YAML file a user edits (pipeline/configs/digits.yaml).

Loading validates every value and fails with a message that names the key, the bad value and
what is allowed. Relative paths are resolved against the repository root, so the pipeline runs
the same from any working directory.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from typing import Any

import yaml

from components.gan.config import ConfigError, TrainConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO_ROOT, "pipeline", "configs", "digits.yaml")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    input_base: str                   # holds span-1/, span-2/, ...; the newest span is ingested
    schema_file: str                  # curated TFDV schema: image size, channels, label domain
    train_buckets: int = 4            # train:eval split by hash buckets
    eval_buckets: int = 1


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    num_samples: int = 1000           # generated images per evaluation (same N for every model)
    seed: int = 0                     # latent seed, so candidate and baseline see the same latents
    max_fid: float | None = None      # absolute bound on the domain FID (None: no bound)
    max_fid_over_floor: float | None = 4.0  # bound on FID / (real-vs-real FID): scale-free
    min_recall: float | None = None
    regression_tolerance: float = 0.0  # candidate FID may exceed the serving model's by this much
    # Epochs of the domain classifier (FID features, class confidences). 20: ~96% of held-out real
    # digits get confidence >= 0.9 (8 epochs: 90%, 40: 97%), so the recognisability test is fair.
    classifier_epochs: int = 20


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
        return json.dumps(dataclasses.asdict(self.evaluation), sort_keys=True)


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _resolve(path: str) -> str:
    """Repo-relative paths become absolute; absolute paths and URIs (gs://, s3://) stay as they are."""
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(REPO_ROOT, path))


def _section(raw: dict, key: str, cls, required: tuple[str, ...] = ()) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}")
    for name in required:
        if value.get(name) in (None, ""):
            raise ConfigError(f"{key}.{name} is required")
    return dict(value)


def _check_number(where: str, value: Any, kind: type, minimum: float | None = None,
                  allow_none: bool = False, exclusive: bool = False) -> None:
    if value is None and allow_none:
        return
    ok_types = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types) or (kind is float and not math.isfinite(value)):
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'}, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ConfigError(f"{where}: must be {'>' if exclusive else '>='} {minimum}, got {value!r}")


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

    data = _section(raw, "data", DataConfig, required=("input_base", "schema_file"))
    data["input_base"] = _resolve(str(data["input_base"]))
    data["schema_file"] = _resolve(str(data["schema_file"]))
    if not os.path.isfile(data["schema_file"]):
        raise ConfigError(f"data.schema_file: file not found: {data['schema_file']}")
    for key in ("train_buckets", "eval_buckets"):
        if key in data:
            _check_number(f"data.{key}", data[key], int, 1)
    data_config = DataConfig(**data)

    evaluation = _section(raw, "evaluation", EvaluationConfig)
    for key, kind, minimum, allow_none, exclusive in [
        ("num_samples", int, 2, False, False), ("seed", int, 0, False, False),
        ("max_fid", float, 0, True, True), ("max_fid_over_floor", float, 0, True, True),
        ("min_recall", float, 0, True, False), ("regression_tolerance", float, 0, False, False),
        ("classifier_epochs", int, 1, False, False),
    ]:
        if key in evaluation:
            _check_number(f"evaluation.{key}", evaluation[key], kind, minimum, allow_none, exclusive)
    if (evaluation.get("min_recall") or 0) > 1:
        raise ConfigError(f"evaluation.min_recall: must be <= 1, got {evaluation['min_recall']!r}")

    training = raw.get("training", {})
    if not isinstance(training, dict):
        raise ConfigError(f"training: expected a mapping, got {type(training).__name__}")

    for key in ("push_destination", "output_dir"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{key} is required (a directory path)")
    enable_cache = raw.get("enable_cache", True)
    if not isinstance(enable_cache, bool):
        raise ConfigError(f"enable_cache: expected true or false, got {enable_cache!r}")

    return PipelineConfig(
        pipeline_name=name,
        data=data_config,
        training=TrainConfig.from_dict(training),
        evaluation=EvaluationConfig(**evaluation),
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

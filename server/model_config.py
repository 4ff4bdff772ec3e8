"""Which models a server serves: model names and the model config file (name -> push directory)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tfx_gan.common.layout import is_remote

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def validate_model_name(name: Any) -> str:
    """Model names are plain identifiers: letters, digits, '_', '-', '.', not starting with '.'
    or '-', no '..', no '/' or '\\' (names never become paths; they only select configured
    base paths, and this keeps URLs and logs unambiguous)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ValueError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, without '..'"
        )
    return name


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a push directory are served: TF Serving's ``model_version_policy``.

    ``latest`` (the default, with num_versions 1): the newest N complete versions; ``specific``:
    exactly the listed ones, as they become complete; ``all``: every complete version."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in ("latest", "specific", "all"):
            raise ValueError(f"model_version_policy {self.kind!r}: use latest, specific or all")
        if self.kind == "latest" and self.num_versions < 1:
            raise ValueError(f"model_version_policy latest num_versions {self.num_versions}: give 1 or more")
        if self.kind == "specific" and not self.versions:
            raise ValueError("model_version_policy specific lists no versions")

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        return "all" if self.kind == "all" else f"specific {list(self.versions)}"


@dataclass(frozen=True)
class ModelSource:
    """One served model: its push directory, version policy and version labels (label -> version)."""

    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: tuple[tuple[str, int], ...] = ()

    def __post_init__(self):
        for label, version in self.labels:
            if not _LABEL_RE.match(label):
                raise ValueError(f"version label {label!r}: use letters, digits, '_' or '-', starting with a letter")
            if self.policy.kind == "specific" and version not in self.policy.versions:
                raise ValueError(f"version label {label!r} names version {version}, which the policy "
                                 f"({self.policy.describe()}) does not serve")


def parse_model_config(path: str) -> dict[str, ModelSource]:
    """Reads a model config: TF Serving's ``--model_config_file`` (text-format ModelServerConfig,
    ``model_config_list { config { name: 'x' base_path: '/y' model_platform: 'tensorflow' } }``,
    parsed with TF Serving's own proto, so a file that works there works here), or JSON
    ``{"name": "base_path", ...}`` / ``{"models": [{"name": ..., "base_path": ...}]}`` whose entries
    are ModelConfig messages in proto3 JSON. Read from each entry: name, base_path,
    model_version_policy and version_labels. Relative base paths are resolved against the config
    file's directory."""
    from google.protobuf import json_format, text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(path, encoding="utf-8") as f:
        text = f.read()
    entries = []
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        if isinstance(data, dict) and "models" in data:
            for entry in data["models"]:
                if not isinstance(entry, dict) or "name" not in entry or "base_path" not in entry:
                    raise ValueError(f"{path}: each entry of 'models' needs 'name' and 'base_path'")
                try:
                    entries.append(json_format.ParseDict(entry, model_server_config_pb2.ModelConfig()))
                except json_format.ParseError as exc:
                    raise ValueError(f"{path}: model {entry.get('name')!r}: {exc}") from None
        elif isinstance(data, dict):
            for name, base_path in data.items():
                if not isinstance(base_path, str):
                    raise ValueError(f"{path}: model {name!r}: base_path must be a string")
                entries.append(model_server_config_pb2.ModelConfig(name=name, base_path=base_path))
        else:
            raise ValueError(f"{path}: expected a JSON object")
    else:
        try:
            config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
        except text_format.ParseError as exc:
            raise ValueError(f"{path}: not a TF Serving model config (model_config_list {{ config {{ name: 'gan' "
                             f"base_path: 'serving/gan' model_platform: 'tensorflow' }} }}): {exc}") from None
        if config.WhichOneof("config") != "model_config_list":
            raise ValueError(f"{path}: expected model_config_list {{ config {{ ... }} }}")
        entries = list(config.model_config_list.config)
    if not entries:
        raise ValueError(f"{path}: no models configured")
    models: dict[str, ModelSource] = {}
    base_dir = os.path.dirname(os.path.abspath(path))
    for entry in entries:
        name = validate_model_name(entry.name)
        if not entry.base_path:
            raise ValueError(f"{path}: model {name!r} has no base_path")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {name!r} has model_platform {entry.model_platform!r}; "
                             "only 'tensorflow' SavedModels are served")
        if name in models:
            raise ValueError(f"{path}: model {name!r} configured twice")
        base_path = entry.base_path
        if not is_remote(base_path) and not os.path.isabs(base_path):
            base_path = os.path.join(base_dir, base_path)
        try:
            models[name] = ModelSource(base_path, _policy(entry.model_version_policy),
                                       tuple(sorted(entry.version_labels.items())))
        except ValueError as exc:
            raise ValueError(f"{path}: model {name!r}: {exc}") from None
    return models


def _policy(proto) -> VersionPolicy:
    """VersionPolicy from a FileSystemStoragePathSourceConfig.ServableVersionPolicy message."""
    choice = proto.WhichOneof("policy_choice")
    if choice is None:
        return VersionPolicy()
    if choice == "latest":
        return VersionPolicy("latest", num_versions=proto.latest.num_versions or 1)
    if choice == "specific":
        return VersionPolicy("specific", versions=tuple(sorted(set(proto.specific.versions))))
    return VersionPolicy("all")

"""Which models a server serves: model names and the model config file (name -> push directory)."""
from __future__ import annotations

import json
import os
import re
from typing import Any

from tfx_gan.components.common.layout import is_remote

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


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


def parse_model_config(path: str) -> dict[str, str]:
    """Reads a model config: TF Serving's ``--model_config_file`` (text-format ModelServerConfig,
    ``model_config_list { config { name: 'x' base_path: '/y' model_platform: 'tensorflow' } }``,
    parsed with TF Serving's own proto, so a file that works there works here), or JSON
    ``{"name": "base_path", ...}`` / ``{"models": [{"name": ..., "base_path": ...}]}``.
    Only name and base_path are used (version policies etc. are ignored: the newest version is
    served). Relative base paths are resolved against the config file's directory."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    pairs: list[tuple[str, str]] = []
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        if isinstance(data, dict) and "models" in data:
            for entry in data["models"]:
                if not isinstance(entry, dict) or "name" not in entry or "base_path" not in entry:
                    raise ValueError(f"{path}: each entry of 'models' needs 'name' and 'base_path'")
                pairs.append((entry["name"], entry["base_path"]))
        elif isinstance(data, dict):
            pairs.extend(data.items())
        else:
            raise ValueError(f"{path}: expected a JSON object")
    else:
        pairs = _text_proto_models(path, text)
    if not pairs:
        raise ValueError(f"{path}: no models configured")
    models: dict[str, str] = {}
    base_dir = os.path.dirname(os.path.abspath(path))
    for name, base_path in pairs:
        validate_model_name(name)
        if not isinstance(base_path, str) or not base_path:
            raise ValueError(f"{path}: model {name!r} has no base_path")
        if name in models:
            raise ValueError(f"{path}: model {name!r} configured twice")
        if not is_remote(base_path) and not os.path.isabs(base_path):
            base_path = os.path.join(base_dir, base_path)
        models[name] = base_path
    return models


def _text_proto_models(path: str, text: str) -> list[tuple[str, str]]:
    """(name, base_path) of every ``config`` in a TF Serving model config file."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise ValueError(f"{path}: not a TF Serving model config (model_config_list {{ config {{ name: 'gan' "
                         f"base_path: 'serving/gan' model_platform: 'tensorflow' }} }}): {exc}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: expected model_config_list {{ config {{ ... }} }}")
    pairs = []
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ValueError(f"{path}: every config {{...}} block needs name and base_path")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{path}: model {entry.name!r} has model_platform {entry.model_platform!r}; "
                             "only 'tensorflow' SavedModels are served")
        pairs.append((entry.name, entry.base_path))
    return pairs

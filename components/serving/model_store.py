"""Loads and hot-swaps the newest pushed generator of a push directory (layout: components/layout.py).

Only the newest *complete* version is served (TF Serving's default "latest 1" policy): complete
as ``components.layout.check_version_dir`` defines it, and it loads. A version that fails to load
is remembered with the change times of its files and only retried when they change; the previous
model keeps serving meanwhile.

Swapping is one reference assignment under a lock; a request takes ``store.current()`` once and
uses that object to the end, so requests in flight finish on the model they started with.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from components import layout
from components.layout import check_version_dir, exists as _exists, list_versions

LOG = logging.getLogger("components.serving")

SERVING_DEFAULT = "serving_default"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ModelNotFound(LookupError):
    """Unknown model name or version, or no version loaded yet (HTTP 404)."""


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
    """Reads a model config: JSON ``{"name": "base_path", ...}`` or
    ``{"models": [{"name": ..., "base_path": ...}]}``, or TF Serving's text format
    ``model_config_list { config { name: 'x' base_path: '/y' model_platform: 'tensorflow' } }``.
    Only name and base_path are read (version policies etc. are ignored: the newest version is
    served). Relative base paths are resolved against the config file's directory."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    pairs: list[tuple[str, str]] = []
    stripped = text.lstrip()
    if stripped.startswith("{"):
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
        for block in re.findall(r"config\s*\{(.*?)\}", text, flags=re.S):
            name = re.search(r"\bname\s*:\s*[\"']([^\"']*)[\"']", block)
            base = re.search(r"\bbase_path\s*:\s*[\"']([^\"']*)[\"']", block)
            if not name or not base:
                raise ValueError(f"{path}: every config {{...}} block needs name and base_path")
            pairs.append((name.group(1), base.group(1)))
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
        if "://" not in base_path and not os.path.isabs(base_path):
            base_path = os.path.join(base_dir, base_path)
        models[name] = base_path
    return models


# --------------------------------------------------------------------------- loaded model
@dataclass(frozen=True)
class TensorSpecInfo:
    name: str
    dtype: str  # numpy dtype name, or "string" for DT_STRING
    shape: tuple  # ints, None for unknown dims

    @property
    def numpy_dtype(self):
        return "string" if self.dtype == "string" else np.dtype(self.dtype)


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    function: Callable
    inputs: dict  # name -> TensorSpecInfo, in signature order
    outputs: dict  # name -> TensorSpecInfo


@dataclass
class LoadedModel:
    name: str
    version: int
    path: str
    saved_model: Any
    signatures: dict  # name -> SignatureInfo
    signature_def_json: dict  # name -> SignatureDef as TF Serving writes it in JSON
    gan_metadata: dict | None
    loaded_at: float = field(default_factory=time.time)

    def signature(self, name: str) -> SignatureInfo:
        try:
            return self.signatures[name]
        except KeyError:
            raise ModelNotFound(
                f"signature {name!r} not found in model {self.name!r} version {self.version}; "
                f"available: {sorted(self.signatures)}"
            ) from None


def _spec_info(name: str, spec) -> TensorSpecInfo:
    import tensorflow as tf

    dtype = "string" if spec.dtype == tf.string else spec.dtype.as_numpy_dtype().dtype.name
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
    return TensorSpecInfo(name=name, dtype=dtype, shape=shape)


def _signature_defs_json(path: str) -> dict:
    """The SignatureDefs from saved_model.pb, as the proto3 JSON TF Serving's metadata API uses."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    import tensorflow as tf

    saved_model = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    if _exists(pb):
        with tf.io.gfile.GFile(pb, "rb") as f:
            saved_model.ParseFromString(f.read())
    else:
        from google.protobuf import text_format

        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pbtxt"), "r") as f:
            text_format.Parse(f.read(), saved_model)
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags] or list(saved_model.meta_graphs)
    if not graphs:
        return {}
    return {
        name: json_format.MessageToDict(sig, preserving_proto_field_name=True, including_default_value_fields=True)
        for name, sig in graphs[0].signature_def.items()
        if not name.startswith("__")
    }


def _warmup(model: LoadedModel) -> None:
    """One small call per signature so that the first real request does not pay for it."""
    import tensorflow as tf

    for sig in model.signatures.values():
        feed = {}
        for spec in sig.inputs.values():
            if spec.shape is None:
                break
            shape = [1 if d is None else d for d in spec.shape]
            if spec.dtype == "string":
                feed[spec.name] = tf.constant(np.full(shape, b"", dtype=object), dtype=tf.string)
            elif spec.dtype == "bool":
                feed[spec.name] = tf.zeros(shape, tf.bool)
            else:
                fill = 1 if (spec.shape == () and np.dtype(spec.dtype).kind in "iu") else 0
                feed[spec.name] = tf.constant(np.full(shape, fill, dtype=spec.dtype))
        else:
            try:
                sig.function(**feed)
            except Exception as exc:  # warm-up is best effort; real requests report errors
                LOG.debug("warm-up of %s/%s %s failed: %s", model.name, model.version, sig.name, exc)


def load_model(name: str, version: int, path: str, warmup: bool = True) -> LoadedModel:
    """Loads one version directory with tf.saved_model.load and describes its signatures."""
    import tensorflow as tf

    saved_model = tf.saved_model.load(path)
    signatures = {}
    for sig_name, fn in saved_model.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        if not isinstance(outputs, dict):
            outputs = {"output_0": outputs}
        signatures[sig_name] = SignatureInfo(
            name=sig_name,
            function=fn,
            inputs={k: _spec_info(k, s) for k, s in kwargs.items()},
            outputs={k: _spec_info(k, s) for k, s in outputs.items()},
        )
    gan_metadata = layout.read_metadata(path)
    model = LoadedModel(
        name=name,
        version=int(version),
        path=path,
        saved_model=saved_model,
        signatures=signatures,
        signature_def_json=_signature_defs_json(path),
        gan_metadata=gan_metadata,
    )
    if warmup:
        _warmup(model)
    return model


def load_latest(base_path: str, name: str = "model", settle_s: float = 0.0, warmup: bool = False) -> LoadedModel:
    """Loads the newest complete version that loads; raises ModelNotFound if there is none."""
    store = ModelStore(name, base_path, settle_s=settle_s, warmup=warmup)
    store.poll()
    model = store.current()
    if model is None:
        raise ModelNotFound(f"no complete, loadable version under {base_path!r}: {store.last_problem or 'empty'}")
    return model


# --------------------------------------------------------------------------- the store
class ModelStore:
    """Serves the newest complete version of one model name; ``poll()`` swaps in newer ones."""

    def __init__(self, name: str, base_path: str, settle_s: float = 1.0, warmup: bool = True):
        self.name = validate_model_name(name)
        self.base_path = base_path
        self.settle_s = float(settle_s)
        self.warmup = warmup
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._current: LoadedModel | None = None
        self._failed: dict[int, tuple] = {}  # version -> fingerprint when its load failed
        self._served_fingerprint: tuple = ()  # file paths and change times of the served version
        self.last_problem: str = ""
        self.clock: Callable[[], float] = time.time  # tests move it forward instead of sleeping

    def current(self) -> LoadedModel | None:
        return self._current  # one reference read: atomic

    def get(self, version: int | None = None) -> LoadedModel:
        model = self._current
        if model is None:
            raise ModelNotFound(f"Servable not found for request: Latest({self.name}): no version loaded yet")
        if version is not None and version != model.version:
            raise ModelNotFound(
                f"Servable not found for request: Specific({self.name}, {version}); "
                f"version {model.version} is being served"
            )
        return model

    def _swap(self, model: LoadedModel) -> None:
        with self._lock:
            old, self._current = self._current, model
        LOG.info(
            "model %s: serving version %d (%s)%s",
            self.name, model.version, model.path, f", was {old.version}" if old else "",
        )

    def poll(self) -> bool:
        """Loads the newest complete version if it is not the one served; True when swapped.

        ``last_problem`` then says why the newest version directory is not the one served."""
        with self._poll_lock:
            current = self._current
            versions = list_versions(self.base_path)
            problems: list[str] = [] if versions else [f"no version directories under {self.base_path}"]
            swapped = False
            for version, path in versions:
                complete, reason, fingerprint = check_version_dir(path, self.settle_s, now=self.clock())
                reloading = current is not None and version == current.version
                if reloading:
                    # Nothing newer is complete. Files of the served version that changed after
                    # it loaded (e.g. assets.extra/ arriving late from a non-atomic copy): reload it.
                    if not (complete and fingerprint and fingerprint != self._served_fingerprint):
                        break
                    LOG.info("model %s: the files of version %d changed; reloading it", self.name, version)
                if not complete:
                    LOG.debug("model %s: skipping version %d: %s", self.name, version, reason)
                    problems.append(f"version {version}: {reason}")
                    continue
                if self._failed.get(version) == fingerprint:
                    problems.append(f"version {version}: failed to load earlier and is unchanged")
                    if reloading:
                        break  # keep serving what loaded before
                    continue
                try:
                    model = load_model(self.name, version, path, warmup=self.warmup)
                except Exception as exc:
                    self._failed[version] = fingerprint
                    problems.append(f"version {version} failed to load: {exc}")
                    LOG.error("model %s: version %d failed to load, skipped: %s", self.name, version, exc)
                    if reloading:
                        break  # keep serving what loaded before
                    continue
                self._failed.pop(version, None)
                self._served_fingerprint = fingerprint
                if current is not None and version < current.version:
                    LOG.warning("model %s: version %d disappeared; falling back to %d", self.name, current.version, version)
                self._swap(model)
                swapped = True
                break
            self.last_problem = problems[0] if problems else ""
            return swapped

    def status(self, version: int | None = None) -> list[dict]:
        model = self.get(version)
        return [
            {
                "version": str(model.version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]


class Poller:
    """One background thread polling every store every ``interval_s`` seconds."""

    def __init__(self, stores: list[ModelStore], interval_s: float = 1.0):
        self.stores = stores
        self.interval_s = float(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_all(self) -> None:
        for store in self.stores:
            try:
                store.poll()
            except Exception:  # a broken file system must not kill the poller
                LOG.exception("model %s: polling %s failed", store.name, store.base_path)

    def start(self) -> None:
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="model-poller", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

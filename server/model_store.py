"""Loads and hot-swaps the pushed generators of a push directory (layout: common/layout.py).

The versions served are those TF Serving's ``model_version_policy`` selects among the *complete*
ones (complete as ``tfx_gan.common.layout.check_version_dir`` defines it, and it loads):
by default the newest one ("latest 1"); or the newest N, a specific list, or all. Version labels
(``stable`` -> 3) name loaded versions. A version that fails to load
is remembered with the change times of its files and only retried when they change; the previous
model keeps serving meanwhile. Only integer-named directories are versions
(``tfx_gan.common.layout.list_versions``), so hidden partial copies being published are ignored.
When the files of the served version change after it loaded (e.g. assets.extra/ arriving late
from a copy that is not atomic), it is loaded again once they settle.

Swapping is one reference assignment (of the whole version -> model dict) under a lock; a request
takes its model once (``store.get``) and uses that object to the end, so requests in flight finish on the model they started with.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from tfx_gan.common.layout import check_version_dir, list_versions
from tfx_gan.server.loaded_model import LoadedModel, ModelNotFound, load_model
from tfx_gan.server.model_config import VersionPolicy, validate_model_name

LOG = logging.getLogger("tfx_gan.server")


def load_latest(base_path: str, name: str = "model", settle_s: float = 0.0, warmup: bool = False) -> LoadedModel:
    """Loads the newest complete version that loads; raises ModelNotFound if there is none."""
    store = ModelStore(name, base_path, settle_s=settle_s, warmup=warmup)
    store.poll()
    model = store.current()
    if model is None:
        raise ModelNotFound(f"no complete, loadable version under {base_path!r}: {store.last_problem or 'empty'}")
    return model


class ModelStore:
    """Serves the versions of one model name that its version policy selects; ``poll()`` loads
    and unloads them as they are pushed and removed."""

    def __init__(self, name: str, base_path: str, settle_s: float = 1.0, warmup: bool = True,
                 policy: VersionPolicy | None = None, labels: dict[str, int] | None = None):
        self.name = validate_model_name(name)
        self.base_path = base_path
        self.settle_s = float(settle_s)
        self.warmup = warmup
        self.policy = policy or VersionPolicy()
        self.labels: dict[str, int] = dict(labels or {})
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models: dict[int, LoadedModel] = {}  # replaced whole, never mutated: one read is a snapshot
        self._fingerprints: dict[int, tuple] = {}  # version -> file paths and change times when it loaded
        self._failed: dict[int, tuple] = {}  # version -> fingerprint when its load failed
        self._refused: dict[int, str] = {}  # version -> why it failed to load (while its folder exists)
        self.last_problem: str = ""
        self._kept_from_memory: int | None = None  # a version served although its folder is gone
        self.clock: Callable[[], float] = time.time  # tests move it forward instead of sleeping

    def current(self) -> LoadedModel | None:
        """The newest loaded version, or None."""
        models = self._models
        return models[max(models)] if models else None

    def loaded_versions(self) -> list[int]:
        return sorted(self._models, reverse=True)

    def get(self, version: int | None = None, label: str | None = None) -> LoadedModel:
        """The model a request names: a version, a version label, or neither (the newest)."""
        models = self._models
        if label is not None:
            if label not in self.labels:
                known = f"; labels: {sorted(self.labels)}" if self.labels else "; this model has no version labels"
                raise ModelNotFound(f"Unrecognized servable version label: {label}{known}")
            version = self.labels[label]
        if not models:
            raise ModelNotFound(f"Servable not found for request: Latest({self.name}): no version loaded yet")
        if version is None:
            return models[max(models)]
        model = models.get(version)
        if model is None:
            named = f"label {label!r} names version {version}, which" if label is not None else f"version {version}"
            raise ModelNotFound(
                f"Servable not found for request: Specific({self.name}, {version}); {named} is not loaded "
                f"(serving {sorted(models, reverse=True)})"
            )
        return model

    def _swap(self, models: dict[int, LoadedModel], fingerprints: dict[int, tuple], listed: set[int]) -> None:
        with self._lock:
            old, self._models = self._models, models
            self._fingerprints = fingerprints
        for version in sorted(set(old) - set(models)):
            if version in listed:
                LOG.info("model %s: version %d unloaded (policy %s)", self.name, version, self.policy.describe())
            else:
                LOG.warning("model %s: version %d disappeared; unloaded", self.name, version)
        for version in sorted(models):
            if old.get(version) is not models[version]:
                LOG.info("model %s: serving version %d (%s)%s", self.name, version, models[version].path,
                         f"; serving {sorted(models, reverse=True)}" if len(models) > 1 else "")

    def poll(self) -> bool:
        """Loads the versions the policy selects and unloads the rest; True when anything changed.

        ``last_problem`` then says why the newest wanted version directory is not served."""
        with self._poll_lock:
            old = self._models
            listed = list_versions(self.base_path)
            versions = listed
            if self.policy.kind == "specific":
                versions = [(v, p) for v, p in listed if v in self.policy.versions]
            wanted = self.policy.num_versions if self.policy.kind == "latest" else len(versions)
            problems: list[str] = [] if versions else [f"no version directories under {self.base_path}"]
            models: dict[int, LoadedModel] = {}
            fingerprints: dict[int, tuple] = {}
            for version, path in versions:
                if len(models) >= wanted:
                    break
                model, fingerprint = self._load_or_keep(version, path, old.get(version), problems)
                if model is not None:
                    models[version], fingerprints[version] = model, fingerprint
            if not models and old:
                # Availability first, as TF Serving's default policy: with nothing newer loaded, the
                # newest version in memory serves on, even when its folder was pruned (a prune racing
                # the next push) or its successor failed to load.
                newest = max(old)
                models[newest], fingerprints[newest] = old[newest], self._fingerprints.get(newest, ())
                if newest not in {v for v, _ in listed}:
                    problems.insert(0, f"version {newest}: its folder is gone; served from memory until a newer "
                                       "version loads")
                    if self._kept_from_memory != newest:
                        LOG.warning("model %s: version %d's folder is gone and no other version is loaded; "
                                    "serving it from memory until one is", self.name, newest)
            self._refused = {v: why for v, why in self._refused.items() if v in {v for v, _ in listed}}
            self._kept_from_memory = next((v for v in models if v not in {v for v, _ in listed}), None)
            self.last_problem = problems[0] if problems else ""
            if models.keys() == old.keys() and all(models[v] is old[v] for v in models):
                return False
            self._swap(models, fingerprints, {v for v, _ in listed})
            return True

    def _load_or_keep(self, version: int, path: str, served: LoadedModel | None,
                      problems: list[str]) -> tuple[LoadedModel | None, tuple]:
        """(model, fingerprint) for one version directory: the served model while its files are
        unchanged, else a fresh load; (None, ()) when it is incomplete or fails to load."""
        complete, reason, fingerprint = check_version_dir(path, self.settle_s, now=self.clock())
        keep = (served, self._fingerprints.get(version, ())) if served is not None else (None, ())
        if served is not None:
            # Files of a served version that changed after it loaded (e.g. assets.extra/ arriving
            # late from a non-atomic copy) are loaded again once they settle; until then it serves on.
            if not (complete and fingerprint and fingerprint != self._fingerprints.get(version)):
                return keep
            LOG.info("model %s: the files of version %d changed; reloading it", self.name, version)
        if not complete:
            LOG.debug("model %s: skipping version %d: %s", self.name, version, reason)
            problems.append(f"version {version}: {reason}")
            return keep
        if self._failed.get(version) == fingerprint:
            problems.append(f"version {version}: failed to load earlier and is unchanged")
            return keep
        try:
            model = load_model(self.name, version, path, warmup=self.warmup)
        except Exception as exc:
            self._failed[version] = fingerprint
            self._refused[version] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            problems.append(f"version {version} failed to load: {exc}")
            LOG.error("model %s: version %d failed to load, skipped: %s", self.name, version, exc)
            return keep
        self._failed.pop(version, None)
        self._refused.pop(version, None)
        return model, fingerprint

    def refused_versions(self) -> dict[int, str]:
        """The versions whose folders are there but failed to load (or to warm up), and why."""
        return dict(self._refused)

    def status(self, version: int | None = None, label: str | None = None) -> list[dict]:
        """TF Serving's model_version_status: the version asked for, or every loaded one, newest first."""
        if version is None and label is None:
            self.get()  # raises when nothing is loaded
            chosen = [self._models[v] for v in self.loaded_versions()]
        else:
            chosen = [self.get(version, label)]
        statuses = [
            {"version": str(model.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for model in chosen
        ]
        if version is None and label is None:  # every version: the refused ones too, with why (state END)
            statuses += [{"version": str(v), "state": "END", "status": {"error_code": "UNKNOWN", "error_message": why}}
                         for v, why in sorted(self._refused.items(), reverse=True)]
        return statuses


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

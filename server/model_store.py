"""Loads and hot-swaps the newest pushed generator of a push directory (layout: components/common/layout.py).

Only the newest *complete* version is served (TF Serving's default "latest 1" policy): complete
as ``tfx_gan.components.common.layout.check_version_dir`` defines it, and it loads. A version that fails to load
is remembered with the change times of its files and only retried when they change; the previous
model keeps serving meanwhile. Only integer-named directories are versions
(``tfx_gan.components.common.layout.list_versions``), so hidden partial copies being published are ignored.
When the files of the served version change after it loaded (e.g. assets.extra/ arriving late
from a copy that is not atomic), it is loaded again once they settle.

Swapping is one reference assignment under a lock; a request takes ``store.current()`` once and
uses that object to the end, so requests in flight finish on the model they started with.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from tfx_gan.components.common.layout import check_version_dir, list_versions
from tfx_gan.server.loaded_model import LoadedModel, ModelNotFound, load_model
from tfx_gan.server.model_config import validate_model_name

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

"""What a model was trained on and why it was pushed, recorded where it outlives the pipeline root.

A run's *training identity* is the spans it trained on, the fingerprint of their files and a hash
of the training options. GanTrainer compares it with the identity in the serving version's
gan_metadata.json (``lineage``): equal means there is nothing new to learn, so the run ends
without training. This is the project's own check, not TFX's or KFP's cache, so it holds on
Kubeflow with caching off and on scheduled runs. GanEvaluator writes one run record per run into
the push directory (common/layout.py); Pusher copies the lineage into the version it pushes.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os

from tfx_gan import MODEL_PACKAGES, package_dir
from tfx_gan.common.hashing import stable_hash


def config_hash(training_json: str) -> str:
    """A hash of the training options (key order does not matter)."""
    return stable_hash(json.dumps(json.loads(training_json), sort_keys=True))


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the Python sources that shape a trained model (``tfx_gan.MODEL_PACKAGES``: ingestion
    and image transforms, training, the components): the same in a clone and in the container
    image, where no git metadata exists."""
    digest = hashlib.sha256()
    for package in MODEL_PACKAGES:
        root = package_dir(package)
        paths = []
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            paths += [os.path.join(directory, f) for f in files if f.endswith(".py")]
        for path in sorted(paths):
            digest.update(os.path.join(package, os.path.relpath(path, root)).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:12]


def examples_spans(examples) -> list[int]:
    """The spans an Examples artifact holds: ImageExampleGen records them as a JSON list, TFX's
    ExampleGen driver the newest one as the custom property ``span``."""
    recorded = examples.get_string_custom_property("spans")
    return json.loads(recorded) if recorded else [examples.get_int_custom_property("span")]


def training_identity(spans: list[int], data_fingerprint: str, training_json: str) -> dict:
    return {"spans": [int(s) for s in spans], "data_fingerprint": stable_hash(data_fingerprint),
            "config_hash": config_hash(training_json)}


def nothing_new(identity: dict, serving_metadata: dict | None) -> bool:
    """True when the serving model was trained on the same spans, files and options."""
    lineage = (serving_metadata or {}).get("lineage") or {}
    return all(lineage.get(key) == value for key, value in identity.items())


def describe(identity: dict) -> str:
    spans = ", ".join(map(str, identity["spans"]))
    return f"spans {spans}, data fingerprint {identity['data_fingerprint']}, config {identity['config_hash']}"

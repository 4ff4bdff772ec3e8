"""Small file helpers shared by the metric caches: atomic writes, local or remote paths.

Local paths use ``os``; paths with a scheme (``gs://...``) go through ``tf.io.gfile``, imported
only then so that the numpy-only metrics do not pay TensorFlow's import time.
"""
from __future__ import annotations

import os
import uuid


def is_remote(path: str) -> bool:
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def makedirs(path: str) -> None:
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes to a temporary sibling, then renames it over ``path``: readers see old or new, never half."""
    path = str(path)
    parent = os.path.dirname(path)
    if parent:
        makedirs(parent)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
    if is_remote(path):
        gfile = _gfile()
        with gfile.GFile(tmp, "wb") as f:
            f.write(data)
        gfile.rename(tmp, path, overwrite=True)
        return
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_through_local_file(path: str, write) -> None:
    """``write(local_path)`` writes a file (Keras saves only to local paths); it is then copied to
    ``path`` (local or remote) atomically."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        write(local)
        with open(local, "rb") as f:
            write_bytes_atomic(path, f.read())


def read_through_local_file(path: str, read):
    """``read(local_path)`` of a local copy of ``path`` (local or remote); returns what it returns."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        with open(local, "wb") as f:
            f.write(read_bytes(path))
        return read(local)

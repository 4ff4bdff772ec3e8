"""Where things live on disk: one definition of every directory and file name the project shares.

Two layouts, used by the components, the training/evaluation libraries' callers and the server:

TFX artifacts (what TFX components read and write)::

    <Examples uri>/Split-<name>/*.gz              gzipped TFRecords of the example format
    <Model uri>/Format-Serving/                   the generator's serving SavedModel (what Pusher copies)
    <Model uri>/train_config.json                 the training options, image shape and class count

A push directory (TFX Pusher's and TensorFlow Serving's layout)::

    <base_path>/<integer version>/saved_model.pb
                                 /variables/variables.index
                                 /variables/variables.data-00000-of-00001
                                 /assets.extra/gan_metadata.json        the model's contract for clients
                                 /assets.extra/keras/generator.keras    float32 Keras copies of G and D,
                                 /assets.extra/keras/discriminator.keras    for warm starts and evaluation
                                 /assets.extra/clusters.npz             a self-conditioned model's clusters

    <base_path>/.runs/<time>-<model id>.json     one record per pipeline run that reached the
                                                 evaluator: what it trained on, its metrics, the
                                                 decision, the version it pushed (``./gan runs``)

A pushed version's gan_metadata.json carries the run's ``lineage`` (common/lineage.py).
A GanTrainer that found nothing new to train on writes ``<Model uri>/SKIPPED.json`` (the reason)
instead of Format-Serving/.

TF Serving ignores ``assets.extra/`` and names that are not integers. A version is *complete* when saved_model.pb,
variables/variables.index and every variables.data shard exist and nothing in it changed during
the last ``settle_s`` seconds (Pusher copies file by file). Locally "changed" is the later of
mtime and ctime, so copies that preserve mtimes and renames count as changes.

Libraries take plain paths; only the code that turns artifacts into paths uses this module.
Paths may be local or ``gs://``/``s3://`` URIs (read through tf.io.gfile, imported lazily so that
config parsing and name checks need no TensorFlow).
"""
from __future__ import annotations

import logging
import json
import os
import re
import time

logger = logging.getLogger(__name__)

SPLIT_PREFIX = "Split-"
SERVING_DIR = "Format-Serving"
TRAIN_CONFIG_FILENAME = "train_config.json"
SKIPPED_FILENAME = "SKIPPED.json"
RUNS_DIR = ".runs"
METADATA_FILENAME = "gan_metadata.json"
_VERSION_RE = re.compile(r"^[0-9]{1,19}$")
MAX_VERSION = 2**63 - 1
_SHARD_RE = re.compile(r"^variables\.data-(\d{5})-of-(\d{5})$")


# --------------------------------------------------------------------------- TFX artifacts
def split_files(examples_uri: str, split: str) -> list[str]:
    """The TFRecord files of one split of an Examples artifact."""
    pattern = os.path.join(examples_uri, f"{SPLIT_PREFIX}{split}", "*")
    files = sorted(_gfile().glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord files for split '{split}' under {examples_uri}")
    return files


def split_names(artifact_uri: str) -> list[str]:
    """The split names (``train``, ``eval``) present under an artifact with per-split folders."""
    prefix_len = len(SPLIT_PREFIX)
    return sorted(os.path.basename(p.rstrip("/"))[prefix_len:]
                  for p in _gfile().glob(os.path.join(artifact_uri, f"{SPLIT_PREFIX}*")))


def serving_dir(model_uri: str) -> str:
    """The serving SavedModel inside a Model artifact (TFX's layout, what Pusher copies)."""
    return os.path.join(model_uri, SERVING_DIR)


def train_config_path(model_uri: str) -> str:
    return os.path.join(model_uri, TRAIN_CONFIG_FILENAME)


def _write_json(path: str, value) -> None:
    text = json.dumps(value, indent=2)
    if is_remote(path):
        with _gfile().GFile(path, "w") as f:
            f.write(text)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)  # readers see the old or the new record, never half


def _read_json(path: str):
    if is_remote(path):
        with _gfile().GFile(path, "r") as f:
            return json.load(f)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_skipped(model_uri: str, reason: str) -> None:
    """Marks a Model artifact as not trained, with the reason (no Format-Serving/ inside)."""
    _write_json(os.path.join(model_uri, SKIPPED_FILENAME), {"reason": reason})


def skipped_reason(model_uri: str) -> str | None:
    path = os.path.join(model_uri, SKIPPED_FILENAME)
    return _read_json(path)["reason"] if exists(path) else None


# --------------------------------------------------------------------------- inside a SavedModel dir
def metadata_path(saved_model_dir: str) -> str:
    """gan_metadata.json of a serving SavedModel (a Format-Serving dir or a pushed version)."""
    return os.path.join(assets_extra_dir(saved_model_dir), METADATA_FILENAME)


def assets_extra_dir(saved_model_dir: str) -> str:
    """Files that travel with a serving SavedModel and that TF Serving ignores."""
    return os.path.join(saved_model_dir, "assets.extra")


def keras_models_dir(saved_model_dir: str) -> str:
    """Where the float32 Keras generator and discriminator travel with the serving SavedModel."""
    return os.path.join(assets_extra_dir(saved_model_dir), "keras")


def keras_model_path(saved_model_dir: str, which: str) -> str:
    """``which``: "generator" or "discriminator"."""
    if which not in ("generator", "discriminator"):
        raise ValueError(f"which must be 'generator' or 'discriminator', got {which!r}")
    return os.path.join(keras_models_dir(saved_model_dir), f"{which}.keras")


def read_metadata(saved_model_dir: str) -> dict | None:
    """The model's gan_metadata.json, or None when it has none."""
    path = metadata_path(saved_model_dir)
    return _read_json(path) if exists(path) else None


def add_metadata(saved_model_dir: str, **fields) -> None:
    """Adds top-level fields to a model's gan_metadata.json (before it is published)."""
    _write_json(metadata_path(saved_model_dir), {**(read_metadata(saved_model_dir) or {}), **fields})


def describe_images(image_shape, num_classes: int | None, class_names=None, short: bool = False) -> str:
    """"28x28x1 images of 10 classes" (``short``: "28x28x1 of 10"), the class names when known;
    "unconditional" for a model without classes."""
    shape = "x".join(str(int(d)) for d in image_shape) if image_shape else "?x?x?"
    text = shape if short else f"{shape} images"
    if not num_classes:
        return f"{text}, unconditional"
    text += f" of {int(num_classes)}" if short else f" of {int(num_classes)} classes"
    return text + (f" ({', '.join(class_names)})" if class_names else "")


def incomparable_reason(serving: str, serving_metadata: dict | None, image_shape, num_classes: int | None,
                        class_names=None) -> str | None:
    """Why the generator ``serving`` ("serving version 17"; its gan_metadata.json) is no baseline or
    warm start for a model of ``image_shape`` and ``num_classes`` (None: unconditional), or None.
    Its images must have the same shape and the same classes (count, and names when both know
    them): a model of other data would be scored or fine-tuned against the wrong thing."""
    metadata = serving_metadata or {}
    theirs = (tuple(int(d) for d in metadata.get("image_shape") or ()), metadata.get("num_classes") or None,
              metadata.get("class_names"))
    ours = (tuple(int(d) for d in image_shape), num_classes or None, class_names)
    same_names = not (theirs[2] and ours[2]) or list(theirs[2]) == list(ours[2])
    if theirs[:2] == ours[:2] and same_names:
        return None
    show_names = not same_names
    return (f"{serving} makes "
            f"{describe_images(theirs[0], theirs[1], theirs[2] if show_names else None)}, this model "
            f"{describe_images(ours[0], ours[1], ours[2] if show_names else None, short=True)}")


# --------------------------------------------------------------------------- run records
def write_run_record(base_path: str, name: str, record: dict) -> str:
    """Writes ``<base_path>/.runs/<name>.json``; returns its path."""
    path = os.path.join(base_path, RUNS_DIR, f"{name}.json")
    _write_json(path, record)
    return path


def update_run_record(path: str, **fields) -> None:
    _write_json(path, {**_read_json(path), **fields})


def read_run_records(base_path: str) -> list[dict]:
    """Every run record under ``base_path``, newest first (by name: it starts with the time)."""
    directory = os.path.join(base_path, RUNS_DIR)
    if not exists(directory):
        return []
    names = _gfile().listdir(directory) if is_remote(directory) else os.listdir(directory)
    return [_read_json(os.path.join(directory, name))
            for name in sorted((n for n in names if n.endswith(".json")), reverse=True)]


# --------------------------------------------------------------------------- push directory
def _gfile():
    import tensorflow as tf  # imported lazily: config parsing and name checks need no TF

    return tf.io.gfile


def is_remote(path: str) -> bool:
    return "://" in path


def _changed_at(path: str) -> float | None:
    """When ``path`` last changed. Locally the later of mtime and ctime: ``cp -a``/``rsync``
    preserve mtimes, but writing, renaming or re-stamping a file always sets its ctime."""
    try:
        if is_remote(path):
            return _gfile().stat(path).mtime_nsec / 1e9
        st = os.stat(path)
        return max(st.st_mtime, st.st_ctime)
    except Exception:  # object stores have no directory entries: no time to check
        return None


def list_versions(base_path: str) -> list[tuple[int, str]]:
    """(version, path) of the integer-named subdirectories, newest first. Missing base: []."""
    try:
        if is_remote(base_path):
            gfile = _gfile()
            names = [n.rstrip("/") for n in gfile.listdir(base_path)]
            entries = [(n, os.path.join(base_path, n)) for n in names]
            entries = [(n, p) for n, p in entries if _VERSION_RE.match(n) and gfile.isdir(p)]
        else:
            with os.scandir(base_path) as it:
                entries = [(e.name, e.path) for e in it if _VERSION_RE.match(e.name) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except Exception as exc:  # tf.errors.NotFoundError and friends
        if type(exc).__name__ == "NotFoundError":
            return []
        raise
    # TF Serving's versions are int64: a longer number is not a version (and would sort above all)
    return sorted(((int(n), p) for n, p in entries if int(n) <= MAX_VERSION), reverse=True)


def _files_under(path: str) -> list[str]:
    if is_remote(path):
        return [os.path.join(d, f) for d, _, files in _gfile().walk(path) for f in files]
    return [os.path.join(d, f) for d, _, files in os.walk(path) for f in files]


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def check_version_dir(path: str, settle_s: float = 0.0, now: float | None = None) -> tuple[bool, str, tuple]:
    """(complete, reason, fingerprint) for one version directory.

    ``fingerprint`` (file paths and change times) lets callers notice that a failed version changed.
    ``now`` defaults to time.time()."""
    if not (exists(os.path.join(path, "saved_model.pb")) or exists(os.path.join(path, "saved_model.pbtxt"))):
        return False, "no saved_model.pb yet", ()
    variables = os.path.join(path, "variables")
    if not exists(os.path.join(variables, "variables.index")):
        return False, "no variables/variables.index yet", ()
    files = _files_under(path)
    shards = [m for m in (_SHARD_RE.match(os.path.basename(f)) for f in files) if m]
    if not shards:
        return False, "no variables.data shard yet", ()
    total = int(shards[0].group(2))
    present = {int(m.group(1)) for m in shards if int(m.group(2)) == total}
    if present != set(range(total)):
        return False, f"variables.data shards incomplete ({len(present)} of {total})", ()
    stamps = tuple(sorted((f, _changed_at(f)) for f in files))
    if settle_s > 0:
        now = time.time() if now is None else now
        times = [t for _, t in stamps if t is not None]
        dir_time = _changed_at(path)
        if dir_time is not None:
            times.append(dir_time)
        newest = max(times, default=None)
        if newest is not None and now - newest < settle_s:
            return False, f"modified {now - newest:.2f}s ago (settle time {settle_s:g}s)", stamps
    return True, "complete", stamps


def problem_loading(path: str) -> str | None:
    """Why a complete version cannot be used as a baseline or warm start, or None when it can.

    Cheap checks of what later code relies on: saved_model.pb parses as a SavedModel proto (a kill
    during a copy leaves it truncated), gan_metadata.json parses, the Keras copies exist. Loading
    the whole model would be the strongest check, but costs seconds per version."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    try:
        with _gfile().GFile(pb, "rb") as f:
            saved_model_pb2.SavedModel().ParseFromString(f.read())
    except Exception as exc:  # DecodeError, or a file that vanished
        return f"saved_model.pb does not parse ({type(exc).__name__})"
    try:
        if read_metadata(path) is None:
            return f"no assets.extra/{METADATA_FILENAME}"
    except (ValueError, OSError) as exc:
        return f"assets.extra/{METADATA_FILENAME} does not parse ({exc})"
    for which in ("generator", "discriminator"):
        if not exists(keras_model_path(path, which)):
            return f"no {os.path.relpath(keras_model_path(path, which), path)}"
    return None


def find_latest_usable(base_path: str, settle_s: float = 0.0, log=logger.info) -> tuple[int, str] | None:
    """(version, path) of the newest complete version that passes ``problem_loading``; versions
    that do not are skipped with a one-line warning (they never block a run)."""
    for version, path in list_versions(base_path):
        complete, reason, _ = check_version_dir(path, settle_s)
        problem = None if complete else reason
        if problem is None:
            problem = problem_loading(path)
        if problem is None:
            return version, path
        log(f"WARNING: skipping pushed version {version} in {base_path}: {problem}")
    return None


# --------------------------------------------------------------------------- publishing a version
PARTIAL_SUFFIX = ".partial"


def publish_version(source_dir: str, base_path: str, clock=time.time, metadata: dict | None = None) -> tuple[str, str]:
    """Copies a serving SavedModel into ``base_path`` as a new version; returns (version, path).
    ``metadata``: fields added to the copy's gan_metadata.json (the run's lineage).

    Locally the copy goes to a hidden ``.<version>.<pid>.partial`` folder beside the versions and is
    renamed into place when complete, so a version appears whole or not at all (a rename within one
    file system is atomic) and a kill leaves only a hidden folder, which the next publish removes
    once its process is gone. Servers and lookups ignore names that are not all digits.
    Remote stores (gs://, s3://) have no atomic directory rename: there the files are copied
    with saved_model.pb last, the order TF Serving relies on (as TFX's Pusher does).
    The version is the Unix time, or one more than the newest version if that is not later."""
    newest = max((v for v, _ in list_versions(base_path)), default=0)
    version = str(max(int(clock()), newest + 1))
    final = os.path.join(base_path, version)
    if is_remote(base_path):
        _copy_tree(source_dir, final, saved_model_last=True)
        if metadata:
            add_metadata(final, **metadata)
        return version, final
    os.makedirs(base_path, exist_ok=True)
    remove_stale_partials(base_path)
    partial = os.path.join(base_path, f".{version}.{os.getpid()}{PARTIAL_SUFFIX}")
    try:
        _copy_tree(source_dir, partial, saved_model_last=True)
        if metadata:
            add_metadata(partial, **metadata)
        _fsync_tree(partial)
        for _ in range(1000):
            try:
                os.rename(partial, final)
                break
            except OSError:
                # Another publisher took this number meanwhile (two pushes in one second): the next one.
                if not os.path.isdir(final):
                    raise
                version = str(int(version) + 1)
                final = os.path.join(base_path, version)
        else:
            raise OSError(f"no free version number after {version} under {base_path}")
    except BaseException:
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
        raise
    return version, final


def prune_versions(base_path: str, keep: int, protect: tuple[int, ...] = ()) -> list[str]:
    """Removes all but the newest ``keep`` versions, never those in ``protect`` (the serving one);
    returns the removed paths. Local push directories only."""
    import shutil

    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    removed = []
    for version, path in list_versions(base_path)[keep:]:
        if version not in protect:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def remove_stale_partials(base_path: str) -> list[str]:
    """Removes ``.<version>.<pid>.partial`` folders whose process no longer runs; returns them."""
    import shutil

    removed = []
    try:
        names = os.listdir(base_path)
    except FileNotFoundError:
        return removed
    for name in names:
        match = re.fullmatch(r"\.(\d+)\.(\d+)" + re.escape(PARTIAL_SUFFIX), name)
        if not match or _pid_alive(int(match.group(2))):
            continue
        shutil.rmtree(os.path.join(base_path, name), ignore_errors=True)
        removed.append(name)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _copy_tree(source: str, destination: str, saved_model_last: bool) -> None:
    gfile = _gfile()
    last = []
    for directory, _, files in gfile.walk(source):
        target_dir = os.path.join(destination, os.path.relpath(directory, source))
        gfile.makedirs(target_dir)
        for name in files:
            pair = (os.path.join(directory, name), os.path.join(target_dir, name))
            if saved_model_last and directory.rstrip("/") == source.rstrip("/") and name == "saved_model.pb":
                last.append(pair)
            else:
                gfile.copy(*pair, overwrite=True)
    for pair in last:
        gfile.copy(*pair, overwrite=True)


def _fsync_tree(path: str) -> None:
    """Flushes the copied files to disk before the rename makes them visible."""
    for directory, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(directory, name), "rb") as f:
                os.fsync(f.fileno())

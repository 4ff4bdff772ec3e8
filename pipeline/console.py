"""What a command prints: the project's own lines by default, every library's log with --verbose.

Quiet (the default):
- records of the project's loggers (tfx_gan.*) at INFO and up,
  one line each (warnings as "warning: ...");
- TFX's "Component X is running/finished" as one line each, the finish with its time;
- Python warnings raised by the project's own code as one "warning: ..." line; a library's are dropped;
- any other logger (absl, TFX, TensorFlow, Beam) only at ERROR, one line, without its traceback;
- TensorFlow's C++ log only at FATAL (its INFO/ERROR lines at import are CUDA plug-in noise), and
  what its C++ code writes to stderr while ``import tensorflow`` runs is dropped (replayed if the
  import fails): TensorFlow 2.21 logs a few INFO lines through Abseil before Abseil's logging is
  initialised, which no log level silences (abseil/abseil-cpp#1718).
--verbose: every logger at INFO with timestamps and every warning, as before this module existed.

Must run before TensorFlow is imported (TF_CPP_MIN_LOG_LEVEL is read once, at import; TensorFlow adds
its own stderr handler when the root logger has none).
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
import warnings

from tfx_gan import PACKAGES, package_dir
from tfx_gan.common.errors import UserError

PROJECT_LOGGERS = ("tfx_gan",)  # every module logs as tfx_gan.<package>.<module>
_PROJECT_DIRS = {name: package_dir(name) + os.sep for name in PACKAGES}

COMPONENT_RUNNING = "Component %s is running."  # tfx/orchestration/local/local_dag_runner.py
COMPONENT_FINISHED = "Component %s is finished."


def is_project_logger(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in PROJECT_LOGGERS)


class QuietFilter(logging.Filter):
    """Lets through the project's records and library errors; turns TFX's component start and
    finish records into the project's own lines."""

    def __init__(self):
        super().__init__()
        self.started: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if is_project_logger(record.name):
            return record.levelno >= logging.INFO
        if record.msg in (COMPONENT_RUNNING, COMPONENT_FINISHED) and record.args:
            component = record.args[0]
            if record.msg == COMPONENT_RUNNING:
                self.started[component] = record.created
                record.msg, record.args = "[run] %s started", (component,)
            else:
                seconds = record.created - self.started.pop(component, record.created)
                record.msg, record.args = "[run] %s finished in %.1f s", (component, seconds)
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        return record.levelno >= logging.ERROR


class OneLineFormatter(logging.Formatter):
    """The message's first line; "warning: "/"error: " in front of those levels; no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's malformed record must not stop the run
            message = str(record.msg)
        lines = message.strip().splitlines() or [""]
        more = f" (+{len(lines) - 1} lines; --verbose shows them)" if len(lines) > 1 else ""
        prefix = {logging.WARNING: "warning: ", logging.ERROR: "error: ", logging.CRITICAL: "error: "}
        return f"{prefix.get(record.levelno, '')}{lines[0]}{more}"


@contextlib.contextmanager
def native_stderr_captured():
    """File descriptor 2 (where C++ code writes) goes to a temporary file for the block; what was
    written is replayed to stderr if the block raises, else dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            os.write(2, capture.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first ``import tensorflow`` it removes itself and runs that
    import's module code under ``native_stderr_captured``."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run_module = spec.loader.exec_module

            def exec_module(module):
                with native_stderr_captured():
                    run_module(module)
            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def configure(verbose: bool) -> None:
    """Sets up logging and warnings for a command (see the module docstring)."""
    from absl import logging as absl_logging

    # Through absl's verbosity flag, not only its logger's level: TensorFlow's SavedModel export
    # sets the level to FATAL and back to the flag's value (WARNING by default), which silenced
    # TFX's component lines for the rest of the run after the first exported model.
    absl_logging.set_verbosity(absl_logging.INFO)
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(QuietFilter())
    handler.setFormatter(OneLineFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Explicit levels: a library that lowers the root logger's level must not silence these.
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    warnings.showwarning = _show_project_warning


def _show_project_warning(message, category, filename, lineno, file=None, line=None) -> None:
    path = os.path.realpath(filename)
    package = next((name for name, directory in _PROJECT_DIRS.items() if path.startswith(directory)), None)
    if package is None:
        return  # a library's deprecation or version notice: --verbose shows them
    relative = os.path.relpath(os.path.splitext(path)[0], _PROJECT_DIRS[package])
    logging.getLogger(f"tfx_gan.{package}." + relative.replace(os.sep, ".")).warning("%s", message)


def user_error_prefix(error: BaseException) -> str | None:
    """The CLI's one-line prefix for an error a user causes: every ``UserError`` (its ``label``:
    "config error" or "error") and the operating system's (a full disk, a missing file, a refused
    connection); None for anything else, which is a bug."""
    if isinstance(error, UserError):
        return error.label
    if isinstance(error, OSError):
        return "error"
    return None


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 600 else text[:597] + "..."

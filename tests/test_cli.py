"""The command line: quiet output by default (--verbose for everything), one-line errors with exit
code 2, and a --help that imports no TensorFlow.

Real processes throughout: logging is configured once per process, so each case runs in its own.
submit-kfp's unreachable host is a closed loopback port (no KFP cluster can run here).
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys

import pytest

from tfx_gan.pipeline import cli, console

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(REPO, "gan")
# Flags of modules this change does not own that still lack help text (data/bundled.py).


def python(code: str, *args: str, cwd: str = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def gan(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([GAN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


LOG_SOME_OF_EVERYTHING = """
import logging, os, sys, warnings
from tfx_gan.pipeline import console
console.configure(sys.argv[1] == "verbose")
from absl import logging as absl_logging
# What TensorFlow's SavedModel export does to absl's level: it must not silence what follows.
v = absl_logging.get_verbosity(); absl_logging.set_verbosity(absl_logging.FATAL); absl_logging.set_verbosity(v)
absl_logging.info("Component %s is running.", "GanTrainer")
absl_logging.info("a protobuf dump\\n  with more lines")
absl_logging.warning("ArtifactQuery.property_predicate is not supported.")
logging.getLogger("apache_beam.typehints").info("Using Any for unsupported type")
logging.getLogger("tfx_gan.training.train").info("step 100/200  d_loss 1.0")
logging.getLogger("tfx_gan.pipeline.x").warning("no comparable baseline: serving version 3")
warnings.warn("a library's deprecation", FutureWarning)
warnings.warn_explicit("FID is unreliable with fewer samples", UserWarning,
                       os.path.join(console.package_dir("metrics"), "fid.py"), 1)
absl_logging.info("Component %s is finished.", "GanTrainer")
try:
    raise RuntimeError("first line\\nsecond line")
except RuntimeError:
    logging.getLogger("tfx.launcher").exception("Execution failed")
"""


def test_quiet_by_default_shows_the_projects_lines_only():
    result = python(LOG_SOME_OF_EVERYTHING, "quiet")
    lines = result.stderr.splitlines()
    assert lines[0] == "[run] GanTrainer started"
    assert lines[1:5] == ["step 100/200  d_loss 1.0", "warning: no comparable baseline: serving version 3",
                          "warning: FID is unreliable with fewer samples",
                          lines[4]]
    assert lines[4].startswith("[run] GanTrainer finished in ") and lines[4].endswith(" s")
    assert lines[5:] == ["error: Execution failed"], result.stderr  # one line, no traceback


def test_verbose_shows_everything():
    result = python(LOG_SOME_OF_EVERYTHING, "verbose")
    for fragment in ("INFO Component GanTrainer is running.", "a protobuf dump", "property_predicate",
                     "Using Any for unsupported type", "FutureWarning: a library's deprecation", "Traceback"):
        assert fragment in result.stderr, (fragment, result.stderr)


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["compile-kfp", "--help"], ["submit-kfp", "--help"]])
def test_help_imports_no_tensorflow(argv):
    result = python("import sys\nfrom tfx_gan.pipeline import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n"
                    "    pass\nprint('tensorflow' in sys.modules, 'tfx' in sys.modules)", *argv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ./gan")
    assert result.stdout.splitlines()[-1] == "False False"


def test_every_flag_of_every_command_has_help():
    missing = []
    for name, (module_name, _) in cli.COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module_name).add_arguments(parser)
        missing += [(name, action.option_strings[0] if action.option_strings else action.dest)
                    for action in parser._actions if not action.help and not isinstance(action, argparse._HelpAction)]
    assert missing == []


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_compile_kfp_refuses_a_local_root_in_one_line(tmp_path):
    line = one_line_error(gan("compile-kfp", "--root", str(tmp_path), "--image", "i:1", cwd=str(tmp_path)))
    assert "--root must be a gs:// or s3:// URI" in line and "./gan launch-kfp" in line
    assert os.listdir(tmp_path) == []  # nothing written


def test_submit_kfp_to_an_unreachable_host_is_one_line(tmp_path):
    package = tmp_path / "p.yaml"
    package.write_text("pipelineInfo: {name: gan}\nroot: {dag: {tasks: {}}}\n")
    line = one_line_error(gan("submit-kfp", "--host", "http://127.0.0.1:9", "--package", "p.yaml", "--root",
                              "gs://b/gan", cwd=str(tmp_path)))
    assert line.startswith("error: cannot reach the KFP API at http://127.0.0.1:9 (") and "check --host" in line


def test_serve_refuses_a_port_out_of_range_in_one_line(tmp_path):
    line = one_line_error(gan("serve", "--model_base_path", str(tmp_path), "--port", "99999", cwd=str(tmp_path)))
    assert "--port 99999 is not a TCP port" in line


@pytest.mark.parametrize("args, fragment", [
    (["--cron", "0 2 * * *"], "--cron needs six fields"),
    (["--package", "missing.yaml"], "--package: cannot read missing.yaml"),
    (["--root", "/tmp/gan"], "--root must be a gs:// or s3:// URI"),
])
def test_submit_kfp_checks_its_arguments_before_connecting(tmp_path, args, fragment):
    (tmp_path / "p.yaml").write_text("pipelineInfo: {name: gan}\nroot: {dag: {tasks: {}}}\n")
    given = {"--host": "http://127.0.0.1:9", "--package": "p.yaml", "--root": "gs://b/gan"}
    given.update(zip(args[::2], args[1::2]))
    line = one_line_error(gan("submit-kfp", *[x for kv in given.items() for x in kv], cwd=str(tmp_path)))
    assert fragment in line


def test_unexpected_errors_are_one_line_and_verbose_keeps_the_traceback(tmp_path):
    (tmp_path / "boom_command.py").write_text(
        "def add_arguments(parser):\n    pass\n\ndef run(args):\n    raise KeyError('missing')\n")
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nfrom tfx_gan.pipeline import cli\n"
            "cli.COMMANDS['boom'] = ('boom_command', 'raises')\nsys.argv[1:] = sys.argv[2:]\nsys.exit(cli.main())")
    quiet = python(code, str(tmp_path), "boom")
    assert quiet.returncode == 1
    assert quiet.stderr.strip().splitlines() == [
        "error: KeyError: 'missing' (a bug: run again with --verbose for the traceback and report it)"]
    verbose = python(code, str(tmp_path), "boom", "--verbose")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr and "KeyError: 'missing'" in verbose.stderr


def test_user_errors_are_recognised_by_their_base_class():
    from tfx_gan.common.errors import UserError
    from tfx_gan.common.options import ConfigError
    from tfx_gan.pipeline.local_runner import PipelineBusyError

    assert console.user_error_prefix(PipelineBusyError("busy")) == "config error"
    assert console.user_error_prefix(ConfigError("bad")) == "config error"
    assert console.user_error_prefix(FileNotFoundError(2, "No such file")) == "error"
    assert console.user_error_prefix(KeyError("x")) is None

    class BrandNewProblem(UserError):
        """A new error class: it needs nothing registered anywhere to print as one line."""

    assert console.user_error_prefix(BrandNewProblem("a new kind of bad input")) == "error"


def test_every_error_a_user_can_cause_derives_from_user_error():
    import importlib

    from tfx_gan.common.errors import UserError

    for path in ("common.options.ConfigError", "common.validation_gate.DataValidationError",
                 "data.ingest.IngestionError", "data.image_transform.TransformError",
                 "training.hooks.TrainingDivergedError", "training.hooks.CheckpointWriteError",
                 "training.multi_worker.WorkerFailed", "server.generate.GenerateError",
                 "kubeflow.emulator.launcher.LaunchError", "kubeflow.emulator.image.DockerfileError",
                 "pipeline.local_runner.PipelineBusyError"):
        module, name = path.rsplit(".", 1)
        assert issubclass(getattr(importlib.import_module(f"tfx_gan.{module}"), name), UserError), path


def test_hyphenated_flags_mean_the_underscored_ones():
    from tfx_gan.pipeline.cli import underscored_flags

    assert underscored_flags(["generate", "--push-dir", "serving/x", "--grid-max=4", "--set", "a.b=c-d",
                              "--", "--not-a-flag"]) == \
        ["generate", "--push_dir", "serving/x", "--grid_max=4", "--set", "a.b=c-d", "--", "--not-a-flag"]


def test_what_cpp_code_writes_while_tensorflow_imports_is_dropped_unless_the_import_fails():
    """console's capture of file descriptor 2, where TensorFlow 2.21's C++ code writes Abseil's
    pre-initialisation INFO lines: dropped when the block succeeds, replayed when it raises;
    Python's own stderr is untouched afterwards."""
    result = python(
        "import os, sys\n"
        "from tfx_gan.pipeline import console\n"
        "with console.native_stderr_captured():\n"
        "    os.write(2, b'native noise\\n')\n"
        "try:\n"
        "    with console.native_stderr_captured():\n"
        "        os.write(2, b'native words before a failure\\n')\n"
        "        raise ImportError('x')\n"
        "except ImportError:\n"
        "    pass\n"
        "print('python stderr', file=sys.stderr)\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "native words before a failure\npython stderr\n"

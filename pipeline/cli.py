"""Command line of the project (``./gan <command>``; ``./gan --help`` lists the commands)."""
from __future__ import annotations

import argparse
import importlib
import sys

from tfx_gan.pipeline import console

# Each command's module is imported only when that command runs (the one place imports are
# deferred by design): TensorFlow takes 10-20 s to import and TFX 20-70 s, and ./gan --help lists
# every command without either (tests/test_cli.py).
COMMANDS = {
    "run": ("tfx_gan.pipeline.run", "the whole TFX pipeline (default config: the bundled digits)"),
    "make-data": ("tfx_gan.data.bundled", "write a bundled dataset (digits, photo_patches) as PNG spans under data/"),
    "make-schema": ("tfx_gan.data.schema", "write a curated TFDV schema (image size, channels, labels) for a span"),
    "compile-kfp": ("tfx_gan.kubeflow.compile", "compile the pipeline for Kubeflow Pipelines (PipelineSpec YAML)"),
    "launch-kfp": ("tfx_gan.kubeflow.emulator.launcher", "run a compiled spec here as open-source KFP would (before submit-kfp)"),
    "submit-kfp": ("tfx_gan.kubeflow.submit", "submit the compiled pipeline to KFP, once or on a cron schedule"),
    "watch": ("tfx_gan.pipeline.watch", "run the pipeline whenever a new span arrives (polls data.input_base)"),
    "report": ("tfx_gan.pipeline.report", "one self-contained HTML page per pipeline run: data, training, evaluation, lineage"),
    "tensorboard": ("tfx_gan.pipeline.tensorboard", "start TensorBoard on a pipeline's training logs"),
    "runs": ("tfx_gan.pipeline.history", "the pipeline's runs, newest first: data, parent, metrics, decision, version pushed"),
    "rollback": ("tfx_gan.pipeline.rollback", "serve an earlier version again (published as the newest version)"),
    "serve": ("tfx_gan.server.server", "serve a push directory over TF Serving's REST and gRPC APIs and KServe V2"),
    "generate": ("tfx_gan.server.generate", "write generated images from a push directory or a server"),
    "augment": ("tfx_gan.server.augment", "write N generated images per class as a span folder (synthetic data)"),
    "docs": ("tfx_gan.pipeline.docs", "rewrite docs/configuration.md from the option definitions and registries"),
}


VERBOSE_HELP = "every library's log (absl, TFX, TensorFlow, Beam) and full tracebacks"
HELP_FLAGS = ("-h", "--help")


def underscored_flags(argv: list[str]) -> list[str]:
    """``--push-dir`` -> ``--push_dir`` (TFX's and kfp's CLIs take hyphens; our flags are spelled with
    underscores): every ``--long-flag`` before a ``--`` separator, its ``=value`` kept as given."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if arg.startswith("--") and "-" in arg[2:].split("=", 1)[0]:
            name, sep, value = arg.partition("=")
            arg = "--" + name[2:].replace("-", "_") + sep + value
        out.append(arg)
    return out


def main(argv: list[str] | None = None, prog: str = "./gan") -> int:
    """Runs a command line. With ``argv`` None (a process of its own) it also sets up logging and
    warnings (pipeline/console.py); a caller passing ``argv`` keeps its own."""
    command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in HELP_FLAGS:
        argv = ["run", *argv]
    verbose = "--verbose" in argv
    if command_line:  # before any command module is imported: TensorFlow reads its log level at import
        console.configure(verbose)

    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("test", help="run the test suite (handled by ./gan itself)")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == argv[0]:  # only the chosen command's module: ./gan --help imports none
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
            command_parser.set_defaults(func=module.run)
    args = parser.parse_args(underscored_flags(argv))
    if not hasattr(args, "func"):  # `./gan test` reached Python: ./gan handles it before
        parser.error("`test` runs through ./gan (./gan test [pytest args])")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every error ends as one line unless --verbose
        if verbose:
            raise
        prefix = console.user_error_prefix(e)
        if prefix:
            print(f"{prefix}: {console.one_line(e)}", file=sys.stderr)
            return 2
        print(f"error: {type(e).__name__}: {console.one_line(e)} (a bug: run again with --verbose for the "
              "traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

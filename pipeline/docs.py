"""The generated page of the docs: docs/configuration.md, written from the option dataclasses
(their defaults, rules and ``help``) and the registries (architectures, losses, extractors,
metrics), so the reference cannot fall behind the code: tests/test_docs.py fails when the file
differs from what this module writes. ``./gan docs`` rewrites it after an option changes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from tfx_gan.common.options import range_rule
from tfx_gan.pipeline.config import REPO_ROOT
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.training.config import TrainConfig
from tfx_gan.training.losses import LOSSES
from tfx_gan.training.models import ARCHITECTURES
from tfx_gan.metrics.extractors import EXTRACTORS
from tfx_gan.metrics.sample_metrics import METRICS
from tfx_gan.pipeline.config import KubeflowConfig, PushConfig, SyntheticConfig, TaskResources
from tfx_gan.data.config import DataConfig

CONFIGURATION_PAGE = os.path.join(REPO_ROOT, "docs", "configuration.md")

# The top-level keys are plain fields of PipelineConfig (they are not parsed by parse_options).
TOP_LEVEL = (
    ("pipeline_name", "required", "lowercase letters, digits and '-', at most 63", "names the pipeline and, "
     "unless set, its folders"),
    ("output_dir", "`outputs/<pipeline_name>`", "a folder", "pipeline root, ML Metadata, checkpoints, caches"),
    ("push_destination", "`serving/<pipeline_name>`", "a folder", "the versioned serving directory Pusher writes"),
    ("enable_cache", "`true`", "true, false", "TFX's cache: unchanged inputs re-use the outputs"),
)

INTRO = """# Configuration reference

A pipeline is configured by one YAML file (`pipeline/configs/digits.yaml` is the default; copy it
for your own data). `--set SECTION.KEY=VALUE` overrides one value for one run (`./gan run`,
`./gan compile-kfp`, the benchmarks). Every value is checked when the config loads: an unknown
key or a value outside its rule fails at once with the key named and what is allowed. Paths in a
file are relative to the file's folder; paths on the command line to the working directory.

This page is generated from the option definitions (`./gan docs` rewrites it; the test suite
fails when it is stale). "default" is the value a key takes when the file leaves it out; the
shipped `digits.yaml` sets several differently (its lean DCGAN, for one). How the options work together: [Training](training.md),
[Evaluation](evaluation.md), [Data](data.md), [Kubeflow](kubeflow.md).
"""


def _yaml_value(value) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(map(str, value)) + "]`"
    if value == "":
        return "`''`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _allowed(meta: dict, typ) -> str:
    if str(typ) in ("bool", "<class 'bool'>"):
        return "`true`, `false`"
    choices = meta.get("choices")
    if choices is not None:
        return ", ".join(f"`{c}`" for c in (choices() if callable(choices) else choices))
    return range_rule(meta) or ""


def options_table(cls, prefix: str) -> str:
    rows = ["| key | default | allowed | what |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:  # a nested section (kubeflow.resources), documented on its own
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append(f"| `{prefix}.{f.name}` | {_yaml_value(default)} | {_allowed(dict(f.metadata), f.type)} | "
                    f"{f.metadata['help']} |")
    return "\n".join(rows)


def configuration_reference() -> str:

    parts = [INTRO, "## Top level\n", "| key | default | allowed | what |\n|---|---|---|---|"]
    parts[-1] += "".join(f"\n| `{k}` | {d} | {a} | {w} |" for k, d, a, w in TOP_LEVEL) + "\n"
    for title, cls, prefix, note in (
            ("data", DataConfig, "data", "Where the images are and how they become training images ([Data](data.md))."),
            ("training", TrainConfig, "training", "GanTrainer's options ([Training](training.md)). A config that names "
             "no `architecture` gets `auto`."),
            ("evaluation", EvaluationConfig, "evaluation", "ReferenceStatsGen's and GanEvaluator's options, the blessing "
             "thresholds among them ([Evaluation](evaluation.md))."),
            ("push", PushConfig, "push", "What Pusher keeps."),
            ("synthetic", SyntheticConfig, "synthetic", "Generated training data as a pipeline output "
             "([Evaluation](evaluation.md), \"Does the generator help?\")."),
            ("kubeflow", KubeflowConfig, "kubeflow", "What the compiled Kubeflow spec's tasks request "
             "([Kubeflow](kubeflow.md))."),
            ("kubeflow.resources", TaskResources, "kubeflow.resources.TASK", "Per task (`default`: every task not "
             "named; GanTrainer's defaults are 4 / 8 CPU and 8 / 16 GB)."),
    ):
        parts.append(f"## `{title}`\n\n{note}\n\n{options_table(cls, prefix)}\n")
    parts.append("## Registries\n\nThe names `training.architecture`, `training.loss` and `evaluation.extractors` "
                 "accept, and the metrics every evaluation reports: each a registry in the code "
                 "(`common/registry.py`), a new entry one decorated function.\n")
    for registry in (ARCHITECTURES, LOSSES, EXTRACTORS, METRICS):
        parts.append(registry.markdown_table() + "\n")
    return "\n".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/configuration.md is stale; write nothing")


def run(args: argparse.Namespace) -> int:
    text = configuration_reference()
    if args.check:
        current = open(CONFIGURATION_PAGE, encoding="utf-8").read() if os.path.exists(CONFIGURATION_PAGE) else ""
        if current != text:
            print(f"error: {CONFIGURATION_PAGE} is stale: run ./gan docs", file=sys.stderr)
            return 1
        print(f"{CONFIGURATION_PAGE} is current")
        return 0
    with open(CONFIGURATION_PAGE, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"written {CONFIGURATION_PAGE}")
    return 0

"""``./gan report [RUN]``: one self-contained HTML page per pipeline run (the newest by default).

Every artifact is found through ML Metadata (pipeline/history.py: the run's pipeline_run context,
its executions and their input/output events), and the page is written to
``<output_dir>/reports/<run id>.html``. It reads offline: images are inline PNG data URIs, the CSS
is inline, there is no JavaScript. Sections:

- data: TFDV's statistics of each split, drawn as TFDV's facets overview draws them (TFDV's own
  HTML loads the facets web component from the network through HTML imports, which Chromium no
  longer supports), ExampleValidator's anomalies, a grid of real training images;
- training: loss and D-accuracy curves, FID during training, the sample grids across training;
- evaluation: every metric of the candidate and of the serving baseline with their spread over
  the draws, the decision and its reason, the samples per class;
- lineage: spans, data fingerprint, config, code version, parent model, where it was pushed.

A run that stopped early gets a page too: it says where it stopped, and each section says what
its component did not produce.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import time

from markupsafe import Markup, escape

from tfx_gan.pipeline.history import PipelineRun, artifact_property, open_store, read_runs, run_outcome
from tfx_gan.training.samples import pyplot
from tfx_gan.training.samples import image_grid
from tfx_gan.common import layout
from tfx_gan.data import schema_utils
from tfx_gan.data.example_format import image_dataset
from tfx_gan.common.validation_gate import anomaly_messages
from tfx_gan.components.image_example_gen import LABEL_NAMES_PROPERTY
from tfx_gan.training import hooks
from tfx_gan.evaluation import tfma_result
from tfx_gan.pipeline.config import DEFAULT_CONFIG
from tfx_gan.common.options import ConfigError
from tfx_gan.pipeline.config import load_config

REPORTS_DIR = "reports"
REAL_IMAGES = 48
NOT_RECORDED = "not recorded"

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 24px 48px; color: #222; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { border-bottom: 2px solid #ddd; margin-top: 36px; }
h3 { margin: 20px 0 6px; font-size: 16px; }
table { border-collapse: collapse; margin: 6px 0 12px; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: right; vertical-align: middle; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; font-family: monospace; }
.status { padding: 8px 12px; border-radius: 4px; margin: 10px 0; }
.ok { background: #e6f4ea; } .bad { background: #fce8e6; } .note { color: #666; font-style: italic; }
img.pixels { image-rendering: pixelated; } figure { display: inline-block; margin: 4px; text-align: center; }
figcaption { font-size: 12px; color: #444; } pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
nav a { margin-right: 14px; } table.fields td { text-align: left; }
"""


# --------------------------------------------------------------------------- HTML pieces
# One escaping point: every piece of text goes through escape() (markupsafe, Jinja's own), which
# leaves Markup (HTML this module built) as it is. table() escapes every cell, so a cell is either
# plain text or Markup, and nothing reaches the page unescaped by accident. Pieces are joined with
# f-strings and "".join, never `str + Markup` (which would escape the str side).
def esc(value) -> Markup:
    return escape(value)


def png_tag(png: bytes, alt: str, width: int | None = None, pixels: bool = False) -> Markup:
    size = f' width="{width}"' if width else ""
    kind = ' class="pixels"' if pixels else ""
    return Markup(f'<img alt="{esc(alt)}"{size}{kind} src="data:image/png;base64,{base64.b64encode(png).decode()}">')


def png_file_tag(path: str, alt: str, width: int | None = None, pixels: bool = False) -> Markup:
    with open(path, "rb") as f:
        return png_tag(f.read(), alt, width, pixels)


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def table(header: list[str] | None, rows: list[list], first_is_name: bool = True, kind: str = "") -> str:
    head = "" if header is None else "".join(f'<th{" class=name" if i == 0 and first_is_name else ""}>{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td{" class=name" if i == 0 and first_is_name else ""}>{esc(cell)}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    head = f"<tr>{head}</tr>" if head else ""
    return f'<table class="{kind}">{head}{body}</table>'


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return esc(f"{value:.{digits}g}")
    return esc(value)


def figure_png(draw, width_in: float, height_in: float) -> bytes:
    """A Matplotlib figure drawn by ``draw(fig)`` as PNG bytes."""

    plt = pyplot()
    fig = plt.figure(figsize=(width_in, height_in), dpi=100)
    try:
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def grid_png(images, columns: int | None = None) -> bytes:
    """Images in [-1, 1] as one PNG grid (the trainer's and evaluator's tiling)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image_grid(images, columns)).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- data
def bars_png(labels: list[str], counts: list[float], horizontal: bool) -> bytes:
    def draw(fig):
        ax = fig.add_subplot(1, 1, 1)
        if horizontal:
            ax.barh(range(len(counts)), counts, color="#4285f4")
            ax.set_yticks(range(len(labels)), [label if len(label) <= 28 else "..." + label[-25:] for label in labels],
                          fontsize=7)
            ax.invert_yaxis()
        else:
            ax.bar(range(len(counts)), counts, color="#4285f4", width=1.0, edgecolor="white")
            ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=90 if len(labels) > 8 else 0)
        ax.tick_params(labelsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return figure_png(draw, 2.6, 1.0 if not horizontal else 0.22 * len(labels) + 0.4)


def numeric_histogram(stats):
    """The standard histogram's buckets, as facets draws them (equal-width buckets)."""
    standard = next((h for h in stats.histograms if h.type == h.STANDARD), None)
    if standard is None or not standard.buckets:
        return None
    labels = [f"{b.low_value:.3g}" for b in standard.buckets]
    return bars_png(labels, [b.sample_count for b in standard.buckets], horizontal=False)


def feature_tables(statistics) -> str:
    """One dataset's FeatureStats as facets overview's two tables: numeric and categorical features."""
    numeric, categorical, other = [], [], []
    total = statistics.num_examples
    for feature in statistics.features:
        name = ".".join(feature.path.step) or feature.name
        kind = feature.WhichOneof("stats")
        if kind == "num_stats":
            s = feature.num_stats
            common = s.common_stats
            missing = common.num_missing / total if total else 0.0
            chart = numeric_histogram(s)
            numeric.append([name, fmt(common.num_non_missing), f"{100 * missing:.1f}%", fmt(s.mean), fmt(s.std_dev),
                            fmt(s.num_zeros), fmt(s.min), fmt(s.median), fmt(s.max),
                            png_tag(chart, f"{name} histogram") if chart else "-"])
        elif kind == "string_stats":
            s = feature.string_stats
            common = s.common_stats
            missing = common.num_missing / total if total else 0.0
            top = s.top_values[0] if s.top_values else None
            # Bytes (the images) have no values to rank: TFDV labels them all __BYTES_VALUE__.
            buckets = [b for b in s.rank_histogram.buckets if b.label != "__BYTES_VALUE__"][:10]
            chart = (bars_png([b.label for b in buckets], [b.sample_count for b in buckets], horizontal=True)
                     if buckets else None)
            categorical.append([name, fmt(common.num_non_missing), f"{100 * missing:.1f}%", fmt(s.unique),
                                esc(top.value[-40:]) if top and buckets else "(binary)", fmt(top.frequency) if top else "-",
                                fmt(s.avg_length), png_tag(chart, f"{name} top values") if chart else "-"])
        else:
            other.append([name, esc(kind)])
    out = [f"<p>{total} examples</p>"]
    if numeric:
        out.append("<h4>Numeric features</h4>" + table(
            ["feature", "count", "missing", "mean", "std dev", "zeros", "min", "median", "max", "histogram"], numeric))
    if categorical:
        out.append("<h4>Categorical features</h4>" + table(
            ["feature", "count", "missing", "unique", "top", "freq top", "avg str len", "top values"], categorical))
    if other:
        out.append(table(["feature", "statistics"], other))
    return "".join(out)


def statistics_html(statistics_uri: str) -> str:
    import tensorflow_data_validation as tfdv

    parts = []
    for split in layout.split_names(statistics_uri):
        path = os.path.join(statistics_uri, layout.SPLIT_PREFIX + split, "FeatureStats.pb")
        if not os.path.exists(path):
            continue
        for dataset in tfdv.load_stats_binary(path).datasets:
            parts.append(f"<h3>Statistics: split {esc(split)}</h3>" + feature_tables(dataset))
    return "".join(parts) or note(f"no FeatureStats.pb under {statistics_uri}")


def real_images_html(examples_uri: str, schema_uri: str) -> str:

    shape = schema_utils.image_shape(schema_utils.load_schema(schema_uri))
    try:
        files = layout.split_files(examples_uri, "train")
        images = [image.numpy() for image, _ in image_dataset(files, shape).take(REAL_IMAGES * 8)]
    except Exception as e:  # images that do not decode to the schema's shape: say so, the page still renders
        return note(f"training images could not be decoded ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
    if not images:
        return note("the train split is empty")
    import numpy as np

    # Evenly spaced over the first examples read: the files are in folder (class) order.
    picked = np.stack(images)[np.linspace(0, len(images) - 1, min(REAL_IMAGES, len(images))).astype(int)]
    columns = 12
    grid = png_tag(grid_png(picked, columns), "real training images", width=columns * (shape[1] + 2) * 2, pixels=True)
    return f"<h3>Real training images ({len(picked)} of the train split)</h3>{grid}"


def data_section(run: PipelineRun) -> str:

    statistics = run.output("StatisticsGen", "statistics")
    anomalies = run.output("ExampleValidator", "anomalies")
    examples = run.output("ImageExampleGen", "examples")
    schema = run.output("ImportSchemaGen", "schema")
    parts = []
    if examples is not None:
        spans = artifact_property(examples, "spans") or artifact_property(examples, "span")
        parts.append(f"<p>Examples: spans {esc(spans)}, {esc(examples.uri)}</p>")

        recorded = artifact_property(examples, LABEL_NAMES_PROPERTY)  # an MLMD proto: label_names_of takes TFX's
        names = json.loads(recorded) if recorded else None
        parts.append(f"<p>Classes: {esc(', '.join(f'{i} {name}' for i, name in enumerate(names)))}</p>" if names
                     else "<p>Classes: none (unlabelled data)</p>")
    parts.append("<h3>Anomalies (ExampleValidator)</h3>")
    if anomalies is None:
        parts.append(note(f"{NOT_RECORDED}: ExampleValidator did not run"))
    else:
        messages = anomaly_messages(anomalies.uri)
        parts.append("<ul>" + "".join(f"<li>{esc(m)}</li>" for m in messages) + "</ul>" if messages
                     else '<p class="status ok">No anomalies: every split matches the schema.</p>')
    parts.append(statistics_html(statistics.uri) if statistics is not None
                 else note(f"statistics {NOT_RECORDED}: StatisticsGen did not run"))
    if examples is not None and schema is not None:
        parts.append(real_images_html(examples.uri, schema.uri))
    return "".join(parts)


# --------------------------------------------------------------------------- training
def training_fid_table(metrics_path: str) -> str:
    """The trainer's metrics.jsonl rows (FID during training) as a table; the curve is in loss_curve.png."""
    if not os.path.exists(metrics_path):
        return note(f"FID during training {NOT_RECORDED} (training.fid_every_steps)")
    with open(metrics_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    keys = sorted({k for row in rows for k in row if k.startswith("fid_") and k != "fid_seconds"})
    return table(["step", "seconds", *keys], [[fmt(row["step"]), fmt(row.get("seconds"), 3),
                                               *[fmt(row.get(k)) for k in keys]] for row in rows])


def training_section(run: PipelineRun) -> str:

    model = run.output("GanTrainer", "model")
    model_run = run.output("GanTrainer", "model_run")
    trainer = run.component("GanTrainer")
    if trainer is None or model_run is None:
        return note(f"{NOT_RECORDED}: GanTrainer " + ("did not run" if trainer is None else f"ended {trainer.state}"))
    skipped = layout.skipped_reason(model.uri) if model is not None else None
    if skipped:
        return f'<p class="status">Not trained: {esc(skipped)}</p>'
    run_dir = model_run.uri
    parts = [f"<p>Model run: {esc(run_dir)}; steps {fmt(artifact_property(model, 'train_steps'))}, "
             f"architecture {fmt(artifact_property(model, 'architecture'))}, "
             f"warm start from {esc(artifact_property(model, 'warm_started_from') or 'none (from scratch)')}</p>"]
    # What the trainer drew (training/train.py): losses, D accuracies and the training FID
    # against the step, and the titled sample grids of its fixed latent batch side by side.
    parts.append("<h3>Losses, D accuracy and FID during training</h3>")
    curve = os.path.join(run_dir, "loss_curve.png")
    parts.append(png_file_tag(curve, "loss curves") if os.path.exists(curve) else note(f"losses {NOT_RECORDED}"))
    parts.append("<h3>FID during training</h3>" + training_fid_table(os.path.join(run_dir, hooks.METRICS_FILENAME)))
    parts.append("<h3>Samples across training (the same latent points at every step)</h3>")
    strip = os.path.join(run_dir, "samples", hooks.STRIP_FILENAME)
    parts.append(png_file_tag(strip, "sample grids across training", pixels=True) if os.path.exists(strip)
                 else note(f"sample grids {NOT_RECORDED}"))
    return "".join(parts)


# --------------------------------------------------------------------------- evaluation
def score_cell(score) -> str:
    """mean ± std over the draws [min - max], or the single value."""
    if isinstance(score, dict) and "mean" in score:
        values = score.get("values") or []
        spread = f" [{min(values):.4g} - {max(values):.4g}]" if len(values) > 1 else ""
        return esc(f"{score['mean']:.4g} ± {score.get('std', 0.0):.2g}{spread}")
    if isinstance(score, list):
        return esc(", ".join(f"{v:.2g}" for v in score))
    return fmt(score)


def evaluation_section(run: PipelineRun) -> str:
    evaluation = run.output("GanEvaluator", "evaluation")
    evaluator = run.component("GanEvaluator")
    if evaluation is None:
        return note(f"{NOT_RECORDED}: GanEvaluator " + ("did not run" if evaluator is None else f"ended {evaluator.state}"))
    path = os.path.join(evaluation.uri, "metrics.json")
    if not os.path.exists(path):
        return note(f"{NOT_RECORDED}: no metrics.json in {evaluation.uri}")
    with open(path) as f:
        metrics = json.load(f)
    blessed = metrics.get("blessed")
    parts = [f'<p class="status {"ok" if blessed else "bad"}"><b>{"Blessed" if blessed else "Not blessed"}</b>: '
             f'{esc(metrics.get("reason", ""))}</p>']
    candidate, baseline = metrics.get("candidate"), metrics.get("baseline")
    if metrics.get("no_comparable_baseline"):
        parts.append(f"<p>No comparable baseline: {esc(metrics['no_comparable_baseline'])}</p>")
    if candidate:
        against = f"version {baseline['version']}" if baseline else "none serving"
        parts.append(f"<p>N = {fmt(metrics.get('num_samples'))} images per draw, {fmt(metrics.get('num_draws'))} draws "
                     f"(mean ± std over the draws [min - max]); floor: real held-out images against the reference, "
                     f"same N. Baseline: {esc(against)}</p>")
        for extractor, scores in candidate["scores"].items():
            accuracy = (metrics.get("extractors", {}).get(extractor) or {}).get("held_out_accuracy")
            if accuracy is not None:
                parts.append(f"<p>{esc(extractor)} classifies {accuracy:.1%} of the real held-out images correctly "
                             f"(images it never trained on): the recognised-class figures and the CAS rest on a "
                             f"classifier that good.</p>")
            floor = (metrics.get("extractors", {}).get(extractor) or {}).get("floor", {})
            base = (baseline or {}).get("scores", {}).get(extractor, {})
            rows = [[esc(name), score_cell(value), score_cell(base.get(name)) if baseline else "-",
                     score_cell(floor.get(name))] for name, value in scores.items()]
            parts.append(f"<h3>{esc(extractor)}</h3>"
                         + table(["metric", "candidate", "serving baseline", "floor (real vs real)"], rows))
        extra = [[esc(k), fmt(v)] for k, v in candidate.items() if k != "scores"]
        parts.append(table(["candidate", "value"], extra))
        parts.append(cas_html(metrics.get("cas")))
        parts.append(per_class_html(evaluation.uri))
    samples = os.path.join(evaluation.uri, "samples.png")
    if os.path.exists(samples):
        parts.append(f"<h3>Samples per class</h3>{png_file_tag(samples, 'samples per class')}")
    sheets = os.path.join(evaluation.uri, "classes.png")
    if os.path.exists(sheets):
        parts.append("<h3>Samples, their nearest training images and real images, per class</h3><p>Under each "
                     "sample: the training image nearest to it in pixels, captioned with that distance divided by "
                     "the median distance of real held-out images to theirs (about 1: as new as unseen real images; "
                     "near 0: a copy).</p>" + png_file_tag(sheets, "per class: samples, nearest training images, "
                                                             "real held-out images"))
    return "".join(parts)


def cas_html(cas: dict | None) -> str:
    """The Classification Accuracy Score: generated-trained vs real-trained accuracy, per seed."""
    if not cas:
        return ""
    if "generated" not in cas:
        return f"<h3>Classification Accuracy Score</h3>{note(cas.get('skipped', 'not computed'))}"
    rows = [[esc(f"seed {r['seed']}"), fmt(r["generated"], 3), fmt(r["real"], 3),
             fmt(r["generated"] / r["real"] if r["real"] else float("nan"), 3)] for r in cas["per_seed"]]
    rows.append([esc("mean"), fmt(cas["generated"], 3), fmt(cas["real"], 3), fmt(cas["ratio"], 3)])
    return (f"<h3>Classification Accuracy Score</h3><p>Held-out accuracy of one small CNN trained on {cas['n']} "
            f"generated images and of the same CNN trained on {cas['n']} real training images, tested on "
            f"{cas['num_test']} real held-out images (Ravuri &amp; Vinyals 2019).</p>"
            + table(["", "trained on generated", "trained on real", "ratio"], rows))


def per_class_html(evaluation_uri: str) -> str:
    """The TFMA EvalResult per class: which classes the generator does badly."""

    try:
        by_slice = tfma_result.per_class_metrics(evaluation_uri)
    except Exception as exc:  # an evaluation written before the TFMA result existed, or unreadable
        return note(f"no TFMA EvalResult readable in {evaluation_uri}: {type(exc).__name__}")
    classes = sorted((k for k in by_slice if k != "overall"), key=lambda k: int(k) if k.lstrip("-").isdigit() else 0)
    if not classes:
        return ""

    def row(name):
        d, c = by_slice[name].get("discriminator", {}), by_slice[name].get("cas", {})
        return [esc(name), fmt(d.get("example_count")), fmt(d.get("binary_accuracy"), 3), fmt(d.get("auc"), 3),
                fmt(c.get("binary_accuracy"), 3) if c else "-"]

    return ("<h3>Per class (TFMA)</h3><p>From the TFMA EvalResult in the evaluation artifact "
            "(<code>tfma.load_eval_result</code>). Discriminator accuracy and AUC at telling the class's held-out "
            "real images from its samples (high: the samples of that class are easy to spot), and the accuracy on "
            "the class's real images of the CAS classifier trained on samples (low: its samples do not teach it)."
            "</p>" + table(["class", "images", "D accuracy", "D AUC", "CAS accuracy"],
                           [row(k) for k in ["overall", *classes]]))


# --------------------------------------------------------------------------- lineage
def lineage_section(run: PipelineRun) -> str:
    outcome = run_outcome(run)
    lineage = outcome["lineage"] or {}
    examples = run.output("ImageExampleGen", "examples")
    pushed = run.output("Pusher", "pushed_model")
    record = None
    if outcome["run_record"] and os.path.isfile(outcome["run_record"]):
        with open(outcome["run_record"]) as f:
            record = json.load(f)
    model = run.output("GanTrainer", "model")

    def prop(name):
        raw = artifact_property(model, name)
        return json.loads(raw) if raw else None

    rows = [
        ["spans", fmt(lineage.get("spans") or prop("spans") or artifact_property(examples, "spans"))],
        ["data fingerprint", fmt(lineage.get("data_fingerprint") or prop("data_fingerprint"))],
        ["input fingerprint", fmt(artifact_property(examples, "input_fingerprint"))],
        ["config hash", fmt(lineage.get("config_hash") or prop("config_hash"))],
        ["code version", fmt(lineage.get("code_version"))],
        ["parent model", fmt(lineage.get("parent_version") or "none (trained from scratch)")],
        ["model artifact", fmt(model.uri if model is not None else None)],
        ["pushed", fmt(f"version {outcome['pushed_version']} to {artifact_property(pushed, 'pushed_destination')}"
                       if outcome["pushed_version"] else "not pushed")],
        ["run record", fmt(outcome["run_record"])],
    ]
    parts = [table(None, rows, kind="fields")]
    if record:
        parts.append(f"<h3>Run record (push directory)</h3><pre>{esc(json.dumps(record, indent=2))}</pre>")
    for component, key in (("GanTrainer", "training_config"), ("GanEvaluator", "evaluation_config")):
        found = run.component(component)
        raw = found.properties.get(key) if found else None
        if raw:
            parts.append(f"<h3>{esc(key.replace('_', ' '))}</h3><pre>{esc(json.dumps(json.loads(raw), indent=2))}</pre>")
    return "".join(parts)


# --------------------------------------------------------------------------- the page
SECTIONS = (("data", "Data", data_section), ("training", "Training", training_section),
            ("evaluation", "Evaluation", evaluation_section), ("lineage", "Lineage", lineage_section))


def render_report(run: PipelineRun, pipeline_name: str) -> str:

    outcome = run_outcome(run)
    stopped = run.stopped_at
    if stopped is None:
        status = f'<p class="status{" ok" if outcome["blessed"] else ""}">Complete: {esc(outcome["reason"] or "")}</p>'
    else:
        found = run.component(stopped)
        why = f"{stopped} {found.state}" if found else f"{stopped} did not run"
        anomalies = run.output("ExampleValidator", "anomalies")
        messages = anomaly_messages(anomalies.uri) if anomalies is not None else []
        because = f": ExampleValidator found {len(messages)} anomal{'y' if len(messages) == 1 else 'ies'}" \
            if messages else ""
        status = f'<p class="status bad">Stopped early at {esc(why)}{esc(because)}.</p>'
    components = table(["component", "state", "seconds"],
                       [[esc(c.component), esc(c.state), fmt(c.seconds)] for c in run.components]
                       + [[esc(name), "not run", "-"] for name in run.not_run])
    body = []
    for anchor, title, build in SECTIONS:
        try:
            content = build(run)
        except Exception as e:  # one unreadable artifact must not cost the whole page
            content = f'<p class="status bad">This section could not be built: {esc(type(e).__name__)}: {esc(e)}</p>'
        body.append(f'<section id="{anchor}"><h2>{title}</h2>{content}</section>')
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(run.started))
    nav = "".join(f'<a href="#{anchor}">{title}</a>' for anchor, title, _ in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(pipeline_name)} run '
            f'{esc(run.run_id)}</title><style>{CSS}</style></head><body>'
            f'<h1>{esc(pipeline_name)}: pipeline run {esc(run.run_id)}</h1><p>started {esc(when)}</p>{status}'
            f'<nav>{nav}</nav><section id="run"><h2>Components</h2>{components}</section>{"".join(body)}'
            f'<p class="note">Written by ./gan report from ML Metadata.</p></body></html>')


def default_report_path(output_dir: str, run_id: str) -> str:
    return os.path.join(output_dir, REPORTS_DIR, re.sub(r"[^0-9A-Za-z._-]", "-", run_id) + ".html")


def add_arguments(parser: argparse.ArgumentParser) -> None:

    parser.add_argument("run_id", nargs="?", metavar="RUN", default=None,
                        help="a pipeline run id as ./gan runs lists it (default: the newest run)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the pipeline's config (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="the HTML file to write (default: <output_dir>/reports/<run id>.html)")


def run(args: argparse.Namespace) -> int:

    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    try:
        store = open_store(config.metadata_path)
    except FileNotFoundError:
        print(f"error: no ML Metadata at {config.metadata_path}: this pipeline has not run yet (./gan run --config "
              f"{args.config})", file=sys.stderr)
        return 2
    runs = read_runs(store, [args.run_id] if args.run_id else None)
    if not runs:
        known = [r.run_id for r in read_runs(store)][:5] if args.run_id else []
        print(f"error: no pipeline run {args.run_id!r} in {config.metadata_path}; newest: {', '.join(known) or 'none'} "
              "(./gan runs lists them)" if args.run_id else
              f"error: no pipeline run recorded in {config.metadata_path} (./gan run first)", file=sys.stderr)
        return 2
    out = args.out or default_report_path(config.output_dir, runs[0].run_id)
    if os.path.isdir(out):
        print(f"error: --out {out} is a folder; give a file name such as {os.path.join(out, 'report.html')}",
              file=sys.stderr)
        return 2
    page = render_report(runs[0], config.pipeline_name)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out)
    print(f"report of run {runs[0].run_id}: {out}")
    return 0

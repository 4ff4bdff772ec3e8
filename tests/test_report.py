"""`./gan report` and `./gan runs` on a real small pipeline, the page checked in a real headless Chromium.

Two pipeline runs share one metadata DB: 300 digits train 60 steps, evaluate and push; then a span
of 32x32 images stops the run at the data checks (no training). Nothing is mocked: the report
reads ML Metadata through its Python API, and Chromium (Debian's package, installed when missing)
loads each page from file:// with no network.
"""
import argparse
import os
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from browser import render
from tfx_gan.common.validation_gate import DataValidationError
from tfx_gan.pipeline import history, report
from tfx_gan.pipeline.config import DEFAULT_CONFIG, load_config
from tfx_gan.pipeline.local_runner import run_pipeline
from test_pipeline_e2e import write_digits_span, write_span

pytestmark = pytest.mark.slow

SECTIONS = ["run", "data", "training", "evaluation", "lineage"]
# What the page tells Chromium back: its sections, every image's size once loaded, the status line.
PROBE = """({
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  status: document.querySelector('.status').textContent,
  text: document.body.innerText,
})"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A config file of a tiny pipeline, after a complete run and a run stopped by anomalies."""
    root = tmp_path_factory.mktemp("report")
    data_dir = str(root / "data")
    write_digits_span(data_dir, 1)  # 300 images
    with open(DEFAULT_CONFIG) as f:
        raw = yaml.safe_load(f)
    raw["data"].update(input_base=data_dir, schema_file=load_config().data.schema_file)
    raw["training"].update(train_steps=60, batch_size=32, log_every_steps=10, checkpoint_every_steps=60,
                           sample_every_steps=20, fid_every_steps=30)
    # 60 steps cannot reach a good FID: blessing is judged on finiteness only.
    raw["evaluation"].update(num_samples=100, classifier_epochs=1, max_fid_over_floor=None, min_novelty=None,
                             min_class_share=None, cas_seeds=1, cas_epochs=2)
    raw.update(push_destination=str(root / "serving"), output_dir=str(root / "out"))
    config_path = str(root / "config.yaml")
    with open(config_path, "w") as f:
        yaml.safe_dump(raw, f)
    config = load_config(config_path)

    complete = run_pipeline(config)
    assert all(c["state"] == "COMPLETE" for c in complete["components"]), complete["components"]
    big = np.zeros((20, 32, 32), np.uint8)
    big[:, 8:24, 8:24] = 255
    write_span(data_dir, 2, big, [i % 10 for i in range(20)])  # 32x32: the schema says 28x28
    with pytest.raises(DataValidationError):
        run_pipeline(config)
    return config_path, config


def make_report(config_path, run_id, out, capsys):
    assert report.run(argparse.Namespace(config=config_path, run_id=run_id, out=out)) == 0
    printed = capsys.readouterr().out
    path = re.search(r"report of run \S+: (.+\.html)$", printed.strip()).group(1)
    with open(path, encoding="utf-8") as f:
        return path, f.read()


def check_in_chromium(path, screenshot):
    page = render("file://" + path, PROBE, screenshot_path=screenshot)
    assert page.console_errors == []
    assert page.probe["sections"] == SECTIONS
    broken = [i["alt"] for i in page.probe["images"] if not (i["complete"] and i["width"] > 0)]
    assert page.probe["images"] and broken == []
    with open(screenshot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(screenshot) > 20_000
    return page.probe


def test_runs_lists_both_pipeline_runs_from_ml_metadata(two_runs, capsys):
    config_path, config = two_runs
    runs = history.read_runs(history.open_store(config.metadata_path))
    assert len(runs) == 2 and runs[0].started >= runs[1].started
    assert runs[0].stopped_at is not None and runs[1].stopped_at is None
    assert history.run(argparse.Namespace(config=config_path, push_destination=None, limit=20)) == 0
    out = capsys.readouterr().out
    assert f"gan-digits: 2 pipeline run(s) in {config.metadata_path}" in out
    newest, older = out.index(runs[0].run_id), out.index(runs[1].run_id)
    assert newest < older  # newest first
    pushed = history.run_outcome(runs[1])["pushed_version"]
    assert pushed and f"pushed {pushed}" in out[older:]
    assert "GanTrainer:COMPLETE" in out[older:] and "Pusher:COMPLETE" in out[older:]
    assert "not run: " in out[newest:older] and "GanTrainer" in out[newest:older]


def test_report_of_a_complete_run_renders_every_section_in_chromium(two_runs, capsys, tmp_path):
    config_path, config = two_runs
    complete = history.read_runs(history.open_store(config.metadata_path))[1]
    path, page = make_report(config_path, complete.run_id, None, capsys)
    assert path == report.default_report_path(config.output_dir, complete.run_id)
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)  # offline: nothing to fetch
    probe = check_in_chromium(path, str(tmp_path / "complete.png"))
    text = probe["text"]
    assert probe["status"].startswith("Complete: blessed")
    alts = {i["alt"] for i in probe["images"]}
    assert {"real training images", "loss curves", "samples per class"} <= alts
    assert "sample grids across training" in alts  # the trainer's titled strip
    assert "label histogram" in alts  # TFDV's statistics, drawn per feature
    for expected in ("Statistics: split train", "Statistics: split eval", "No anomalies", "Numeric features",
                     "Real training images", "Samples per class",
                     "FID during training", "fid_random_cnn", "domain_cnn", "serving baseline", "Blessed", "data fingerprint",
                     "code version", "training config", f"version {history.run_outcome(complete)['pushed_version']}",
                     "Classification Accuracy Score", "trained on generated", "Per class (TFMA)", "D AUC"):
        assert expected in text, expected


def test_report_of_a_stopped_run_says_where_it_stopped(two_runs, capsys, tmp_path):
    config_path, _ = two_runs
    out = str(tmp_path / "stopped.html")
    path, page = make_report(config_path, None, out, capsys)  # the newest run by default
    assert path == out
    probe = check_in_chromium(path, str(tmp_path / "stopped.png"))
    assert re.match(r"Stopped early at DriftValidator FAILED: ExampleValidator found \d+ anomal", probe["status"])
    assert "do not match the schema" in probe["text"] or "image" in probe["text"]
    assert "not recorded: GanTrainer did not run" in probe["text"]
    assert "not recorded: GanEvaluator did not run" in probe["text"]


def test_report_errors_are_one_line_with_exit_code_2(two_runs, capsys, tmp_path):
    config_path, _ = two_runs
    assert report.run(argparse.Namespace(config=config_path, run_id="no-such-run", out=None)) == 2
    assert "no pipeline run 'no-such-run'" in capsys.readouterr().err
    assert report.run(argparse.Namespace(config=config_path, run_id=None, out=str(tmp_path))) == 2
    assert "is a folder" in capsys.readouterr().err
    assert report.run(argparse.Namespace(config=str(tmp_path / "none.yaml"), run_id=None, out=None)) == 2
    assert "config file not found" in capsys.readouterr().err


def test_every_table_cell_is_escaped_once_and_built_html_is_kept():
    image = report.png_tag(b"\x89PNG", 'alt with "quotes" & <tags>')
    page = report.table(["feature <i>", "value"], [["<script>alert(1)</script>", image], ["a & b", report.esc("x<y")]])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "feature &lt;i&gt;" in page and "a &amp; b" in page and "x&lt;y" in page and "x&amp;lt;y" not in page
    assert '<img alt="alt with &#34;quotes&#34; &amp; &lt;tags&gt;"' in page  # the built tag stays HTML

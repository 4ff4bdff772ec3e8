"""The pipeline config: the shipped default loads, and every bad value is named in the error."""
import dataclasses
import os
import shutil

import pytest
import yaml

from tfx_gan.common.options import parse_overrides, ConfigError
from tfx_gan.pipeline import config as pipeline_config


def test_default_config_loads_and_resolves_paths():
    config = pipeline_config.load_config()
    assert config.pipeline_name == "gan-digits"
    assert os.path.isabs(config.data.input_base) and config.data.input_base.endswith("data/digits")
    assert os.path.isfile(config.data.schema_file)
    assert config.training.architecture == "auto" and config.training.given == {"architecture", "warm_start"}
    assert config.enable_cache is True


def write(tmp_path, raw):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def base_raw():
    """The shipped config as a mapping, its paths made absolute (they are relative to its folder)."""
    with open(pipeline_config.DEFAULT_CONFIG) as f:
        return pipeline_config.resolve_paths(yaml.safe_load(f), os.path.dirname(pipeline_config.DEFAULT_CONFIG))


@pytest.mark.parametrize("change, message", [
    ({"pipeline_name": "Bad Name"}, "pipeline_name"),
    ({"colour": 1}, "unknown top-level key"),
    ({"data": {"input_base": "data/digits"}}, "data.schema_file is required"),
    ({"data": {"input_base": "x", "schema_file": "nope.pbtxt"}}, "data.schema_file: file not found"),
    ({"evaluation": {"num_samples": 0}}, "evaluation.num_samples"),
    ({"evaluation": {"num_samples": "many"}}, "evaluation.num_samples"),
    ({"evaluation": {"max_fid": -1}}, "evaluation.max_fid"),
    ({"evaluation": {"min_recall": 2}}, "evaluation.min_recall"),
    ({"data": {"input_base": "", "schema_file": "data/schema/digits/schema.pbtxt"}}, "data.input_base is required"),
    ({"data": {"input_base": "x", "schema_file": "s", "train_buckets": 0}}, "data.train_buckets: must be >= 1"),
    ({"evaluation": {"typo": 1}}, "unknown key"),
    ({"evaluation": {"extractors": ["clip"]}}, "evaluation.extractors: 'clip' is not one of: domain_cnn, random_cnn, pixels_8x8, inception"),
    ({"evaluation": {"regression_tolerance": -0.5}}, "evaluation.regression_tolerance: must be >= 0"),
    ({"evaluation": {"classifier_epochs": 2.5}}, "evaluation.classifier_epochs: expected an integer"),
    ({"training": {"architecture": "dcgan28"}}, "dcgan_28"),
    ({"enable_cache": "yes"}, "enable_cache"),
    ({"push_destination": ""}, "push_destination: expected a directory path"),
    ({"output_dir": 3}, "output_dir: expected a directory path, got 3"),
])
def test_bad_values_are_named(tmp_path, change, message):
    raw = base_raw()
    raw.update(change)
    with pytest.raises(ConfigError, match=message):
        pipeline_config.load_config(write(tmp_path, raw))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        pipeline_config.load_config(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        pipeline_config.load_config(str(bad))


def test_overrides_merge_into_sections():
    config = pipeline_config.load_config(overrides={"evaluation": {"num_samples": 64}, "output_dir": "/tmp/x"})
    assert config.evaluation.num_samples == 64
    assert config.evaluation.seed == 0  # the rest of the section is kept
    assert config.output_dir == "/tmp/x"


def test_input_data_checks(tmp_path):
    config = pipeline_config.load_config(overrides={"data": {"input_base": str(tmp_path / "none")}})
    with pytest.raises(ConfigError, match="folder not found"):
        pipeline_config.check_input_data(config)
    (tmp_path / "none").mkdir()
    with pytest.raises(ConfigError, match="no span-<N>/ folder"):
        pipeline_config.check_input_data(config)
    (tmp_path / "none" / "span-1").mkdir()
    (tmp_path / "none" / "span-2").mkdir()
    (tmp_path / "none" / "span-1" / "a.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="span-2 is empty"):
        pipeline_config.check_input_data(config)
    (tmp_path / "none" / "span-2" / "b.png").write_bytes(b"x")
    (tmp_path / "none" / "span-1" / "a.png").unlink()
    assert pipeline_config.check_input_data(config) == str(tmp_path / "none" / "span-2")  # latest: span-1 unread
    two = dataclasses.replace(config, data=dataclasses.replace(config.data, spans="last:2"))
    with pytest.raises(ConfigError, match=r"data.spans last:2: span folder\(s\) .*span-1 is empty"):
        pipeline_config.check_input_data(two)


def test_set_items_parse_into_sections():
    assert parse_overrides(
        ["training.train_steps=200", "evaluation.max_fid=null", "evaluation.seed=3", "output_dir=/tmp/x"]) == {
        "training": {"train_steps": 200}, "evaluation": {"max_fid": None, "seed": 3}, "output_dir": "/tmp/x"}
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_overrides(["training.train_steps"])
    with pytest.raises(ConfigError, match="'output_dir' is not a section"):
        parse_overrides(["output_dir=/tmp/x", "output_dir.sub=1"])


def test_run_and_the_quality_benchmark_share_the_set_syntax(capsys):
    """Both parse --set with common.options.parse_overrides, and a bad value fails at config load
    naming its key, in the same words."""
    import argparse

    from benchmarks import train_quality
    from tfx_gan.pipeline import run as run_command

    bad = ["evaluation.num_samples=1"]
    args = argparse.Namespace(config=pipeline_config.DEFAULT_CONFIG, set=bad)
    assert run_command.run(args) == 2
    assert "config error: evaluation.num_samples: must be >= 2" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="evaluation.num_samples: must be >= 2"):
        train_quality.main(["--set", *bad, "--out", "/nonexistent/never-written.json"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        train_quality.main(["--set", "evaluation.num_samples", "--out", "/nonexistent/never-written.json"])


SHIPPED_CONFIGS = [pipeline_config.DEFAULT_CONFIG] + sorted(
    os.path.join(pipeline_config.REPO_ROOT, "pipeline", "configs", "examples", name)
    for name in os.listdir(os.path.join(pipeline_config.REPO_ROOT, "pipeline", "configs", "examples")))


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=os.path.basename)
def test_shipped_configs_work_from_any_directory_and_write_only_under_it(tmp_path, monkeypatch, path):
    from tfx_gan.data.bundled import bundled_dataset_at

    monkeypatch.chdir(tmp_path)  # outside the repository
    config = pipeline_config.load_config(path)
    assert bundled_dataset_at(config.data.input_base) in ("digits", "photo_patches", "photo_crops", "emoji")
    assert os.path.isfile(config.data.schema_file)
    assert config.output_dir == str(tmp_path / "outputs" / config.pipeline_name)
    assert config.push_destination == str(tmp_path / "serving" / config.pipeline_name)


def test_file_paths_follow_the_file_and_command_line_paths_the_working_directory(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "schemas").mkdir(parents=True)
    elsewhere.mkdir()
    schema = str(project / "schemas" / "schema.pbtxt")
    shutil.copy(base_raw()["data"]["schema_file"], schema)
    raw = base_raw()
    raw.update(pipeline_name="shapes", data={**raw["data"], "input_base": "my_data", "schema_file": "schemas/schema.pbtxt"},
               output_dir="~/shapes-out")
    (project / "shapes.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    config = pipeline_config.load_config("../project/shapes.yaml")  # --config: relative to the cwd
    assert config.data.input_base == str(project / "my_data") and config.data.schema_file == schema
    assert config.output_dir == str(tmp_path / "home" / "shapes-out")
    assert config.push_destination == str(elsewhere / "serving" / "shapes")  # unset: under the cwd

    overridden = pipeline_config.load_config(str(project / "shapes.yaml"), parse_overrides(
        ["data.input_base=other_data", "push_destination=served", "output_dir=gs://bucket/out"]))
    assert overridden.data.input_base == str(elsewhere / "other_data")  # --set: relative to the cwd
    assert overridden.data.schema_file == schema  # the file's own path is unchanged
    assert overridden.push_destination == str(elsewhere / "served")
    assert overridden.output_dir == "gs://bucket/out"  # URIs stay as they are

"""The local runner refuses, before anything runs, what would fail or collide later."""
from __future__ import annotations

import os
import time

import pytest

from tfx_gan.common.options import ConfigError
from tfx_gan.pipeline.config import load_config
from tfx_gan.pipeline.local_runner import PipelineBusyError, check_writable_dirs, pipeline_lock, run_pipeline


@pytest.fixture
def config_with(tmp_path):
    span = tmp_path / "data" / "span-1" / "0"
    span.mkdir(parents=True)
    (span / "0.png").write_bytes(b"not looked at before the checks")

    def make(**paths):
        return load_config(overrides={"data": {"input_base": str(tmp_path / "data")},
                                      "push_destination": str(paths.get("push", tmp_path / "serving")),
                                      "output_dir": str(paths.get("out", tmp_path / "out"))})
    return make


def test_push_destination_that_is_a_file_fails_before_anything_runs(config_with, tmp_path):
    (tmp_path / "a-file").write_text("x")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"push_destination: .*a-file is a file, not a folder"):
        run_pipeline(config_with(push=tmp_path / "a-file"))
    assert time.monotonic() - started < 5


def test_output_dir_that_cannot_be_created_is_named(config_with, tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match=r"output_dir: cannot write to .*a-file/out"):
        check_writable_dirs(config_with(out=tmp_path / "a-file" / "out"))


def test_a_second_run_of_the_same_pipeline_is_refused_at_once(config_with, tmp_path):
    config = config_with()
    os.makedirs(config.output_dir)
    with pipeline_lock(config.output_dir):
        started = time.monotonic()
        with pytest.raises(PipelineBusyError, match=rf"another run of this pipeline is in progress \(pid {os.getpid()}"):
            run_pipeline(config)
        assert time.monotonic() - started < 5
    with pipeline_lock(config.output_dir):  # released with the first run: the next one may go
        pass


def test_remote_output_dir_is_refused_by_the_local_runner(config_with):
    with pytest.raises(ConfigError, match=r"output_dir: gs://bucket/out is remote"):
        check_writable_dirs(config_with(out="gs://bucket/out"))

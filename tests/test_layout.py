"""The push directory's contract: whole versions only, broken ones never used as a baseline.

Real SavedModels (a tiny Keras generator exported with the project's serving signatures), real
copies and renames; the disk-full case mounts a small tmpfs (needs root; skipped with the reason
where mounting is not allowed).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from tfx_gan.common import layout

def test_publish_makes_a_whole_loadable_version(tiny_serving_model, tmp_path):
    base = str(tmp_path / "push")
    version, path = layout.publish_version(tiny_serving_model, base, clock=lambda: 1_700_000_000)
    assert version == "1700000000" and path == os.path.join(base, version)
    assert os.listdir(base) == [version]  # no temporary folder left behind
    assert layout.check_version_dir(path)[0] and layout.problem_loading(path) is None
    latent = tf.zeros([2, layout.read_metadata(path)["latent_dim"]])
    images = tf.saved_model.load(path).signatures["serving_default"](latent=latent)["images"]
    assert images.shape == (2, 28, 28, 1)
    # The same second again: versions only grow.
    again, _ = layout.publish_version(tiny_serving_model, base, clock=lambda: 1_700_000_000)
    assert again == "1700000001"
    assert layout.find_latest_usable(base) == (1_700_000_001, os.path.join(base, again))


def test_a_publish_racing_another_takes_the_next_number_and_int64_bounds_versions(tiny_serving_model, tmp_path):
    base = tmp_path / "push"

    def clock_while_another_publishes():  # a second publisher finishes 1700000000 meanwhile
        (base / "1700000000").mkdir(parents=True)
        (base / "1700000000" / "saved_model.pb").write_bytes(b"theirs")
        return 1_700_000_000

    version, path = layout.publish_version(tiny_serving_model, str(base), clock=clock_while_another_publishes)
    assert version == "1700000001" and layout.check_version_dir(path)[0]
    assert (base / "1700000000" / "saved_model.pb").read_bytes() == b"theirs"  # theirs untouched
    (base / str(2**63)).mkdir()  # beyond int64: not a version (TF Serving's are int64)
    assert [v for v, _ in layout.list_versions(str(base))] == [1_700_000_001, 1_700_000_000]


def test_broken_versions_are_skipped_with_a_warning(tiny_serving_model, tmp_path):
    base = tmp_path / "push"
    good = base / "100"
    shutil.copytree(tiny_serving_model, good)
    truncated = base / "200"  # a kill during a non-atomic copy of saved_model.pb
    shutil.copytree(tiny_serving_model, truncated)
    data = (truncated / "saved_model.pb").read_bytes()
    (truncated / "saved_model.pb").write_bytes(data[: len(data) // 3])
    no_keras = base / "300"  # an older push without the Keras copies
    shutil.copytree(tiny_serving_model, no_keras, ignore=shutil.ignore_patterns("keras"))
    (base / ".400.99999999.partial").mkdir()  # a kill during publish: ignored by every lookup
    warnings = []
    assert layout.find_latest_usable(str(base), log=warnings.append) == (100, str(good))
    assert len(warnings) == 2
    assert "300" in warnings[0] and "generator.keras" in warnings[0]
    assert "200" in warnings[1] and "saved_model.pb does not parse" in warnings[1]
    assert layout.find_latest_usable(str(tmp_path / "missing")) is None


def test_a_killed_publish_leaves_only_a_hidden_folder_that_the_next_publish_removes(tiny_serving_model, tmp_path):
    base = tmp_path / "push"
    script = (f"import os, signal\nfrom tfx_gan.common import layout\n"
              f"real_rename = os.rename\n"
              f"def die(src, dst):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
              f"os.rename = die\n"
              f"layout.publish_version({tiny_serving_model!r}, {str(base)!r})\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=os.path.dirname(os.path.dirname(__file__)),
                            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr[-2000:]
    leftovers = os.listdir(base)
    assert len(leftovers) == 1 and leftovers[0].endswith(layout.PARTIAL_SUFFIX)
    assert layout.list_versions(str(base)) == []  # nothing half-written is a version
    version, _ = layout.publish_version(tiny_serving_model, str(base))
    assert sorted(os.listdir(base)) == [version]


def test_a_full_disk_fails_the_publish_cleanly(tiny_serving_model, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    size_kib = max(64, sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tiny_serving_model) for f in fs)
                   // 1024 // 2)  # room for half the model
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the disk-full case is not exercised")
    try:
        base = mount / "push"
        with pytest.raises(Exception) as info:
            layout.publish_version(tiny_serving_model, str(base))
        assert "No space left" in str(info.value) or "ENOSPC" in str(info.value) or "space" in str(info.value).lower()
        assert os.listdir(base) == []  # no version, no partial folder
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# --------------------------------------------------------------------------- history, pruning, rollback
def test_run_records_are_listed_newest_first_and_updated_in_place(tmp_path):
    base = str(tmp_path / "push")
    first = layout.write_run_record(base, "20261123T100000Z-1", {"time": "20261123T100000Z", "pushed_version": None})
    layout.write_run_record(base, "20261123T110000Z-2", {"time": "20261123T110000Z", "pushed_version": None})
    layout.update_run_record(first, pushed_version=5)
    records = layout.read_run_records(base)
    assert [r["time"] for r in records] == ["20261123T110000Z", "20261123T100000Z"]
    assert records[1]["pushed_version"] == 5
    assert layout.list_versions(base) == []  # records are not versions (TF Serving ignores ".runs" too)
    assert layout.read_run_records(str(tmp_path / "missing")) == []


def test_published_versions_carry_the_lineage_and_old_ones_are_pruned(tiny_serving_model, tmp_path):
    base = str(tmp_path / "push")
    for second in (100, 200, 300, 400):
        layout.publish_version(tiny_serving_model, base, clock=lambda s=second: s,
                               metadata={"lineage": {"spans": [second // 100]}})
    assert layout.read_metadata(os.path.join(base, "300"))["lineage"] == {"spans": [3]}
    assert layout.read_metadata(os.path.join(base, "300"))["latent_dim"]  # the model's own fields stay
    removed = layout.prune_versions(base, keep=2, protect=(100,))
    assert sorted(removed) == [os.path.join(base, "200")]
    assert [v for v, _ in layout.list_versions(base)] == [400, 300, 100]
    with pytest.raises(ValueError, match="keep must be >= 1"):
        layout.prune_versions(base, keep=0)


def test_rollback_serves_an_earlier_version_as_the_newest(tiny_serving_model, tmp_path):
    from tfx_gan.pipeline.rollback import rollback

    base = str(tmp_path / "push")
    layout.publish_version(tiny_serving_model, base, clock=lambda: 100, metadata={"lineage": {"spans": [1]}})
    layout.publish_version(tiny_serving_model, base, clock=lambda: 200, metadata={"lineage": {"spans": [2]}})
    new_version, path = rollback(base, 100)
    assert layout.find_latest_usable(base) == (int(new_version), path)
    lineage = layout.read_metadata(path)["lineage"]
    assert lineage["spans"] == [1] and lineage["rolled_back_from"] == 100
    assert layout.read_run_records(base)[0]["pushed_version"] == int(new_version)
    with pytest.raises(ValueError, match="no version 999 under .*; versions: "):
        rollback(base, 999)


def test_gan_runs_lists_the_history_from_the_push_directory_alone(tiny_serving_model, tmp_path, capsys):
    import argparse

    from tfx_gan.pipeline import history

    base = str(tmp_path / "push")
    version, _ = layout.publish_version(tiny_serving_model, base, clock=lambda: 100)
    layout.write_run_record(base, "20261123T100000Z-1", {
        "time": "20261123T100000Z", "spans": [1], "data_fingerprint": "abcdef0123", "config_hash": "c0ffee",
        "code_version": "d00d", "parent_version": None, "metrics": {"domain_cnn_fid_over_floor": 1.3},
        "reason": "blessed: ...", "pushed_version": int(version)})
    layout.write_run_record(base, "20261123T110000Z-2", {
        "time": "20261123T110000Z", "spans": [1], "data_fingerprint": "abcdef0123", "config_hash": "c0ffee",
        "code_version": "d00d", "parent_version": None, "metrics": None,
        "reason": "not trained: no new data since version 100", "pushed_version": None})
    args = argparse.Namespace(push_destination=base, config=None, limit=20)
    assert history.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{base}: 1 version(s); serving 100"
    assert lines[1].startswith("20261123T110000Z  spans 1") and "not pushed" in lines[1]
    assert lines[2].strip() == "not trained: no new data since version 100"
    assert lines[3].startswith("20261123T100000Z") and "pushed 100" in lines[3] and "domain_cnn 1.30x" in lines[3]
    assert history.run(argparse.Namespace(push_destination=str(tmp_path / "none"), config=None, limit=5)) == 2

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

from components import layout

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
    script = (f"import os, signal\nfrom components import layout\n"
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

"""./gan's own set-up: it must never re-create or re-sync .venv under a running command.

These run the real script. The refusal case runs a copy of the script in a scratch folder whose
.venv is a stand-in (a shell script as bin/python), so the project's own .venv is never touched.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(REPO, "gan")


def test_second_call_touches_nothing_and_runs_beside_others():
    python = os.path.join(REPO, ".venv", "bin", "python")
    before = os.lstat(python)
    # Several calls at once, while this test process itself runs from the same .venv.
    procs = [subprocess.Popen([GAN, "--help"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "COMMAND" in out
        assert "[setup]" not in err, f"a second call re-synced .venv: {err}"
    after = os.lstat(python)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_resync_is_refused_while_a_command_runs(tmp_path):
    """uv.lock changed (stamp differs) while another ./gan command holds the venv: exit 2 with a
    message, and the venv is left alone."""
    shutil.copy(GAN, tmp_path / "gan")
    shutil.copy(os.path.join(REPO, "uv.lock"), tmp_path / "uv.lock")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    fake_python = tmp_path / ".venv" / "bin" / "python"
    fake_python.write_text("#!/bin/sh\necho ran\n")
    fake_python.chmod(0o755)
    (tmp_path / ".venv" / ".gan-sync-stamp").write_text("a stamp of another lock\n")
    (tmp_path / ".cache").mkdir()
    with open(tmp_path / ".cache" / "gan-venv.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # what a running ./gan command holds
        result = subprocess.run([str(tmp_path / "gan"), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "another ./gan command is running" in result.stderr
    assert fake_python.read_text() == "#!/bin/sh\necho ran\n"
    assert (tmp_path / ".venv" / ".gan-sync-stamp").read_text() == "a stamp of another lock\n"


def test_commands_run_in_the_callers_directory(tmp_path):
    """A relative path means the caller's folder, not the repository's."""
    result = subprocess.run([GAN, "make-data", "--out_dir", "relative/digits"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "relative" / "digits" / "span-1")) == [str(c) for c in range(10)]
    assert not os.path.exists(os.path.join(REPO, "relative"))

"""./gan's choice between the two lines of the stack (docs/platforms.md), from a copy of ./gan with
no .venv, so every call goes through the choice (each stops before installing anything)."""
import os
import shutil
import subprocess

import pytest

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def glibc() -> tuple[int, ...]:
    version = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    return tuple(int(part) for part in version.split("."))


OLD_GLIBC = glibc() < (2, 39)


@pytest.fixture
def fresh_gan(tmp_path):
    """./gan and uv.lock alone in a folder, with a PATH of the system's tools and no pyenv."""
    for name in ("gan", "uv.lock"):
        shutil.copy2(os.path.join(REPO, name), tmp_path / name)

    def run(*args, **env):
        environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "no-pyenv"), **env}
        return subprocess.run([str(tmp_path / "gan"), *args], env=environment, capture_output=True, text=True, timeout=60)
    return run


def test_an_unknown_line_is_refused_by_name(fresh_gan):
    result = fresh_gan("--help", GAN_TFX_LINE="2.0")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: GAN_TFX_LINE=2.0 is not a line; use 1.21 (Python 3.11-3.13, "
                                     "glibc >= 2.39) or 1.16 (Python 3.10)")


@pytest.mark.skipif(not OLD_GLIBC, reason="this machine's glibc runs the 1.21 line")
def test_the_current_line_is_refused_where_glibc_is_too_old(fresh_gan):
    result = fresh_gan("--help", GAN_TFX_LINE="1.21")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: GAN_TFX_LINE=1.21 needs glibc >= 2.39 (its TFDV and ML Metadata wheels are manylinux_2_39); "
        f"this machine has glibc {'.'.join(map(str, glibc()))}")
    assert not os.path.exists(os.path.join(os.path.dirname(result.args[0]), ".venv"))  # nothing was set up


@pytest.mark.skipif(not OLD_GLIBC or os.path.exists("/usr/bin/python3.10"),
                    reason="needs a machine of the 1.16 line whose system has no Python 3.10")
def test_without_a_usable_python_it_says_what_to_install(fresh_gan):
    # /usr/bin has this machine's own Python (3.11 on Debian 12), which the 1.16 line cannot use.
    result = fresh_gan("run")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: no Python 3.10 found on PATH; this machine's glibc ")
    assert "only the TFX 1.16 line runs here and it needs Python 3.10" in line and "pyenv install 3.10" in line
    assert line.endswith("or let uv download one: GAN_FETCH_PYTHON=1 ./gan ... (needs github.com)")


@pytest.mark.skipif(not os.path.exists(os.path.join(REPO, ".cache", "uv-bootstrap", "bin", "uv")),
                    reason="no bootstrapped uv (./gan installs it into .cache/uv-bootstrap/)")
def test_a_python_download_that_fails_is_one_line_naming_it(fresh_gan, tmp_path):
    # No download can succeed here (no route to github.com); a mirror that does not exist fails the
    # same way on any machine. The checkout's uv stands in for the one ./gan would install.
    os.makedirs(tmp_path / ".cache")
    os.symlink(os.path.join(REPO, ".cache", "uv-bootstrap"), tmp_path / ".cache" / "uv-bootstrap")
    result = fresh_gan("run", GAN_TFX_LINE="1.16", GAN_FETCH_PYTHON="1",
                       UV_PYTHON_INSTALL_MIRROR=f"file://{tmp_path}/no-mirror", UV_OFFLINE="1")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"[setup] GAN_FETCH_PYTHON=1: uv downloads Python 3.10 into {tmp_path}/.cache/python"
    assert lines[1].startswith("error: uv could not download Python 3.10: ") and len(lines) == 2, lines


@pytest.mark.skipif(OLD_GLIBC or os.path.exists("/usr/bin/python3.10"),
                    reason="needs a machine of the 1.21 line whose system has no Python 3.10 (the Debian 13 root)")
def test_forcing_the_old_line_without_its_python_says_what_to_install(fresh_gan):
    result = fresh_gan("run", GAN_TFX_LINE="1.16")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: GAN_TFX_LINE=1.16 needs Python 3.10 and none was found on PATH; install it")

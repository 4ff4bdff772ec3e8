"""The installable package: a wheel built from this checkout offers the same commands as `tfx-gan`.

Real build and install: the wheel is built (setuptools from the locked .venv, no download) from a
copy of the sources, installed without dependencies into a fresh venv that sees the locked .venv's
packages through a .pth file, and its `tfx-gan` runs from a scratch folder with no PYTHONPATH.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from tfx_gan import PACKAGES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UV = os.path.join(REPO, ".cache", "uv-bootstrap", "bin", "uv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if not os.path.exists(UV):
        pytest.skip("no bootstrapped uv (./gan installs it into .cache/uv-bootstrap/)")
    src = tmp_path_factory.mktemp("src")
    # Tracked and new (not ignored) files: what a clone plus this change would build from.
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *PACKAGES, "tfx_gan",
                            "pyproject.toml", "README.md"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in files.stdout.split():
        os.makedirs(src / os.path.dirname(name), exist_ok=True)
        if os.path.islink(os.path.join(REPO, name)):  # tfx_gan/<package> -> ../<package>
            os.symlink(os.readlink(os.path.join(REPO, name)), src / name)
            continue
        with open(os.path.join(REPO, name), "rb") as f:
            (src / name).write_bytes(f.read())
    built = subprocess.run([UV, "build", "--wheel", "--no-build-isolation", "--python", sys.executable,
                            "--out-dir", str(src / "dist")], cwd=src, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = (src / "dist").glob("tfx_gan-*.whl")
    return path, files.stdout.split()


def test_wheel_holds_every_module_and_the_package_data_under_one_umbrella(wheel):
    path, sources = wheel
    with zipfile.ZipFile(path) as z:
        names = {n for n in z.namelist() if ".dist-info/" not in n}
        entry_points = z.read(next(n for n in z.namelist() if n.endswith("entry_points.txt"))).decode()
    want = {f"tfx_gan/{name}" for name in sources
            if name.startswith(PACKAGES) and (name.endswith(".py") or name.endswith((".yaml", ".pbtxt", "Dockerfile")))}
    assert want - names == set(), "linked in tfx_gan/ (PACKAGES)? data files in [tool.setuptools.package-data]?"
    assert all(n.startswith("tfx_gan/") for n in names), sorted(n for n in names if not n.startswith("tfx_gan/"))
    assert "tfx-gan = tfx_gan:main" in entry_points


def test_installed_tfx_gan_runs_from_anywhere(wheel, tmp_path):
    path, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "-q", str(venv), "--python", os.path.realpath(sys.executable)], check=True, timeout=120)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    locked = [p for p in sys.path if p.endswith("site-packages") and os.path.isdir(os.path.join(p, "tfx"))][0]
    (site / "locked_venv.pth").write_text(locked + "\n")  # the dependencies, without reinstalling them
    subprocess.run([UV, "pip", "install", "-q", "--no-deps", "--python", str(venv / "bin" / "python"), str(path)],
                   check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    scratch = tmp_path / "elsewhere"
    scratch.mkdir()

    shown = subprocess.run([str(venv / "bin" / "tfx-gan"), "--help"], cwd=scratch, env=env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: tfx-gan") and "compile-kfp" in shown.stdout

    # The commands' code is the installed copy, not this checkout.
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import tfx_gan.pipeline.config as c; print(c.__file__)"],
                           cwd=scratch, env=env, capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(site / "tfx_gan" / "pipeline")), where.stdout + where.stderr

    # Only tfx_gan is a top-level name: a Kubeflow SDK's `kubeflow` package stays importable beside it.
    shown = subprocess.run([str(venv / "bin" / "python"), "-c", BOTH_IMPORT], cwd=scratch,
                           env={**env, "PYTHONPATH": fake_kubeflow_sdk(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert shown.stdout.split() == ["True", "[]"], shown.stderr[-2000:]


# Our Kubeflow code and a Kubeflow SDK's package, and which generic names are importable on their own.
BOTH_IMPORT = ("import importlib.util, tfx_gan.kubeflow.compile, kubeflow.training as t; "
               "print(t.SDK, [n for n in ('components', 'data', 'pipeline', 'server', 'training', 'metrics') "
               "if importlib.util.find_spec(n)])")


def fake_kubeflow_sdk(tmp_path) -> str:
    """A stand-in for an installed Kubeflow SDK (kubeflow-training's layout: kubeflow/training/)."""
    sdk = tmp_path / "sdk"
    (sdk / "kubeflow" / "training").mkdir(parents=True)
    (sdk / "kubeflow" / "__init__.py").write_text("")
    (sdk / "kubeflow" / "training" / "__init__.py").write_text("SDK = True\n")
    return str(sdk)


def test_a_checkout_first_on_sys_path_does_not_shadow_a_kubeflow_sdk(tmp_path):
    # The repository's top-level folders are namespace portions (no __init__.py): the SDK's regular
    # package wins the name `kubeflow`, ours is reached as tfx_gan.kubeflow.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, fake_kubeflow_sdk(tmp_path)])}
    shown = subprocess.run([sys.executable, "-c", BOTH_IMPORT], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split()[0] == "True"

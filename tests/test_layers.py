"""The package layout is a contract: the layer order in pyproject.toml, checked with import-linter on
the real import graph, and one list of the packages (tfx_gan.PACKAGES) that the links, the layers,
the wheel and the lineage's code version all follow."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # 3.10: the same parser as a package (locked through the dev tools)
    import tomli as tomllib

import tfx_gan
from tfx_gan import LIBRARIES, MODEL_PACKAGES, PACKAGES, PACKAGES_DIR

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_top_level_code_folder_is_a_package_linked_into_the_import_root():
    linked = sorted(name for name in os.listdir(PACKAGES_DIR) if os.path.islink(os.path.join(PACKAGES_DIR, name)))
    assert linked == sorted(PACKAGES)
    for name in PACKAGES:
        assert os.readlink(os.path.join(PACKAGES_DIR, name)) == os.path.join("..", name)
        assert not os.path.exists(os.path.join(REPO, name, "__init__.py")), f"{name}/ must stay a namespace portion"
    # every other top-level folder with Python in it is not part of the product
    code_folders = {name for name in os.listdir(REPO) if os.path.isdir(os.path.join(REPO, name))
                    and not name.startswith(".") and any(f.endswith(".py") for f in os.listdir(os.path.join(REPO, name)))}
    assert code_folders - set(PACKAGES) == {"tfx_gan", "tests", "benchmarks"}
    assert set(MODEL_PACKAGES) <= set(PACKAGES) and PACKAGES[:len(LIBRARIES)] == LIBRARIES


def test_pyproject_layers_are_the_packages_in_order():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        linter = tomllib.load(f)["tool"]["importlinter"]
    layers = next(c for c in linter["contracts"] if c["type"] == "layers")["layers"]
    assert layers == [f"tfx_gan.{name}" for name in reversed(PACKAGES)]
    assert linter["root_packages"] == [f"tfx_gan.{name}" for name in PACKAGES]


def test_import_linter_contracts_hold():
    """Libraries never import components, pipeline, kubeflow or the server; components never import
    the pipeline or Kubeflow; the libraries import no TFX; no product module imports the KFP emulator;
    no import cycles between modules."""
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                             "sys.exit(lint_imports(no_cache=True, no_logo=True))"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


def test_the_import_root_is_light():
    result = subprocess.run([sys.executable, "-c", "import sys, tfx_gan; print(sorted(m for m in sys.modules "
                             "if m.split('.')[0] in ('tensorflow', 'tfx', 'keras')))"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
    assert tfx_gan.package_dir("training") == os.path.join(REPO, "training")

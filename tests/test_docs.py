"""The documentation is checked like code: the configuration reference is what pipeline/docs.py
writes from the option definitions and registries (a new option or architecture cannot be missing
from it), the mkdocs site builds with --strict (broken links and anchors fail), every relative
link in README.md resolves, and the README stays short enough to read in five minutes."""
import os
import re
import subprocess
import sys

import pytest

from tfx_gan.training.losses import LOSSES
from tfx_gan.training.models import ARCHITECTURES
from tfx_gan.metrics.extractors import EXTRACTORS
from tfx_gan.metrics.sample_metrics import METRICS
from tfx_gan.pipeline.docs import CONFIGURATION_PAGE, configuration_reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")


def test_the_configuration_reference_is_current():
    with open(CONFIGURATION_PAGE, encoding="utf-8") as f:
        assert f.read() == configuration_reference(), "docs/configuration.md is stale: run ./gan docs"


@pytest.mark.parametrize("registry", [ARCHITECTURES, LOSSES, EXTRACTORS, METRICS], ids=lambda r: r.kind)
def test_the_reference_has_every_registry_entry(registry):
    reference = configuration_reference()
    assert registry.markdown_table() in reference
    assert all(f"`{name}`" in reference for name in registry.names())


def test_mkdocs_builds_strict(tmp_path):
    mkdocs = os.path.join(os.path.dirname(sys.executable), "mkdocs")
    result = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()


def test_readme_links_resolve_and_it_is_short():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if "://" not in link]
    assert relative, "README links into docs/"
    missing = [link for link in relative if not os.path.exists(os.path.join(REPO, link))]
    assert not missing, f"README links to missing files: {missing}"
    first_60 = "\n".join(text.splitlines()[:60])
    assert "./gan run" in first_60 and "./gan test" in first_60

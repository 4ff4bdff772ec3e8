"""The README's registry tables are the registries' own (Registry.markdown_table), so a new
architecture, loss, extractor or metric cannot be missing from the docs."""
import os

import pytest

from components.gan.losses import LOSSES
from components.gan.models import ARCHITECTURES
from components.metrics.extractors import EXTRACTORS
from components.metrics.sample_metrics import METRICS

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


@pytest.mark.parametrize("registry", [ARCHITECTURES, LOSSES, EXTRACTORS, METRICS], ids=lambda r: r.kind)
def test_readme_table_matches_the_registry(registry):
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    assert registry.markdown_table() in readme, f"README's {registry.kind} table differs from:\n{registry.markdown_table()}"

"""The ``tfx-gan`` command of an installed wheel: the same commands as ``./gan`` (minus ``test``).

The wheel keeps the project's packages under this folder (tfx_gan/components, tfx_gan/data,
tfx_gan/pipeline, tfx_gan/kubeflow), so their generic names take no top-level name in site-packages,
while the code still imports them as ``components.x``: TFX records executor classes by that name
(``components.gan_trainer.Executor``) in pipeline IR, and the Kubeflow image runs them so. The
command therefore puts this folder first on sys.path, and on PYTHONPATH for the processes TFX and
Beam start, before it hands over to pipeline.cli.
"""
import os
import sys


def packages_root() -> str:
    """The folder holding components/, data/, pipeline/, kubeflow/: this one in a wheel, its parent
    in a checkout of the repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    return here if os.path.isdir(os.path.join(here, "components")) else os.path.dirname(here)


def main() -> int:
    root = packages_root()
    sys.path.insert(0, root)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    from pipeline.cli import main as cli_main

    return cli_main(prog="tfx-gan")

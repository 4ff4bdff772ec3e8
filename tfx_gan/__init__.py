"""The project's one import root: every module is ``tfx_gan.<package>.<module>``.

The packages are the repository's top-level folders (``PACKAGES``). In a checkout each is linked
into this folder (``tfx_gan/training -> ../training``), so Python, editors (jedi, Pylance) and mypy
all find ``tfx_gan.training.train`` as a plain file path, with no import hook; the wheel holds the
same folders inside ``tfx_gan/`` (setuptools follows the links when it builds it), and the Kubeflow
image copies the checkout. The names TFX records in pipeline IR
(``tfx_gan.components.gan_trainer.Executor``) are therefore the same everywhere. The top-level
folders have no ``__init__.py`` (namespace portions), so none of their generic names
(``components``, ``data``, ``kubeflow``...) shadows another distribution's package when the
repository is on sys.path: the Kubeflow SDKs' ``kubeflow.*`` stays importable.

Keras 3 everywhere, set here because every entry point (./gan, pytest, the benchmarks, TFX's
executors) imports this package before TensorFlow: tfx imports tensorflow_transform, which sets
TF_USE_LEGACY_KERAS=1 in os.environ when it is unset, and every child process (Beam workers,
subprocesses) would then get Keras 2 as tf.keras.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The packages, in layer order (lowest first; pyproject.toml's import-linter contract enforces it):
# TFX-free libraries, then the serving app, then the TFX components and the orchestration.
LIBRARIES = ("common", "data", "metrics", "training", "evaluation")
PACKAGES = LIBRARIES + ("server", "components", "pipeline", "kubeflow")
# The packages whose code runs between a user's image files and a trained model: the lineage's code
# version hashes them (common/lineage.py), so a change to any of them is a new model.
MODEL_PACKAGES = ("common", "data", "training", "components")

PACKAGES_DIR = os.path.dirname(os.path.abspath(__file__))  # holds tfx_gan/<package>: links or folders


def package_dir(name: str) -> str:
    """The folder of one package (in a checkout, the top-level folder the link points to)."""
    return os.path.realpath(os.path.join(PACKAGES_DIR, name))


# The folder that holds the package folders themselves: the repository root in a checkout (with
# docs/, the gan script and the Dockerfile's context), tfx_gan/ in an installed wheel. Paths to
# the code's own files start here; a module's __file__ is the link's path (tfx_gan/pipeline/...),
# one folder too deep in a checkout for anything outside the packages.
SOURCE_ROOT = os.path.dirname(package_dir("common"))


def __getattr__(name):
    # KFP v2's container entrypoint imports a custom artifact class from its schema title, which TFX
    # sets to TYPE_NAME and requires in the form <namespace>.<Type>: "tfx_gan.ReferenceStats".
    # Resolved lazily: importing this package must stay light (every command imports it first).
    if name == "ReferenceStats":
        from tfx_gan.components.reference_stats_gen import ReferenceStats

        return ReferenceStats
    raise AttributeError(f"module 'tfx_gan' has no attribute {name!r}")


def main() -> int:
    """The ``tfx-gan`` command of an installed wheel: the same commands as ``./gan`` (minus ``test``)."""
    from tfx_gan.pipeline.cli import main as cli_main

    return cli_main(prog="tfx-gan")

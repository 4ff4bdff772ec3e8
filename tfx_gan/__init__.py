"""The project's one import root: every module is ``tfx_gan.<folder>.<module>``.

In a checkout the folders are the repository's top level (components/, data/, pipeline/, server/,
kubeflow/) and this package adds the repository to its own ``__path__``; an installed wheel holds
them inside tfx_gan/. Either way no generic name (``components``, ``data``, ``kubeflow``...) is
taken at the top level of sys.path, so the Kubeflow SDKs' own ``kubeflow.*`` stays importable, and
the names TFX records in pipeline IR (``tfx_gan.components.gan_trainer.Executor``) are the same in
a checkout, a wheel and the Kubeflow image.

Keras 3 everywhere, set here because every entry point (./gan, pytest, the benchmarks, TFX's
executors) imports this package before TensorFlow: tfx imports tensorflow_transform, which sets
TF_USE_LEGACY_KERAS=1 in os.environ when it is unset, and every child process (Beam workers,
subprocesses) would then get Keras 2 as tf.keras.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_HERE = os.path.dirname(os.path.abspath(__file__))
# The folder holding components/, data/, pipeline/, server/, kubeflow/.
PACKAGES_ROOT = _HERE if os.path.isdir(os.path.join(_HERE, "components")) else os.path.dirname(_HERE)
if PACKAGES_ROOT != _HERE:
    __path__.append(PACKAGES_ROOT)  # a checkout (or the Kubeflow image, laid out like one)


def __getattr__(name):
    # KFP v2's container entrypoint imports a custom artifact class from its schema title, which TFX
    # sets to TYPE_NAME and requires in the form <namespace>.<Type>: "tfx_gan.ReferenceStats".
    # Resolved lazily, so importing this package stays light.
    if name == "ReferenceStats":
        from tfx_gan.components.reference_stats_gen import ReferenceStats

        return ReferenceStats
    raise AttributeError(f"module 'tfx_gan' has no attribute {name!r}")


def main() -> int:
    """The ``tfx-gan`` command of an installed wheel: the same commands as ``./gan`` (minus ``test``)."""
    from tfx_gan.pipeline.cli import main as cli_main

    return cli_main(prog="tfx-gan")

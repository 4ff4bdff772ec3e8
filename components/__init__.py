"""The project's TFX components and the libraries they call.

Keras 3 everywhere, set here because every entry point (./gan, pytest, the benchmarks, TFX's
executors) imports this package before TensorFlow: tfx imports tensorflow_transform, which sets
TF_USE_LEGACY_KERAS=1 in os.environ when it is unset, and every child process (Beam workers,
subprocesses) would then get Keras 2 as tf.keras.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "0"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def __getattr__(name):
    # KFP v2's container entrypoint imports a custom artifact class from its schema title, which TFX
    # sets to TYPE_NAME and requires in the form <namespace>.<Type>: "components.ReferenceStats".
    # Resolved lazily, so importing this package stays light.
    if name == "ReferenceStats":
        from components.reference_stats_gen import ReferenceStats

        return ReferenceStats
    raise AttributeError(f"module 'components' has no attribute {name!r}")

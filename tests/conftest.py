import os

import components  # noqa: F401  sets the Keras environment before anything imports TensorFlow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import os

import pytest

import tfx_gan  # noqa: F401  sets the Keras environment before anything imports TensorFlow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_serving_model(tmp_path_factory) -> str:
    """A Format-Serving folder as GanTrainer writes it, from a tiny Keras generator (28x28x1):
    the serving SavedModel, gan_metadata.json (latent_dim 4), Keras G and D."""
    import keras

    from tfx_gan.common import layout
    from tfx_gan.training.export import export_generator, save_keras_models

    latent_dim = 4
    path = str(tmp_path_factory.mktemp("model") / layout.SERVING_DIR)
    generator = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(28 * 28, activation="tanh"),
                                  keras.layers.Reshape((28, 28, 1))])
    discriminator = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    export_generator(generator, path, latent_dim)
    save_keras_models(generator, discriminator, path)
    return path

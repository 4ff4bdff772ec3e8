"""TrainConfig: defaults, from_dict/to_dict, and the error messages for bad configs."""
import logging
import glob
import os

import pytest
import yaml

from tfx_gan.training.config import ARCHITECTURES, ConfigError, TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_defaults_round_trip():
    config = TrainConfig()
    assert config.architecture == "auto" and config.loss == "bce" and config.latent_dim == 100
    assert config.g_learning_rate == 2e-4 and config.beta_1 == 0.5 and config.seed == 0
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert TrainConfig.from_dict({}) == config
    assert TrainConfig.from_dict(None) == config


def test_yaml_values_are_coerced():
    config = TrainConfig.from_dict(yaml.safe_load("g_learning_rate: 2e-4\nd_learning_rate: 1\nema_decay: 0\n"
                                                  "diffaugment: [translation, color]\ntrain_steps: 100.0\n"))
    assert config.g_learning_rate == 2e-4  # PyYAML reads 2e-4 as a string
    assert config.d_learning_rate == 1.0 and isinstance(config.d_learning_rate, float)
    assert config.diffaugment == "translation,color" and config.train_steps == 100


@pytest.mark.parametrize("overrides, fragments", [
    ({"architecture": "dcgan28"},
     ["training.architecture", "'dcgan28' is not one of: auto, mlp, dcgan_28, dcgan_rgb, dcgan, conditional_dcgan"]),
    ({"loss": "wgan"}, ["training.loss", "bce, minimax, lsgan, wgan_gp, hinge"]),
    ({"mixed_precision": "bf16"}, ["training.mixed_precision", "auto, off, mixed_float16, mixed_bfloat16"]),
    ({"distribution": "tpu"}, ["training.distribution", "auto, none, mirrored, multi_worker"]),
    ({"diffaugment": "translation,flip"}, ["training.diffaugment", "'flip'", "translation, cutout, color"]),
    ({"learning_rate": 1e-3}, ["unknown key", "'learning_rate'", "g_learning_rate"]),
    ({"batch_size": "64"}, ["training.batch_size", "expected an integer"]),
    ({"batch_size": 0}, ["training.batch_size", "> 0"]),
    ({"spectral_norm": "yes"}, ["training.spectral_norm", "true or false"]),
    ({"g_learning_rate": "fast"}, ["training.g_learning_rate", "expected a finite number"]),
    ({"beta_1": 1.0}, ["training.beta_1", "[0, 1)"]),
    ({"ema_decay": 1.5}, ["training.ema_decay", "0 disables"]),
    ({"r1_gamma": -1}, ["training.r1_gamma", ">= 0"]),
    ({"architecture": 3}, ["training.architecture", "expected a string"]),
])
def test_bad_values_name_the_key_and_choices(overrides, fragments):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(overrides)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_validate_for_data():
    TrainConfig(architecture="dcgan_28").validate_for_data((28, 28, 1), None)
    TrainConfig(architecture="mlp").validate_for_data((28, 28, 1), None)
    for size in (28, 32, 64, 128):
        TrainConfig(architecture="dcgan_rgb").validate_for_data((size, size, 3), None)
        TrainConfig(architecture="conditional_dcgan").validate_for_data((size, size, 1), 3)

    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture="dcgan_28").validate_for_data((32, 32, 3), None)
    message = str(err.value)
    assert "'dcgan_28' cannot produce 32x32x3" in message and "supports: 28x28x1" in message
    assert "dcgan_rgb" in message and "conditional_dcgan" in message  # the ones that fit

    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture="dcgan_rgb").validate_for_data((48, 48, 3), None)
    assert "28x28x3, 32x32x3, 64x64x3, 128x128x3" in str(err.value) and "no architecture supports 48x48x3" in str(err.value)

    with pytest.raises(ConfigError) as err:
        TrainConfig(architecture="conditional_dcgan").validate_for_data((28, 28, 1), None)
    assert "needs labelled data" in str(err.value) and "dcgan_28" in str(err.value)


def test_example_configs_are_valid():
    paths = sorted(glob.glob(os.path.join(ROOT, "pipeline", "configs", "examples", "*.yaml")))
    found = set()
    for path in paths:
        with open(path) as f:
            raw = yaml.safe_load(f)
        if "training" in raw:
            found.add(TrainConfig.from_dict(raw["training"]).architecture)
    assert found >= set(ARCHITECTURES), f"example configs cover {sorted(found)}"


def test_auto_chooses_the_architecture_from_the_data(caplog):
    caplog.set_level(logging.INFO, logger="tfx_gan")
    auto = TrainConfig(architecture="auto")
    cases = {((28, 28, 1), 10): "conditional_dcgan", ((64, 64, 3), 2): "conditional_dcgan",
             ((28, 28, 1), None): "dcgan", ((64, 64, 3), None): "dcgan", ((128, 128, 1), None): "dcgan"}
    for (shape, classes), expected in cases.items():
        assert auto.validate_for_data(shape, classes).architecture == expected
    assert "training.architecture auto: the recipe for 128x128x1 images, unlabelled:" in caplog.text
    assert TrainConfig(architecture="auto", self_conditioning=10).validate_for_data((32, 32, 3), None).conditional
    with pytest.raises(ConfigError, match="no architecture supports 48x64x3"):
        auto.validate_for_data((48, 64, 3), None)
    with pytest.raises(ConfigError, match="chosen from the data first"):
        auto.conditional


def test_the_recipe_decides_only_what_the_config_leaves_out():
    lines = []
    config = TrainConfig.from_dict({"architecture": "auto", "train_steps": 123, "diffaugment": ""})
    assert config.given == {"architecture", "train_steps", "diffaugment"}
    resolved, recipe = config.resolve_for_data((64, 64, 3), 9, 1500, log=lines.append)
    assert resolved.architecture == "conditional_dcgan" and resolved.train_steps == 123
    assert resolved.diffaugment == "" and recipe["diffaugment"]["reason"] == "set in the config"
    assert recipe["train_steps"] == {"value": 123, "reason": "set in the config"}
    assert resolved.max_minutes == 15.0 and "time budget" in recipe["max_minutes"]["reason"]
    assert lines[0] == "training.architecture auto: the recipe for 1,500 64x64x3 images, 9 classes:"
    assert any(line.startswith("  training.max_minutes = 15.0: ") for line in lines)
    # the resolved config is explicit everywhere: it round-trips as it is and is not resolved again
    again = TrainConfig.from_dict(resolved.to_dict())
    assert again == resolved and again.resolve_for_data((64, 64, 3), 9, 1500)[1] == {}
    # what a component receives: only the options the config set
    assert config.given_dict() == {"architecture": "auto", "train_steps": 123, "diffaugment": ""}
    assert config.replace(seed=3).given == {"architecture", "train_steps", "diffaugment", "seed"}


def test_an_explicit_architecture_keeps_every_default():
    config = TrainConfig.from_dict({"architecture": "conditional_dcgan"})
    resolved, recipe = config.resolve_for_data((64, 64, 3), 9, 1500)
    assert recipe == {} and resolved == config and resolved.diffaugment == "" and resolved.max_minutes is None


def test_a_pipeline_config_without_an_architecture_means_auto(tmp_path):
    from tfx_gan.pipeline.config import parse_config

    (tmp_path / "schema.pbtxt").write_text("")
    config = parse_config({"pipeline_name": "p", "data": {"input_base": str(tmp_path),
                                                          "schema_file": str(tmp_path / "schema.pbtxt")},
                           "training": {"train_steps": 10}})
    assert config.training.architecture == "auto"


def test_128px_nets_build_with_the_right_shapes():
    from tfx_gan.training.models import build_models

    for architecture, classes in (("conditional_dcgan", 2), ("dcgan", None)):
        config = TrainConfig(architecture=architecture, g_upsampling="resize", g_width=0.5, g_base_kernel=3, d_kernel=4)
        generator, discriminator = build_models(config, (128, 128, 3), classes)
        assert tuple(generator.output_shape[1:]) == (128, 128, 3)
        assert tuple(discriminator.output_shape[1:]) == (1,)

"""Models of other data are never compared or warm-started from, and class names reach the
user: GanTrainer's gan_metadata.json, `generate --label NAME`, the server's metadata and its
400 for a label out of range, and `serve --model_config_file` as TF Serving reads it.

Real components on tiny data: GanTrainer's function with a 2-step conditional DCGAN, the
evaluation library with its Beam reference job, a loopback server, the generate command."""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import shutil

import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from tfx_gan.common import layout
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.evaluate import evaluate_and_bless
from tfx_gan.training.sampling import samples_grid_size
from tfx_gan.training.export import export_generator, save_keras_models
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.server import generate, server as server_module
from tfx_gan.server.http_server import start_server
from tfx_gan.server.model_config import ModelSource, parse_model_config

SHAPE = (8, 8, 1)
LATENT = 4
CLASSES = ["circle", "square"]
DIGITS_VERSION = 1700000000


def conditional_models(num_classes=len(CLASSES), size=8):
    """A tiny conditional generator ([latent, labels] -> size x size x 1) and discriminator."""
    z, y = keras.Input((LATENT,)), keras.Input((), dtype="int32")
    h = layers.Concatenate()([z, layers.Embedding(num_classes, LATENT)(y)])
    g = keras.Model([z, y], layers.Reshape((size, size, 1))(layers.Dense(size * size, activation="tanh")(h)))
    image, label = keras.Input((size, size, 1)), keras.Input((), dtype="int32")
    d_in = layers.Concatenate()([layers.Flatten()(image), layers.Embedding(num_classes, 4)(label)])
    d = keras.Model([image, label], layers.Dense(1)(d_in))
    return g, d


def export_version(directory, num_classes, size, class_names=None):
    g, d = conditional_models(num_classes, size)
    extra = {"class_names": class_names} if class_names else None
    export_generator(g, str(directory), LATENT, num_classes=num_classes, extra_metadata=extra)
    save_keras_models(g, d, str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8x8 images of 2 classes (dark and bright), split 24 train / 48 held out."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 36)
    images = (rng.uniform(0, 100, size=(72, 8, 8)) + 150 * labels[:, None, None]).astype(np.uint8)
    is_train = np.tile(np.arange(36) < 12, 2)
    train = write_tfrecords(images[is_train], labels[is_train], str(root / "train.gz"))
    held_out = write_tfrecords(images[~is_train], labels[~is_train], str(root / "eval.gz"))
    # A push directory that serves another dataset's generator: 28x28x1 images of 10 classes.
    digits = export_version(root / "digits" / str(DIGITS_VERSION), 10, 28)
    return {"root": root, "train": train, "eval": held_out, "digits": digits}


def test_incomparable_reason_names_shape_classes_and_names():
    digits = {"image_shape": [28, 28, 1], "num_classes": 10}
    assert layout.incomparable_reason("serving version 7", digits, (28, 28, 1), 10) is None
    assert layout.incomparable_reason("serving version 7", digits, (32, 32, 3), 3) == (
        "serving version 7 makes 28x28x1 images of 10 classes, this model 32x32x3 of 3")
    assert layout.incomparable_reason("serving version 7", {"image_shape": [28, 28, 1]}, (28, 28, 1), 10) == (
        "serving version 7 makes 28x28x1 images, unconditional, this model 28x28x1 of 10")
    named = {"image_shape": [8, 8, 1], "num_classes": 2, "class_names": ["cat", "dog"]}
    assert layout.incomparable_reason("v", named, (8, 8, 1), 2, ["cat", "dog"]) is None
    assert layout.incomparable_reason("v", named, (8, 8, 1), 2) is None  # names unknown on one side
    assert layout.incomparable_reason("v", named, (8, 8, 1), 2, CLASSES) == (
        "v makes 8x8x1 images of 2 classes (cat, dog), this model 8x8x1 of 2 (circle, square)")


def test_samples_grid_has_one_column_per_class():
    assert samples_grid_size(10) == (100, 10)
    assert samples_grid_size(3) == (30, 3)
    assert samples_grid_size(None) == (100, 10)
    assert samples_grid_size(200) == (200, 200)


def test_evaluator_scores_without_a_baseline_of_other_images(data):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from tfx_gan.evaluation.reference import build_reference

    root = data["root"]
    build_reference(train_files=data["train"], eval_files=data["eval"], image_shape=SHAPE, num_classes=2,
                    extractors=("random_cnn",), num_samples=20, num_draws=2, seed=0, classifier_epochs=1,
                    cache_dir=str(root / "cache"), data_fingerprint="shapes", out_dir=str(root / "reference"),
                    log=lambda line: None,
                    beam_pipeline=beam.Pipeline(runner="DirectRunner", options=PipelineOptions(direct_num_workers=1)))
    candidate = export_version(root / "candidate", 2, 8, CLASSES)
    config = EvaluationConfig.from_dict({"extractors": ["random_cnn"], "max_fid_over_floor": None,
                                         "min_novelty": None, "min_class_share": None})

    def evaluate(baseline, out):
        return evaluate_and_bless(reference_dir=str(root / "reference"), candidate_dir=candidate, baseline=baseline,
                                  eval_files=data["eval"], image_shape=SHAPE, num_classes=2, config=config,
                                  out_dir=str(root / out), log=lambda line: None)

    # Before: scoring the digits generator on this data failed ("images have shape (28, 28, 1) ...").
    report = evaluate((DIGITS_VERSION, data["digits"]), "evaluation")
    expected = (f"no comparable baseline: serving version {DIGITS_VERSION} makes 28x28x1 images of 10 classes, "
                "this model 8x8x1 of 2")
    assert report["baseline"] is None and report["no_comparable_baseline"] == expected
    assert report["blessed"] and report["reason"].endswith(f"within the thresholds ({expected})")
    saved = json.loads((root / "evaluation" / "metrics.json").read_text())
    assert saved["no_comparable_baseline"] == expected
    assert os.path.exists(report["samples_png"])

    same = shutil.copytree(candidate, root / "push" / "5")  # a comparable serving model is scored
    report = evaluate((5, str(same)), "evaluation2")
    assert report["baseline"]["version"] == 5 and report["no_comparable_baseline"] is None
    assert "no worse than the serving model" in report["reason"]


def test_trainer_records_class_names_and_never_warm_starts_from_other_data(data, tmp_path, caplog):
    """GanTrainer's own function (what the TFX executor calls) with real artifacts."""
    from tfx.types import standard_artifacts

    from tfx_gan.training.config import TrainConfig
    from tfx_gan.training.step import GanTraining
    from tfx_gan.training.warm_start import warm_start
    from tfx_gan.components.gan_trainer import GanTrainer
    from tfx_gan.components.image_example_gen import LABEL_NAMES_PROPERTY
    from tfx_gan.data.schema import curated_schema

    def artifact(kind, name):
        made = kind()
        made.uri = str(tmp_path / name)
        os.makedirs(made.uri, exist_ok=True)
        return made

    examples, schema = artifact(standard_artifacts.Examples, "examples"), artifact(standard_artifacts.Schema, "schema")
    images = np.random.default_rng(1).integers(0, 255, size=(16, 28, 28), dtype=np.uint8)  # same shape as digits,
    write_tfrecords(images, np.arange(16) % 2, os.path.join(examples.uri, "Split-train", "data.gz"))  # 2 classes
    examples.set_string_custom_property("spans", "[0]")
    examples.set_string_custom_property(LABEL_NAMES_PROPERTY, json.dumps(CLASSES))  # as ImageExampleGen does
    with open(os.path.join(schema.uri, "schema.pbtxt"), "w") as f:
        f.write(str(curated_schema(28, 28, 1, 2)))
    push = tmp_path / "push"
    shutil.copytree(data["digits"], push / str(DIGITS_VERSION))
    training = {"architecture": "conditional_dcgan", "batch_size": 8, "train_steps": 2, "log_every_steps": 1,
                "checkpoint_every_steps": 2, "sample_every_steps": 0, "warm_start": True}
    model = artifact(standard_artifacts.Model, "model")
    caplog.set_level(logging.INFO, logger="tfx_gan")
    GanTrainer.EXECUTOR_SPEC.executor_class._FUNCTION(
        examples=examples, schema=schema, anomalies=artifact(standard_artifacts.ExampleAnomalies, "anomalies"),
        model=model, model_run=artifact(standard_artifacts.ModelRun, "run"), training_config=json.dumps(training),
        checkpoint_root=str(tmp_path / "ckpt"), push_destination=str(push))

    assert (f"WARNING: warm start skipped: the generator in {push / str(DIGITS_VERSION)} makes 28x28x1 images of "
            "10 classes, this model 28x28x1 of 2; training from scratch") in caplog.text
    assert model.get_string_custom_property("warm_started_from") == ""
    metadata = layout.read_metadata(layout.serving_dir(model.uri))
    assert metadata["class_names"] == CLASSES and metadata["num_classes"] == 2

    # The library refuses too, naming the difference, and leaves the weights as they were.
    trainer = GanTraining(TrainConfig.from_dict(training), (28, 28, 1), 2, "float32")
    before = [w.copy() for w in trainer.generator.get_weights()]
    logs = []
    assert not warm_start(trainer, data["digits"], logs.append)
    assert logs == [f"WARNING: warm start skipped: the generator in {data['digits']} makes 28x28x1 images of "
                    "10 classes, this model 28x28x1 of 2; training from scratch"]
    assert all((a == b).all() for a, b in zip(before, trainer.generator.get_weights()))


# --------------------------------------------------------------------------- serving
@pytest.fixture(scope="module")
def shapes_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    export_version(root / "shapes" / "1", 3, 28, ["circle", "square", "triangle"])
    config = root / "models.config"  # TF Serving's format, nested blocks and all
    config.write_text("model_config_list {\n  config {\n    name: 'shapes'\n    base_path: 'shapes'\n"
                      "    model_platform: 'tensorflow'\n    model_version_policy { latest { num_versions: 1 } }\n"
                      "  }\n}\n")
    server = start_server(parse_model_config(str(config)), poll_interval_s=0, settle_s=0)
    yield {"root": root, "server": server, "config": config, "push": root / "shapes"}
    server.close()


def call(server, method, path, body=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_model_config_file_as_tf_serving_reads_it(shapes_server, tmp_path):
    assert parse_model_config(str(shapes_server["config"])) == {"shapes": ModelSource(str(shapes_server["push"]))}
    parser = argparse.ArgumentParser()
    server_module.add_arguments(parser)
    args = parser.parse_args(["--model_config_file", str(shapes_server["config"])])
    assert server_module.models_from_args(args) == {"shapes": ModelSource(str(shapes_server["push"]))}
    for text, fragment in (("model_config_list { config { name: 'a' base_path: '/p' model_platform: 'onnx' } }",
                            "only 'tensorflow' SavedModels"),
                           ("model_config_list { config { nme: 'a' } }", "not a TF Serving model config"),
                           ("model_config_list { config { name: 'a' } }", "has no base_path")):
        (tmp_path / "bad.config").write_text(text)
        with pytest.raises(ValueError, match=fragment):
            parse_model_config(str(tmp_path / "bad.config"))


def test_server_shows_class_names_and_refuses_an_unknown_label_before_the_model_runs(shapes_server):
    server = shapes_server["server"]
    status, body = call(server, "GET", "/v1/models/shapes/metadata")
    assert status == 200 and body["metadata"]["gan_metadata"]["class_names"] == ["circle", "square", "triangle"]
    expected = "label 5 is not a class of this model: labels are 0..2 (0 circle, 1 square, 2 triangle)"
    for payload in ({"signature_name": "generate_png", "inputs": {"num_images": 2, "seed": 0, "labels": [5]}},
                    {"instances": [{"latent": [0.0] * LATENT, "labels": 1}, {"latent": [0.0] * LATENT, "labels": 5}]}):
        assert call(server, "POST", "/v1/models/shapes:predict", payload) == (400, {"error": expected})
    status, body = call(server, "POST", "/v1/models/shapes:predict",
                        {"signature_name": "generate_png", "inputs": {"num_images": 2, "seed": 0, "labels": [-1]}})
    assert status == 400 and body["error"].startswith("label -1 is not a class of this model")
    status, body = call(server, "POST", "/v1/models/shapes:predict",
                        {"signature_name": "generate_png", "inputs": {"num_images": 2, "seed": 0, "labels": [2]}})
    assert status == 200 and len(body["outputs"]) == 2


def run_generate(*argv):
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    return generate.run(parser.parse_args([str(a) for a in argv]))


def test_generate_by_class_name_and_one_grid_column_per_class(shapes_server, tmp_path, capsys):
    push, server = shapes_server["push"], shapes_server["server"]
    by_name, by_index, remote = tmp_path / "square", tmp_path / "one", tmp_path / "remote"
    assert run_generate("--push_dir", push, "--num_images", 20, "--label", "square", "--out", by_name,
                        "--settle_s", 0) == 0
    assert f"wrote 20 images of class 1 (square) to {by_name}" in capsys.readouterr().out
    assert run_generate("--push_dir", push, "-n", 20, "--label", 1, "--out_dir", by_index, "--settle_s", 0) == 0
    assert run_generate("--server", server.url, "--model_name", "shapes", "-n", 20, "--label", "square",
                        "--out", remote) == 0
    pictures = [sorted(p.read_bytes() for p in d.glob("img_*.png")) for d in (by_name, by_index, remote)]
    assert len(pictures[0]) == 20 and pictures[0] == pictures[1] == pictures[2]
    manifest = json.loads((by_name / "generate.json").read_text())
    assert (manifest["label"], manifest["class_name"]) == (1, "square")

    every = tmp_path / "every"
    assert run_generate("--push_dir", push, "-n", 7, "--out", every, "--settle_s", 0) == 0
    assert Image.open(every / "grid.png").size == (3 * 30 + 2, 3 * 30 + 2)  # 3 columns: one per class

    capsys.readouterr()
    assert run_generate("--push_dir", push, "--label", "hexagon", "--out", tmp_path / "no", "--settle_s", 0) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--label 'hexagon' is not a class of the model" in err
    assert "its labels: 0..2 (0 circle, 1 square, 2 triangle)" in err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("module", [generate, server_module])
def test_every_flag_has_help(module):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    missing = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert not missing

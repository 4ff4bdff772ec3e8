"""The real TFX pipeline, end to end, on a small subset of the bundled digits.

Nothing is mocked: LocalDagRunner, the Beam jobs of ExampleGen/StatisticsGen, TFDV, training,
evaluation and Pusher all run. The runs share one pipeline root and metadata DB, in order:
  1. a clean span trains, evaluates and pushes a generator that loads and serves;
  2. the same inputs again: every component is a cache hit;
  2b. a deliberately worse generator (a handful of steps) is evaluated against the serving one
     and not pushed: the better generator stays served;
  2c. a new span retrains warm-started from the generator serving now;
  3. a span of 32x32 images: ExampleValidator's anomalies stop the run before training;
  4. a span with a corrupt PNG: ImageExampleGen names the file and nothing is pushed.
"""
import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfx_gan.common import layout
from tfx_gan.common.layout import list_versions as serving_versions
from tfx_gan.common.validation_gate import DataValidationError
from tfx_gan.data.digits import digits_28x28
from tfx_gan.data.ingest import IngestionError
from tfx_gan.pipeline.config import load_config
from tfx_gan.pipeline.local_runner import run_pipeline

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = [pytest.mark.slow, pytest.mark.current_line]

ALL_COMPONENTS = {"ImageExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "DriftValidator",
                  "GanTrainer", "ReferenceStatsGen", "GanEvaluator", "Pusher"}


def write_span(base, span, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
        path = os.path.join(base, f"span-{span}", str(label), f"{i:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(image).save(path)


def write_digits_span(base, span, start=0, per_class=30):
    """Span ``span`` of real digits: images start..start+per_class-1 of every class (300 by default)."""
    images, labels = digits_28x28()
    keep = np.concatenate([np.flatnonzero(labels == c)[start:start + per_class] for c in range(10)])
    write_span(base, span, images[keep], labels[keep])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data_dir = str(root / "data")
    write_digits_span(data_dir, 1)  # 300 images
    config = load_config(overrides={
        "data": {"input_base": data_dir},
        "training": {"train_steps": 150, "batch_size": 32, "log_every_steps": 20,
                     "checkpoint_every_steps": 20, "sample_every_steps": 20},
        # A few training steps cannot reach a good FID; blessing here is judged on finiteness only.
        "evaluation": {"num_samples": 100, "classifier_epochs": 2, "max_fid_over_floor": None, "min_novelty": None,
                       "min_class_share": None},
        "push_destination": str(root / "serving"),
        "output_dir": str(root / "out"),
    })
    return config, data_dir


def test_first_run_pushes_a_servable_generator(setup):
    config, _ = setup
    summary = run_pipeline(config)
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert set(states) == ALL_COMPONENTS
    assert all(state == "COMPLETE" for state in states.values()), states

    with open(summary["metrics_json"]) as f:
        metrics = json.load(f)
    assert np.isfinite(metrics["candidate"]["fid"]) and metrics["candidate"]["fid"] > 0
    assert np.isfinite(metrics["candidate"]["fid_floor"])
    assert metrics["blessed"] is True and metrics["reason"].startswith("blessed")
    # N: the floor half of the ~60 held-out images, the same for every generator and the floor.
    assert list(metrics["extractors"]) == ["domain_cnn", "random_cnn"]
    assert 10 <= metrics["num_samples"] == metrics["num_floor"] < 100 and metrics["num_draws"] == 5
    for scores in metrics["candidate"]["scores"].values():
        assert len(scores["fid"]["values"]) == 5 and scores["fid"]["std"] > 0
    assert os.path.getsize(summary["samples_png"]) > 1000
    # Classification Accuracy Score: classifiers trained on its samples and on real images, 3 seeds
    cas = metrics["cas"]
    assert cas["seeds"] == [0, 1, 2] and cas["n"] >= 100 and cas["num_test"] >= 50
    assert 0.5 < cas["real"] <= 1 and 0 <= cas["generated"] <= 1  # real digits teach the small CNN the classes
    assert cas["ratio"] == pytest.approx(cas["generated"] / cas["real"])
    assert cas["ratio_range"][0] <= cas["ratio"] * 1.0001 and len(cas["per_class_generated"]) == 10
    # TFMA's own reader sees the evaluation: discriminator and CAS figures, overall and per class
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(os.path.dirname(summary["metrics_json"]))
    slices = {key: metrics_by_output for key, metrics_by_output in result.slicing_metrics}
    assert set(slices) == {()} | {(("label", k),) for k in range(10)}
    overall = slices[()]
    assert overall["discriminator"][""]["binary_accuracy"]["doubleValue"] == pytest.approx(
        metrics["candidate"]["d_accuracy"], abs=1e-6)
    assert overall["cas"][""]["binary_accuracy"]["doubleValue"] == pytest.approx(cas["per_seed"][0]["generated"], abs=1e-6)
    assert "auc" in slices[(("label", 3),)]["discriminator"][""]

    versions = serving_versions(config.push_destination)
    assert len(versions) == 1
    model = tf.saved_model.load(versions[0][1])
    # the default config (architecture: auto) chose the conditional DCGAN for the labelled digits:
    # labels in, images of those classes out
    assert "labels" in model.signatures["serving_default"].structured_input_signature[1]
    recipe = layout.read_metadata(versions[0][1])["recipe"]  # what auto chose, each with its reason
    assert recipe["architecture"]["value"] == "conditional_dcgan" and recipe["architecture"]["reason"]
    images = model.signatures["serving_default"](latent=tf.random.normal([5, config.training.latent_dim]),
                                                 labels=tf.constant([0, 3, 3, 9, 1]))["images"]
    assert images.shape == (5, 28, 28, 1)
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    png = model.signatures["generate_png"](num_images=tf.constant(3), seed=tf.constant(7),
                                           labels=tf.constant([3]))["png_bytes"].numpy()
    assert tf.io.decode_png(png[0]).shape == (28, 28, 1)


def test_second_run_with_same_inputs_is_all_cache_hits(setup):
    config, _ = setup
    summary = run_pipeline(config)
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert set(states) == ALL_COMPONENTS
    assert all(state == "CACHED" for state in states.values()), states
    assert len(serving_versions(config.push_destination)) == 1


def test_synthetic_examples_step_and_augment_command_write_generated_training_data(setup, tmp_path, capsys):
    """synthetic.per_class adds SyntheticExamplesGen after Pusher: with every other input unchanged
    only it runs, and its Examples read like ImageExampleGen's. `augment` writes a span folder that
    ingestion accepts."""
    from tfx_gan.data.example_format import load_arrays
    from tfx_gan.data.ingest import label_names, scan
    from tfx_gan.pipeline.config import SyntheticConfig
    from tfx_gan.server import augment

    config, _ = setup
    summary = run_pipeline(dataclasses.replace(config, synthetic=SyntheticConfig(per_class=4)))
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert states.pop("SyntheticExamplesGen", None) == "COMPLETE" and set(states.values()) == {"CACHED"}, states
    images, labels = load_arrays(layout.split_files(summary["synthetic_examples"], "train"), (28, 28, 1))
    assert images.shape == (40, 28, 28, 1) and np.bincount(labels).tolist() == [4] * 10
    assert -1.0 <= images.min() < images.max() <= 1.0

    out = tmp_path / "synthetic" / "span-1"
    push_dir = config.push_destination
    assert augment.main(["--push_dir", push_dir, "--per_class", "3", "--out", str(out), "--settle_s", "0"]) == 0
    assert sorted(os.listdir(out)) == [".augment.json"] + [str(k) for k in range(10)]  # class folder names
    assert all(len(os.listdir(out / str(k))) == 3 for k in range(10))
    records = scan(str(out))  # ingestion reads it as a span (the manifest is hidden)
    assert len(records) == 30 and label_names(records) == [str(k) for k in range(10)]
    assert augment.main(["--push_dir", push_dir, "--per_class", "3", "--out", str(out), "--settle_s", "0"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert all(len(os.listdir(out / str(k))) == 3 for k in range(10))  # nothing overwritten


def test_rerun_without_caching_and_nothing_new_does_not_train(setup):
    # What a scheduled run on Kubeflow (caching off) does when no new data arrived: the trainer
    # finds the serving version was trained on the same spans, files and options, and stops.
    config, _ = setup
    served_before = serving_versions(config.push_destination)
    summary = run_pipeline(dataclasses.replace(config, enable_cache=False))
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert all(state == "COMPLETE" for state in states.values()), states
    assert summary["blessed"] is False
    assert summary["reason"].startswith(f"not trained: no new data since version {served_before[0][0]} (spans 1, ")
    assert serving_versions(config.push_destination) == served_before
    newest_record = layout.read_run_records(config.push_destination)[0]
    assert newest_record["reason"] == summary["reason"] and newest_record["pushed_version"] is None
    assert newest_record["metrics"] is None and newest_record["spans"] == [1]


def test_worse_generator_is_not_pushed(setup):
    config, _ = setup
    served_before = serving_versions(config.push_destination)
    worse = dataclasses.replace(config, training=config.training.replace(train_steps=3, warm_start=False))
    summary = run_pipeline(worse)
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert states["GanTrainer"] == "COMPLETE" and states["GanEvaluator"] == "COMPLETE"
    assert states["ReferenceStatsGen"] == "CACHED"  # same span: the reference is not recomputed
    with open(summary["metrics_json"]) as f:
        metrics = json.load(f)
    assert metrics["baseline"]["version"] == served_before[0][0]
    assert metrics["candidate"]["fid"] > metrics["baseline"]["fid"]
    assert metrics["blessed"] is False and "> serving" in metrics["reason"], metrics["reason"]
    for name in ("fid", "kid", "precision", "recall", "density", "coverage", "novelty"):
        for record in (metrics["baseline"], metrics["candidate"]):
            assert np.isfinite(record["scores"]["domain_cnn"][name]["mean"])
    assert serving_versions(config.push_destination) == served_before
    # The history: the first run pushed its version with its lineage; this one was recorded too.
    first_run = layout.read_run_records(config.push_destination)[-1]
    assert first_run["pushed_version"] == served_before[0][0] and first_run["blessed"] is True
    lineage = layout.read_metadata(served_before[0][1])["lineage"]
    assert lineage["spans"] == [1] and lineage["parent_version"] is None and lineage["metrics"]["domain_cnn_fid"] > 0


def test_new_span_warm_starts_from_the_serving_generator(setup):
    config, data_dir = setup
    served = serving_versions(config.push_destination)[0]
    write_digits_span(data_dir, 5, start=30)  # 300 new digits
    try:
        retrain = dataclasses.replace(config, training=config.training.replace(train_steps=10, warm_start=True),
                                      data=dataclasses.replace(config.data, spans="last:2"))
        summary = run_pipeline(retrain)
    finally:
        shutil.rmtree(os.path.join(data_dir, "span-5"))
    states = {c["component"]: c["state"] for c in summary["components"]}
    assert states["ImageExampleGen"] == "COMPLETE" and states["GanTrainer"] == "COMPLETE"
    assert summary["warm_started_from"] == served[1]  # the weights of the version serving now
    record = layout.read_run_records(config.push_destination)[0]
    assert record["spans"] == [1, 5] and record["parent_version"] == served[0] and record["metrics"]


def test_a_drifted_span_stops_before_training(setup):
    config, data_dir = setup
    served_before = serving_versions(config.push_destination)
    images, labels = digits_28x28()
    # 100 new images, 90 zeros and 10 ones: fits the schema (labels 0-9), not the label mix.
    skewed = np.concatenate([np.flatnonzero(labels == 0)[60:150], np.flatnonzero(labels == 1)[60:70]])
    write_span(data_dir, 6, images[skewed], labels[skewed])
    try:
        with pytest.raises(DataValidationError) as error:
            run_pipeline(config)
    finally:
        shutil.rmtree(os.path.join(data_dir, "span-6"))
    message = str(error.value)
    assert "span(s) 6 drifted from span 5" in message and "feature 'label': Jensen-Shannon divergence" in message
    assert serving_versions(config.push_destination) == served_before


def test_anomalies_stop_the_run_before_training(setup):
    config, data_dir = setup
    served_before = serving_versions(config.push_destination)
    # Consistent within the span (so ingestion accepts it) but not what the schema allows.
    big = np.zeros((20, 32, 32), np.uint8)
    big[:, 8:24, 8:24] = 255
    write_span(data_dir, 2, big, np.arange(20) % 10)
    with pytest.raises(DataValidationError) as error:
        run_pipeline(config)
    message = str(error.value)
    assert "feature 'height'" in message and "feature 'width'" in message
    assert "training will not start" in message
    assert serving_versions(config.push_destination) == served_before
    shutil.rmtree(os.path.join(data_dir, "span-2"))


def test_corrupt_image_stops_the_run_and_is_named(setup):
    config, data_dir = setup
    served_before = serving_versions(config.push_destination)
    images, labels = digits_28x28()
    write_span(data_dir, 3, images[:20], labels[:20])
    broken = os.path.join(data_dir, "span-3", "4", "broken.png")
    with open(broken, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(IngestionError, match="broken.png"):
        run_pipeline(config)
    assert serving_versions(config.push_destination) == served_before

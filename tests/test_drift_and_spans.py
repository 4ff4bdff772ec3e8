"""Span selection, full-content fingerprints, the train/eval split, class names and the drift
check, on real files, a real ImageExampleGen executor (Beam in-process) and real TFDV statistics
(the pipeline-level behaviour is in tests/test_pipeline_e2e.py)."""
import os
import shutil

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
from PIL import Image

from tfx_gan.common import drift, layout
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.data import ingest

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "schema", "digits", "schema.pbtxt")


def write_span(base, span, labels):
    for i, label in enumerate(labels):
        path = os.path.join(base, f"span-{span}", str(label), f"{i:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.full((28, 28), i % 256, np.uint8)).save(path)


@pytest.mark.parametrize("policy, expected", [("latest", [4]), ("last:2", [3, 4]), ("last:9", [1, 3, 4]),
                                              ("all", [1, 3, 4])])
def test_span_policies_select_a_window_ending_at_the_newest(tmp_path, policy, expected):
    for span in (1, 3, 4):
        (tmp_path / f"span-{span}").mkdir()
    (tmp_path / "span-x").mkdir()  # not a span
    assert ingest.select_spans(str(tmp_path), policy) == expected
    assert ingest.select_spans(str(tmp_path), "last:2", newest=3) == [1, 3]


@pytest.mark.parametrize("policy", ["newest", "last:0", "last:-1", "last", "", "2"])
def test_bad_span_policies_are_named(policy):
    with pytest.raises(ValueError, match="expected latest, last:K"):
        ingest.parse_span_policy(policy)


def test_the_fingerprint_sees_any_change_to_any_file(tmp_path):
    base = str(tmp_path)
    write_span(base, 1, [0, 1, 2, 0])
    first = ingest.fingerprint_spans(base, [1])
    assert ingest.fingerprint_spans(base, [1]) == first  # stable
    image = tmp_path / "span-1" / "2" / "0002.png"
    data = image.read_bytes()
    image.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one byte differs
    replaced = ingest.fingerprint_spans(base, [1])
    assert replaced != first
    write_span(base, 1, [0, 1, 2, 0, 1])  # one more image in an existing class folder
    assert ingest.fingerprint_spans(base, [1]) not in (first, replaced)
    (tmp_path / "span-1" / ".DS_Store").write_bytes(b"x")  # hidden files are not data
    assert ingest.fingerprint_spans(base, [1]) == ingest.fingerprint_spans(base, [1])


def test_spans_that_label_classes_differently_are_refused(tmp_path):
    for span, classes in ((1, ["cat", "dog"]), (2, ["dog", "emu"])):
        for name in classes:
            for i in range(2):
                path = tmp_path / f"span-{span}" / name / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    assert len(ingest.scan_spans(str(tmp_path), [1])) == 4
    with pytest.raises(ingest.IngestionError, match="class folder 'dog' is label 1 in one span and 0 in another"):
        ingest.scan_spans(str(tmp_path), [1, 2])


def statistics(tmp_path, name, labels):
    images = np.zeros((len(labels), 28, 28), np.uint8)
    (path,) = write_tfrecords(images, np.asarray(labels), str(tmp_path / f"{name}.gz"))
    stats_file = str(tmp_path / f"{name}.stats")
    with open(stats_file, "wb") as f:
        f.write(tfdv.generate_statistics_from_tfrecord(path).SerializeToString())
    return stats_file


def test_drift_of_the_label_distribution_is_named_and_a_same_mix_passes(tmp_path):
    schema = tfdv.load_schema_text(SCHEMA)
    balanced = statistics(tmp_path, "balanced", np.arange(300) % 10)
    also_balanced = statistics(tmp_path, "also_balanced", np.random.default_rng(0).permutation(300) % 10)
    one_class = statistics(tmp_path, "one_class", np.zeros(100, int))
    assert drift.drift_messages(also_balanced, balanced, schema, {"label": 0.3}) == []
    (message,) = drift.drift_messages(one_class, balanced, schema, {"label": 0.3})
    assert message.startswith("feature 'label': Jensen-Shannon divergence ") and message.endswith("> 0.3")


def test_a_span_that_fails_the_schema_is_named_in_one_line(tmp_path):
    from tfx_gan.common.validation_gate import DataValidationError, raise_on_anomalies

    schema = tfdv.load_schema_text(SCHEMA)  # 28x28 digits, labels 0-9
    anomalies_uri = tmp_path / "anomalies"
    for split, labels in (("train", np.arange(40) % 10), ("eval", np.arange(10) + 5)):  # eval: labels up to 14
        (path,) = write_tfrecords(np.zeros((len(labels), 32, 32), np.uint8), labels, str(tmp_path / f"{split}.gz"))
        anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_tfrecord(path), schema)
        (anomalies_uri / f"{layout.SPLIT_PREFIX}{split}").mkdir(parents=True)
        (anomalies_uri / f"{layout.SPLIT_PREFIX}{split}" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())
    with pytest.raises(DataValidationError) as error:
        raise_on_anomalies(str(anomalies_uri), spans=[3])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("span(s) 3 do not match the schema, training will not start: ")
    assert message.count("feature 'height'") == 1 and message.count("feature 'width'") == 1  # once, not per split
    assert "feature 'label'" in message and "(eval only)" in message
    assert message.endswith("write a new schema with ./gan make-schema and point data.schema_file at it)")


def test_the_previous_span_is_the_newest_stored_one_before_it(tmp_path):
    store = str(tmp_path / "store")
    source = tmp_path / "stats.pb"
    source.write_bytes(b"stats")
    assert drift.previous_span(store, 5) is None
    for span in (1, 3, 7):
        drift.store_stats(store, span, str(source))
    assert drift.previous_span(store, 5) == 3 and drift.previous_span(store, 3) == 1
    assert drift.previous_span(store, 1) is None and drift.previous_span(store, 8) == 7


def run_image_example_gen(input_base: str, out_uri: str):
    """ImageExampleGen's executor on ``input_base`` as the pipeline configures it; returns the Examples."""
    from google.protobuf.message import Message
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from tfx_gan.components.image_example_gen import Executor, ImageExampleGen

    component = ImageExampleGen(input_base)
    exec_properties = {key: proto_utils.proto_to_json(value) if isinstance(value, Message) else value
                       for key, value in component.exec_properties.items() if value is not None}
    examples = standard_artifacts.Examples()
    examples.uri = out_uri
    Executor().Do({}, {"examples": [examples]}, exec_properties)
    return examples


def split_contents(examples, split):
    """{image bytes: source path} of one split."""
    import tensorflow as tf

    contents = {}
    for record in tf.data.TFRecordDataset(layout.split_files(examples.uri, split), compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        contents[feature["image"].bytes_list.value[0]] = feature["source"].bytes_list.value[0].decode()
    return contents


def test_the_split_depends_on_the_images_not_where_they_lie_and_class_names_are_recorded(tmp_path):
    from tfx_gan.components.image_example_gen import label_names_of

    rng = np.random.default_rng(0)
    first = tmp_path / "clone-a" / "data"
    for i in range(60):
        path = first / "span-1" / ("circle", "square", "triangle")[i % 3] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    second = tmp_path / "somewhere" / "much" / "deeper" / "data"  # another clone, another absolute path
    shutil.copytree(first, second)

    runs = [run_image_example_gen(str(base), str(tmp_path / f"examples-{i}")) for i, base in enumerate((first, second))]
    splits = [{split: split_contents(examples, split) for split in ("train", "eval")} for examples in runs]
    for split in ("train", "eval"):
        assert set(splits[0][split]) == set(splits[1][split])  # the same images on each side
        assert all(source.startswith(str(first)) for source in splits[0][split].values())  # though the paths differ
        assert all(source.startswith(str(second)) for source in splits[1][split].values())
    assert len(splits[0]["train"]) + len(splits[0]["eval"]) == 60 and 3 <= len(splits[0]["eval"]) <= 25
    for examples in runs:
        assert label_names_of(examples) == ["circle", "square", "triangle"]


def test_unlabelled_data_records_no_class_names(tmp_path):
    from tfx_gan.components.image_example_gen import label_names_of

    for i in range(10):
        path = tmp_path / "data" / "span-1" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i * 20, np.uint8)).save(path)
    examples = run_image_example_gen(str(tmp_path / "data"), str(tmp_path / "examples"))
    assert label_names_of(examples) is None
    assert examples.get_string_custom_property("spans") == "[1]"

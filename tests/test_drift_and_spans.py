"""Span selection, full-content fingerprints and the drift check, on real files and real TFDV
statistics (the pipeline-level behaviour is in tests/test_pipeline_e2e.py)."""
import os

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
from PIL import Image

from components import drift
from components.gan.synthetic import write_tfrecords
from data import ingest

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


def test_the_previous_span_is_the_newest_stored_one_before_it(tmp_path):
    store = str(tmp_path / "store")
    source = tmp_path / "stats.pb"
    source.write_bytes(b"stats")
    assert drift.previous_span(store, 5) is None
    for span in (1, 3, 7):
        drift.store_stats(store, span, str(source))
    assert drift.previous_span(store, 5) == 3 and drift.previous_span(store, 3) == 1
    assert drift.previous_span(store, 1) is None and drift.previous_span(store, 8) == 7

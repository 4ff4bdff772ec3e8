"""Ingestion: every input layout becomes the project's Examples; bad inputs fail by name."""
import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.gan import example_format
from data import ingest


def write_png(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def gray(value, size=28):
    return np.full((size, size), value, np.uint8)


def test_class_folders_give_integer_labels(tmp_path):
    for label in (0, 3):
        for i in range(2):
            write_png(str(tmp_path / str(label) / f"{i}.png"), gray(10 * label + i))
    records = ingest.scan(str(tmp_path))
    assert sorted(r.label for r in records) == [0, 0, 3, 3]
    assert {r.shape for r in records} == {(28, 28, 1)}
    example = ingest.to_example(records[0])
    feature = example.features.feature
    assert feature[example_format.HEIGHT_KEY].int64_list.value == [28]
    assert feature[example_format.CHANNELS_KEY].int64_list.value == [1]
    decoded = tf.io.decode_png(feature[example_format.IMAGE_KEY].bytes_list.value[0]).numpy()
    assert decoded.shape == (28, 28, 1)


def test_named_class_folders_are_labelled_in_sorted_order(tmp_path):
    write_png(str(tmp_path / "dogs" / "a.png"), gray(1))
    write_png(str(tmp_path / "cats" / "b.png"), gray(2))
    labels = {os.path.basename(os.path.dirname(r.source)): r.label for r in ingest.scan(str(tmp_path))}
    assert labels == {"cats": 0, "dogs": 1}


def test_flat_folder_is_unlabelled(tmp_path):
    write_png(str(tmp_path / "a.png"), gray(1))
    write_png(str(tmp_path / "b.png"), gray(2))
    records = ingest.scan(str(tmp_path))
    assert [r.label for r in records] == [None, None]
    assert example_format.LABEL_KEY not in ingest.to_example(records[0]).features.feature


def test_corrupt_image_is_reported_by_name(tmp_path):
    write_png(str(tmp_path / "1" / "good.png"), gray(1))
    write_png(str(tmp_path / "2" / "good.png"), gray(2))
    bad = tmp_path / "1" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ingest.IngestionError, match="broken.png"):
        ingest.scan(str(tmp_path))


def test_truncated_image_is_reported_by_name(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), np.uint8)).save(buffer, "PNG")
    write_png(str(tmp_path / "ok.png"), gray(1))
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:60])
    with pytest.raises(ingest.IngestionError, match="cut.png"):
        ingest.scan(str(tmp_path))


def test_image_of_another_size_is_reported_not_resized(tmp_path):
    for i in range(3):
        write_png(str(tmp_path / f"{i}.png"), gray(i))
    write_png(str(tmp_path / "big.png"), gray(0, size=32))
    with pytest.raises(ingest.IngestionError, match=r"big.png \(32x32x1\)"):
        ingest.scan(str(tmp_path))


def test_rgb_among_grayscale_is_reported(tmp_path):
    write_png(str(tmp_path / "a.png"), gray(1))
    write_png(str(tmp_path / "b.png"), gray(2))
    write_png(str(tmp_path / "color.png"), np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ingest.IngestionError, match="color.png"):
        ingest.scan(str(tmp_path))


def test_empty_folder_and_unknown_files_are_errors(tmp_path):
    with pytest.raises(ingest.IngestionError, match="empty"):
        ingest.scan(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ingest.IngestionError, match="notes.txt"):
        ingest.scan(str(tmp_path))


def test_npz_in_keras_mnist_layout(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "mnist.npz")
    np.savez(path, x_train=rng.integers(0, 255, (5, 28, 28), np.uint8), y_train=np.arange(5),
             x_test=rng.integers(0, 255, (2, 28, 28), np.uint8), y_test=np.array([7, 8]))
    records = ingest.scan(path)
    assert len(records) == 7
    assert [r.label for r in records] == [0, 1, 2, 3, 4, 7, 8]
    assert records[0].source.endswith("[x_train][0]")
    decoded = tf.io.decode_png(ingest.to_example(records[5]).features.feature["image"].bytes_list.value[0]).numpy()
    np.testing.assert_array_equal(decoded[..., 0], np.load(path)["x_test"][0])


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 28, 28), np.uint8)}, "no 'x_train'"),
    ({"x_train": np.zeros((2, 28, 28), np.float32)}, "dtype float32"),
    ({"x_train": np.zeros((2, 28), np.uint8)}, "shape"),
    ({"x_train": np.zeros((2, 28, 28), np.uint8), "y_train": np.zeros(3, np.int64)}, "y_train"),
])
def test_bad_npz_names_the_problem(tmp_path, arrays, message):
    path = str(tmp_path / "bad.npz")
    np.savez(path, **arrays)
    with pytest.raises(ingest.IngestionError, match=message):
        ingest.scan(path)


def test_tfrecords_of_examples(tmp_path):
    path = str(tmp_path / "data.tfrecord.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for label in range(3):
            encoded = tf.io.encode_png(gray(label)[..., None]).numpy()
            writer.write(example_format.make_example(encoded, 28, 28, 1, f"src{label}", label).SerializeToString())
        writer.write(example_format.make_example(b"garbage", 28, 28, 1, "bad", 0).SerializeToString())
    with pytest.raises(ingest.IngestionError, match=r"data.tfrecord.gz\[3\]"):
        ingest.scan(path)


def test_mixed_inputs_are_refused(tmp_path):
    write_png(str(tmp_path / "a.png"), gray(1))
    np.savez(str(tmp_path / "b.npz"), x_train=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ingest.IngestionError, match="one kind of input"):
        ingest.scan(str(tmp_path))


def test_make_schema_matches_the_curated_digits_schema(tmp_path):
    from components import schema_utils
    from data.schema import schema_for_span

    for label in (0, 9):
        write_png(str(tmp_path / str(label) / "a.png"), gray(label))
    schema = schema_for_span(str(tmp_path))
    assert schema_utils.image_shape(schema) == (28, 28, 1)
    assert schema_utils.num_classes(schema) == 10
    curated = schema_utils.load_schema("data/schema/digits/schema.pbtxt")
    assert schema == curated


# --------------------------------------------------------------------------- labelling rules
@pytest.mark.parametrize("folders, message", [
    (["1", "01"], "without leading zeros"),
    (["2", "5", "x"], "mix numbers and names"),
    (["cats"], "one class folder found"),
])
def test_ambiguous_class_folders_are_refused(tmp_path, folders, message):
    for name in folders:
        write_png(str(tmp_path / name / "a.png"), gray(1))
    with pytest.raises(ingest.IngestionError, match=message):
        ingest.scan(str(tmp_path))


def test_images_beside_class_folders_and_nested_folders_are_refused(tmp_path):
    write_png(str(tmp_path / "0" / "a.png"), gray(1))
    write_png(str(tmp_path / "1" / "a.png"), gray(1))
    write_png(str(tmp_path / "loose.png"), gray(1))
    with pytest.raises(ingest.IngestionError, match="both directly in"):
        ingest.scan(str(tmp_path))
    os.remove(tmp_path / "loose.png")
    write_png(str(tmp_path / "1" / "deeper" / "b.png"), gray(1))
    with pytest.raises(ingest.IngestionError, match="deeper folders.*deeper"):
        ingest.scan(str(tmp_path))


def test_empty_class_folder_is_named(tmp_path):
    (tmp_path / "3").mkdir()
    with pytest.raises(ingest.IngestionError, match=r"empty class folder\(s\): .*3"):
        ingest.scan(str(tmp_path))
    write_png(str(tmp_path / "4" / "a.png"), gray(1))
    with pytest.raises(ingest.IngestionError, match=r"empty class folder\(s\): .*/3"):
        ingest.scan(str(tmp_path))


def test_missing_span_folder_is_named(tmp_path):
    with pytest.raises(ingest.IngestionError, match="span folder not found: .*span-9"):
        ingest.scan(str(tmp_path / "span-9"))


# --------------------------------------------------------------------------- hostile files
def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    """A 20000x20000 PNG of zeros compresses to ~1 MB; it must never be decoded (400 Mpx)."""
    import zlib

    width = height = 20000
    raw = zlib.compress(b"\x00" * ((width + 1) * 1000), 9)  # only the first rows: the header is what counts
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0]))
           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    write_png(str(tmp_path / "ok.png"), gray(1))
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(ingest.IngestionError, match=r"bomb.png .*20000x20000|bomb.png .*Decompression"):
        ingest.scan(str(tmp_path))


def test_sixteen_bit_png_is_refused_by_name(tmp_path):
    write_png(str(tmp_path / "ok.png"), gray(1))
    Image.fromarray(np.full((28, 28), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ingest.IngestionError, match=r"deep.png .*16- or 32-bit"):
        ingest.scan(str(tmp_path))

"""Ingestion: every input layout becomes the project's Examples; bad inputs fail by name."""
import logging
import io
import os
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfx_gan.data import example_format
from tfx_gan.data import ingest

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line


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
    assert ingest.label_names(records) == ["0", "1", "2", "3"]  # index = label: the model has 4 classes
    assert {r.shape for r in records} == {(28, 28, 1)}
    example = ingest.to_example(records[0])
    feature = example.features.feature
    assert feature[example_format.HEIGHT_KEY].int64_list.value == [28]
    assert feature[example_format.CHANNELS_KEY].int64_list.value == [1]
    decoded = tf.io.decode_png(feature[example_format.IMAGE_KEY].bytes_list.value[0]).numpy()
    assert decoded.shape == (28, 28, 1)


def test_named_class_folders_are_labelled_in_sorted_order_and_recorded(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tfx_gan")
    from tfx_gan.data.schema import schema_for_span

    write_png(str(tmp_path / "dogs" / "a.png"), gray(1))
    write_png(str(tmp_path / "cats" / "b.png"), gray(2))
    records = ingest.scan(str(tmp_path))
    labels = {os.path.basename(os.path.dirname(r.source)): r.label for r in records}
    assert labels == {"cats": 0, "dogs": 1}
    assert "class folders -> labels: cats=0, dogs=1" in caplog.text
    assert ingest.label_names(records) == ["cats", "dogs"]
    label_feature = next(f for f in schema_for_span(str(tmp_path)).feature if f.name == example_format.LABEL_KEY)
    assert list(label_feature.annotation.comment) == ["class 0: cats", "class 1: dogs"]


def test_flat_folder_is_unlabelled(tmp_path):
    write_png(str(tmp_path / "a.png"), gray(1))
    write_png(str(tmp_path / "b.png"), gray(2))
    records = ingest.scan(str(tmp_path))
    assert [r.label for r in records] == [None, None]
    assert ingest.label_names(records) is None
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
    with pytest.raises(ingest.IngestionError, match="no input files in"):
        ingest.scan(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ingest.IngestionError, match="files of unknown type .*notes.txt; move them out of the span"):
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
    from tfx_gan.data import schema_utils
    from tfx_gan.data.schema import schema_for_span

    for label in (0, 9):
        write_png(str(tmp_path / str(label) / "a.png"), gray(label))
    schema = schema_for_span(str(tmp_path))
    assert schema_utils.image_shape(schema) == (28, 28, 1)
    assert schema_utils.num_classes(schema) == 10
    curated = schema_utils.load_schema("data/schema/digits/schema.pbtxt")
    assert schema == curated


# --------------------------------------------------------------------------- labelling rules
@pytest.mark.parametrize("folders, message", [
    (["1", "01"], r"without leading zeros .*found: 01 \(same number as 1\)"),
    (["00", "01"], r"without leading zeros .*found: 00, 01"),
    (["2", "5", "x"], r"mix numbers and names.*: 2, 5, x;"),
    (["0", "-1"], r"mix numbers and names.*: -1, 0;"),
    (["0", "99999999999"], r"/99999999999: label 99999999999 is outside 0..2147483647"),
    (["cats"], r"one class folder found \(.*cats\): put unlabelled images directly in the span folder"),
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
    with pytest.raises(ingest.IngestionError, match="span folder not found: .*span-9; give one span-<N>/ folder"):
        ingest.scan(str(tmp_path / "span-9"))
    write_png(str(tmp_path / "span-2" / "circle" / "a.png"), gray(1))  # the data folder, not one of its spans
    with pytest.raises(ingest.IngestionError, match="holds span folders, not images: give one of them, e.g. .*/span-2$"):
        ingest.scan(str(tmp_path))


# --------------------------------------------------------------------------- hostile files
def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def raw_png(width: int, height: int, bit_depth: int, color_type: int, pixel_data: bytes) -> bytes:
    """A PNG written by hand, so that its header can say anything (PIL cannot write 16-bit RGB)."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bit_depth, color_type, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(pixel_data, 9))
            + png_chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [5000, 20000])  # above our limit; above PIL's own (179 Mpx)
def test_decompression_bomb_is_refused_from_its_header(tmp_path, side):
    """A PNG of zeros this size compresses to a few kB; it must never be decoded."""
    write_png(str(tmp_path / "ok.png"), gray(1))
    (tmp_path / "bomb.png").write_bytes(raw_png(side, side, 8, 0, b"\x00" * (side + 1) * 10))
    with pytest.raises(ingest.IngestionError, match=r"bomb.png .*16,777,216.*MAX_PIXELS"):
        ingest.scan(str(tmp_path))


@pytest.mark.parametrize("color_type, samples", [(0, 1), (2, 3), (4, 2), (6, 4)])  # gray, RGB, LA, RGBA
def test_sixteen_bit_png_is_refused_by_name(tmp_path, color_type, samples):
    """PIL silently opens 16-bit RGB(A) PNGs as 8-bit; the header's bit depth is what counts."""
    row = b"\x00" + b"\x9c\x40" * (28 * samples)  # filter byte, then 40000 big-endian per sample
    (tmp_path / "deep.png").write_bytes(raw_png(28, 28, 16, color_type, row * 28))
    with pytest.raises(ingest.IngestionError, match=r"deep.png \(16-bit PNG"):
        ingest.scan(str(tmp_path))


def test_images_in_other_formats_or_modes_are_refused_by_name(tmp_path):
    write_png(str(tmp_path / "ok.png"), gray(1))
    Image.fromarray(gray(1)).save(tmp_path / "bitmap.png", "BMP")
    Image.fromarray(gray(1)).save(tmp_path / "animation.png", "GIF")
    Image.new("CMYK", (28, 28)).save(tmp_path / "print.jpg", "JPEG")
    Image.new("LA", (28, 28)).save(tmp_path / "gray_alpha.png")
    with pytest.raises(ingest.IngestionError) as error:
        ingest.scan(str(tmp_path))
    message = str(error.value)
    assert message.startswith("4 image file(s) cannot be ingested")
    assert "animation.png (not a PNG or JPEG" in message and "bitmap.png (not a PNG or JPEG" in message
    assert "print.jpg (PIL mode CMYK is not supported" in message
    assert "gray_alpha.png (PIL mode LA is not supported" in message


@pytest.mark.parametrize("mode, image_format, channels", [
    ("1", "PNG", 1), ("L", "JPEG", 1), ("P", "PNG", 3), ("RGBA", "PNG", 4)])
def test_supported_modes_are_read_as_tensorflow_decodes_them(tmp_path, mode, image_format, channels):
    for name in ("a", "b"):
        Image.new(mode, (28, 28)).save(tmp_path / f"{name}.{image_format.lower()}", image_format)
    assert {r.shape for r in ingest.scan(str(tmp_path))} == {(28, 28, channels)}


def test_names_with_control_characters_keep_the_error_on_one_line(tmp_path):
    write_png(str(tmp_path / "ok.png"), gray(1))
    (tmp_path / "two\nlines.png").write_bytes(b"junk")
    with pytest.raises(ingest.IngestionError, match=r"two\\nlines.png \(not a PNG or JPEG") as error:
        ingest.scan(str(tmp_path))
    assert "\n" not in str(error.value)


def test_span_of_only_hidden_files_is_named(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"")
    with pytest.raises(ingest.IngestionError, match=f"no input files in {tmp_path}"):
        ingest.scan(str(tmp_path))


# --------------------------------------------------------------------------- npz and TFRecord labels
def test_npz_problems_name_the_file_and_array(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ingest.IngestionError, match=r"bad.npz is not a readable .npz file \(BadZipFile"):
        ingest.scan(str(path))
    np.savez(path, x_train=np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(ingest.IngestionError, match=r"no images in .*bad.npz"):
        ingest.scan(str(path))
    np.savez(path, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([3, -1]))
    with pytest.raises(ingest.IngestionError, match=r"bad.npz\[y_train\]\[1\]: label -1 is outside"):
        ingest.scan(str(path))
    np.savez(path, x_train=np.zeros((1, 5000, 5000), np.uint8))
    with pytest.raises(ingest.IngestionError, match=r"bad.npz: x_train's 5000x5000 images are over the limit"):
        ingest.scan(str(path))


def test_tfrecord_problems_name_the_record(tmp_path):
    path = str(tmp_path / "data.tfrecord")
    encoded = tf.io.encode_png(gray(1)[..., None]).numpy()
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example_format.make_example(encoded, 28, 28, 1, "ok", 1).SerializeToString())
        writer.write(b"\xff not an Example")
    with pytest.raises(ingest.IngestionError, match=r"data.tfrecord\[1\] \(not a tf.train.Example\)"):
        ingest.scan(path)
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example_format.make_example(encoded, 28, 28, 1, "ok", -2).SerializeToString())
    with pytest.raises(ingest.IngestionError, match=r"data.tfrecord\[0\]: label -2 is outside"):
        ingest.scan(path)

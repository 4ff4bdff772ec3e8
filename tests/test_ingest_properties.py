"""Property-based tests of ingestion: whatever a span folder holds, the scan ends in a correct
result or an IngestionError that names the offending file or folder; never another exception,
never a silent skip. "Correct" means every image is recorded with the shape TensorFlow's decoder
(the one training uses) produces for it, as uint8, and with the label the folder rules give."""
from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import zlib

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from tfx_gan.data import example_format
from tfx_gan.data import ingest
from test_ingest import raw_png  # pytest puts tests/ on sys.path

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def encode(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


NOISE = np.random.default_rng(0).integers(0, 256, (28, 28, 3), np.uint8)
VALID_PNG = encode(Image.fromarray(NOISE[..., 0]))
VALID_JPEG = encode(Image.fromarray(NOISE), "JPEG")


def shown(name: str) -> str:
    """How an error message shows a name (control characters escaped to keep it one line)."""
    return str(ingest.IngestionError(name))


def assert_named(error: ingest.IngestionError, *names: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert any(shown(n) in message for n in names), f"the error names none of {names}: {message}"


def check_decoded(records: list[ingest.ImageRecord]) -> None:
    for record in records:
        encoded = record.encoded
        if encoded is None:
            with open(record.source, "rb") as f:
                encoded = f.read()
        decoded = tf.io.decode_image(encoded, channels=record.shape[2], expand_animations=False)
        assert tuple(decoded.shape) == record.shape and decoded.dtype == tf.uint8


def scan_span(files: dict[str, bytes]) -> list[ingest.ImageRecord]:
    """Writes ``files`` (relative path -> bytes) into a fresh span folder and scans it."""
    span = tempfile.mkdtemp()
    try:
        for relative, data in files.items():
            path = os.path.join(span, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        records = ingest.scan(span)
        check_decoded(records)  # while the files still exist
        return records
    finally:
        shutil.rmtree(span)


def assert_named_error_or_decodable(name: str, data: bytes, companions: int = 2) -> None:
    """Scans a span of ``companions`` good 28x28 grayscale PNGs plus the file under test."""
    files = {f"good{i}.png": VALID_PNG for i in range(companions)}
    files[name] = data
    try:
        records = scan_span(files)
    except ingest.IngestionError as e:
        assert_named(e, name)
        return
    assert len(records) == len(files)  # nothing skipped


# --------------------------------------------------------------------------- damaged files
@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from(["random.png", "random.jpg"]))
def test_random_bytes(data, name):
    assert_named_error_or_decodable(name, data)


@SETTINGS
@given(st.sampled_from([("cut.png", VALID_PNG), ("cut.jpg", VALID_JPEG)]), st.floats(0.0, 1.0))
def test_truncated_files(named, fraction):
    name, data = named
    assert_named_error_or_decodable(name, data[: int(len(data) * fraction)])


@SETTINGS
@given(st.sampled_from([("flip.png", VALID_PNG), ("flip.jpg", VALID_JPEG)]), st.data())
def test_flipped_bytes(named, data):
    name, original = named
    damaged = bytearray(original)
    for position in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=4)):
        damaged[position] = data.draw(st.integers(0, 255))
    assert_named_error_or_decodable(name, bytes(damaged))


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.booleans())
def test_png_headers_that_lie_about_the_size(width, height, fix_crc):
    data = bytearray(VALID_PNG)
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    if fix_crc:
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    assert_named_error_or_decodable("liar.png", bytes(data))


@SETTINGS
@given(st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_jpeg_headers_that_lie_about_the_size(width, height):
    data = bytearray(VALID_JPEG)
    start_of_frame = data.index(b"\xff\xc0")  # then length (2 bytes), precision (1), height, width
    data[start_of_frame + 5:start_of_frame + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    assert_named_error_or_decodable("liar.jpg", bytes(data), companions=0)


# --------------------------------------------------------------------------- modes and bit depths
def image_of(kind: str, width: int, height: int) -> tuple[str, bytes]:
    """(file name, bytes) of one image of ``kind``: a PIL mode, or a mode and format."""
    pixels = NOISE[:height, :width]
    if kind == "RGB;16":
        row = b"\x00" + b"\x12\x34" * (3 * width)  # filter byte, then 16-bit samples
        return "deep.png", raw_png(width, height, 16, 2, row * height)
    if kind == "P+transparency":
        image = Image.fromarray(pixels).convert("P")
        image.info["transparency"] = 0
        return "palette.png", encode(image)
    if kind.endswith("-jpeg"):
        return "photo.jpg", encode(Image.fromarray(pixels).convert(kind[:-5]), "JPEG")
    if kind in ("I;16", "I"):
        return "deep.png", encode(Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).convert(kind))
    return f"mode-{kind}.png", encode(Image.fromarray(pixels).convert(kind))


ACCEPTED_CHANNELS = {"1": 1, "L": 1, "P": 3, "P+transparency": 4, "RGB": 3, "RGBA": 4, "L-jpeg": 1, "RGB-jpeg": 3}
REFUSED = ["LA", "I;16", "I", "RGB;16", "CMYK-jpeg"]


@SETTINGS
@given(st.sampled_from(sorted(ACCEPTED_CHANNELS) + REFUSED), st.integers(1, 28), st.integers(1, 28))
def test_modes_and_bit_depths(kind, width, height):
    name, data = image_of(kind, width, height)
    try:
        records = scan_span({name: data})
    except ingest.IngestionError as e:
        assert kind in REFUSED, f"{kind} refused: {e}"
        assert_named(e, name)
        return
    assert kind in ACCEPTED_CHANNELS, f"{kind} accepted"
    assert [r.shape for r in records] == [(height, width, ACCEPTED_CHANNELS[kind])]


# --------------------------------------------------------------------------- class folder names
FOLDER_NAME = st.one_of(
    st.integers(0, 30).map(str),
    st.integers(0, 30).map(lambda i: f"0{i}"),
    st.text("abcxyz_-", min_size=1, max_size=6),
    # Any name a Linux folder can have; hidden ones (".x") are ignored by design, so not drawn.
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=8)
    .filter(lambda n: not n.startswith(".") and len(n.encode()) <= 255),
)


@SETTINGS
@given(st.lists(FOLDER_NAME, min_size=1, max_size=5, unique=True))
def test_class_folder_names(names):
    try:
        records = scan_span({os.path.join(name, "a.png"): VALID_PNG for name in names})
    except ingest.IngestionError as e:
        assert_named(e, *names)
        return
    labels = {os.path.basename(os.path.dirname(r.source)): r.label for r in records}
    assert len(records) == len(names) >= 2  # nothing skipped; a single folder is refused
    if all(re.fullmatch(r"[0-9]+", n) for n in names):
        assert all(re.fullmatch(r"0|[1-9][0-9]*", n) for n in names)
        assert labels == {n: int(n) for n in names}
    else:
        assert not any(re.fullmatch(r"[0-9]+", n) for n in names)
        assert labels == {n: i for i, n in enumerate(sorted(names))}


# --------------------------------------------------------------------------- npz and TFRecord files
def npz_bytes(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x_train=NOISE[None, ..., 0], y_train=np.array([4]))
    return buffer.getvalue()


def tfrecord_bytes(payloads: list[bytes]) -> bytes:
    path = os.path.join(tempfile.mkdtemp(), "data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for payload in payloads:
            writer.write(payload)
    with open(path, "rb") as f:
        data = f.read()
    shutil.rmtree(os.path.dirname(path))
    return data


VALID_EXAMPLE = example_format.make_example(VALID_PNG, 28, 28, 1, "good", 4).SerializeToString()


@SETTINGS
@given(st.sampled_from(["data.npz", "data.tfrecord"]), st.booleans(), st.floats(0.0, 1.0), st.data())
def test_damaged_npz_and_tfrecord_files(name, compressed, fraction, data):
    original = npz_bytes(compressed) if name == "data.npz" else tfrecord_bytes([VALID_EXAMPLE])
    damaged = bytearray(original[: max(1, int(len(original) * fraction))])
    for position in data.draw(st.lists(st.integers(0, len(damaged) - 1), max_size=3)):
        damaged[position] = data.draw(st.integers(0, 255))
    try:
        records = scan_span({name: bytes(damaged)})
    except ingest.IngestionError as e:
        assert_named(e, name)
        return
    if name == "data.npz":  # a damaged but still readable npz must be read as numpy reads it
        arrays = np.load(io.BytesIO(bytes(damaged)))
        expected = [(x.shape + (1,), int(y)) for x, y in zip(arrays["x_train"], arrays["y_train"])]
    else:  # TFRecords carry CRCs: only an undamaged file is readable
        expected = [((28, 28, 1), 4)]
    assert [(r.shape, r.label) for r in records] == expected


@SETTINGS
@given(st.lists(st.one_of(st.just(VALID_EXAMPLE), st.binary(max_size=200)), min_size=1, max_size=4))
def test_tfrecords_holding_anything(payloads):
    try:
        records = scan_span({"data.tfrecord": tfrecord_bytes(payloads)})
    except ingest.IngestionError as e:
        assert_named(e, "data.tfrecord")
        return
    assert len(records) == len(payloads)

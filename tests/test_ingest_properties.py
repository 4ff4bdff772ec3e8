"""Property-based tests of ingestion: whatever a span folder holds, the scan ends in a correct
result or an IngestionError that names the offending file or folder; never another exception,
never a silent skip. "Correct" means every image is recorded with the shape TensorFlow's decoder
(the one training uses) produces for it, and with the label the folder rules give."""
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

from data import ingest

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, "PNG")
    return buffer.getvalue()


VALID_PNG = png_bytes(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28))
VALID_JPEG = (lambda b: (Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(b, "JPEG"), b.getvalue())[1])(io.BytesIO())


def assert_named_error_or_decodable(name: str, data: bytes, companions: int = 2) -> None:
    """Scans a span of ``companions`` good 28x28 grayscale PNGs plus the file under test."""
    span = tempfile.mkdtemp()
    try:
        for i in range(companions):
            with open(os.path.join(span, f"good{i}.png"), "wb") as f:
                f.write(VALID_PNG)
        with open(os.path.join(span, name), "wb") as f:
            f.write(data)
        try:
            records = ingest.scan(span)
        except ingest.IngestionError as e:
            assert name in str(e), f"the error does not name {name}: {e}"
            assert "\n" not in str(e)
            return
        assert len(records) == companions + 1  # nothing skipped
        for record in records:
            with open(record.source, "rb") as f:
                decoded = tf.io.decode_image(f.read(), channels=record.shape[2], expand_animations=False)
            assert tuple(decoded.shape) == record.shape and decoded.dtype == tf.uint8
    finally:
        shutil.rmtree(span)


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    assert_named_error_or_decodable("random.png", data)


@SETTINGS
@given(st.sampled_from([("cut.png", VALID_PNG), ("cut.jpg", VALID_JPEG)]), st.floats(0.0, 1.0))
def test_truncated_files(named, fraction):
    name, data = named
    assert_named_error_or_decodable(name, data[: int(len(data) * fraction)])


@SETTINGS
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.booleans())
def test_headers_that_lie_about_the_size(width, height, fix_crc):
    data = bytearray(VALID_PNG)
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR width, height
    if fix_crc:
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    assert_named_error_or_decodable("liar.png", bytes(data))


MODES = {
    "1": lambda: np.random.default_rng(0).integers(0, 2, (28, 28)).astype(bool),
    "L": lambda: np.zeros((28, 28), np.uint8),
    "LA": lambda: np.zeros((28, 28, 2), np.uint8),
    "RGB": lambda: np.zeros((28, 28, 3), np.uint8),
    "RGBA": lambda: np.zeros((28, 28, 4), np.uint8),
    "I;16": lambda: np.full((28, 28), 1000, np.uint16),
    "I": lambda: np.full((28, 28), 70000, np.int32),
}


@SETTINGS
@given(st.sampled_from(sorted(MODES) + ["P", "CMYK-jpeg"]))
def test_odd_modes_and_depths(mode):
    if mode == "P":
        data = png_bytes(np.zeros((28, 28), np.uint8))
        image = Image.open(io.BytesIO(data)).convert("P")
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        data, name = buffer.getvalue(), "palette.png"
    elif mode == "CMYK-jpeg":
        buffer = io.BytesIO()
        Image.new("CMYK", (28, 28)).save(buffer, "JPEG")
        data, name = buffer.getvalue(), "cmyk.jpg"
    else:
        array = MODES[mode]()
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        data, name = buffer.getvalue(), f"mode-{mode.replace(';', '')}.png"
    assert_named_error_or_decodable(name, data, companions=0)


FOLDER_NAME = st.one_of(st.integers(0, 30).map(str), st.integers(0, 30).map(lambda i: f"0{i}"),
                        st.text("abcxyz_-", min_size=1, max_size=6))


@SETTINGS
@given(st.lists(FOLDER_NAME, min_size=1, max_size=5, unique=True))
def test_class_folder_names(names):
    span = tempfile.mkdtemp()
    try:
        for name in names:
            os.makedirs(os.path.join(span, name))
            with open(os.path.join(span, name, "a.png"), "wb") as f:
                f.write(VALID_PNG)
        try:
            records = ingest.scan(span)
        except ingest.IngestionError as e:
            assert any(n in str(e) for n in names) or "one class folder" in str(e), str(e)
            return
        labels = {os.path.basename(os.path.dirname(r.source)): r.label for r in records}
        assert len(records) == len(names) >= 2  # nothing skipped; a single folder is refused
        if all(n.isdigit() for n in names):
            assert all(re.fullmatch(r"0|[1-9][0-9]*", n) for n in names)
            assert labels == {n: int(n) for n in names}
        else:
            assert not any(n.isdigit() for n in names)
            assert labels == {n: i for i, n in enumerate(sorted(names))}
    finally:
        shutil.rmtree(span)

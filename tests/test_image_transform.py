"""data.image_size and friends: photos of any size, shape and mode become training images.

Known answers: a three-stripe image (red | green | blue) centre-cropped to a square is the green
stripe; padded, it keeps all three stripes between bands of the background; transparent pixels
become the background; an image stored sideways with EXIF orientation 6 comes out upright; a
16-bit value 0x1234 becomes 0x12. Refusals stay refusals (bombs, broken files, 16-bit without the
option), each by name.
"""
import logging
import io
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfx_gan.common.options import ConfigError
from tfx_gan.data import image_transform, ingest
from tfx_gan.data.image_transform import ImageTransform
from tfx_gan.data.photo_patches import photo_crops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def stripes(width=96, height=32) -> Image.Image:
    """Three vertical stripes, each a third of the width."""
    pixels = np.zeros((height, width, 3), np.uint8)
    for i, colour in enumerate((RED, GREEN, BLUE)):
        pixels[:, i * width // 3:(i + 1) * width // 3] = colour
    return Image.fromarray(pixels)


def png(image: Image.Image, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **kwargs)
    return out.getvalue()


def test_center_crop_keeps_the_middle_and_pad_keeps_everything():
    cropped = image_transform.apply(stripes(), ImageTransform(size=(16, 16), channels=3))
    assert cropped.shape == (16, 16, 3)
    # Only the green stripe is left (Lanczos reads a pixel beyond the crop: the edge columns are 5% off).
    assert np.abs(cropped[:, 1:-1].astype(int) - GREEN).max() <= 2
    assert np.abs(cropped.astype(int) - GREEN).max() <= 20

    padded = image_transform.apply(stripes(), ImageTransform(size=(30, 30), resize="pad", channels=3,
                                                             background=(0, 0, 0)))
    assert padded.shape == (30, 30, 3)
    assert padded[:5].max() == 0 and padded[-5:].max() == 0  # 96x32 scaled to 30x10: black above and below
    middle = padded[15]
    assert middle[2, 0] > 200 and middle[15, 1] > 200 and middle[27, 2] > 200  # red, green, blue across

    stretched = image_transform.apply(stripes(), ImageTransform(size=(12, 12), resize="stretch", channels=3))
    assert stretched.shape == (12, 12, 3) and stretched[6, 0, 0] > 200 and stretched[6, 11, 2] > 200


def test_modes_alpha_and_grayscale():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (0, 0, 4, 8))  # opaque blue left half
    out = image_transform.apply(rgba, ImageTransform(channels=3, background=(0, 255, 0)))
    assert tuple(out[0, 0]) == BLUE and tuple(out[0, 7]) == GREEN  # transparent -> the background
    grey = image_transform.apply(Image.new("RGB", (4, 4), (255, 255, 255)), ImageTransform(channels=1))
    assert grey.shape == (4, 4, 1) and grey.min() == 255
    palette = Image.new("RGB", (4, 4), RED).convert("P")
    assert image_transform.apply(palette, ImageTransform(channels=3))[0, 0].tolist() == list(RED)


def test_exif_orientation_is_applied():
    upright = stripes(48, 24)  # wider than tall
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers turn it 90 degrees clockwise
    stored = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(stored, format="JPEG", quality=95, exif=exif.tobytes())
    out = image_transform.apply(Image.open(io.BytesIO(stored.getvalue())), ImageTransform(channels=3))
    assert out.shape == (24, 48, 3)
    assert out[12, 2, 0] > 200 and out[12, 24, 1] > 200 and out[12, 45, 2] > 200  # red left, blue right


def test_16bit_only_with_convert_16bit():
    image = Image.fromarray(np.full((8, 8), 0x1234, np.uint16))
    encoded = png(image)
    with pytest.raises(image_transform.TransformError, match="data.convert_16bit"):
        image_transform.apply(Image.open(io.BytesIO(encoded)), ImageTransform(channels=1))
    out = image_transform.apply(Image.open(io.BytesIO(encoded)), ImageTransform(channels=1, convert_16bit=True))
    assert out.shape == (8, 8, 1) and (out == 0x12).all()


def write_mixed_folder(span) -> None:
    for class_name, name, content in photo_crops(per_class=8):
        os.makedirs(span / class_name, exist_ok=True)
        (span / class_name / name).write_bytes(content)


def test_a_folder_of_mixed_photos_ingests_to_one_shape(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tfx_gan")
    span = tmp_path / "span-1"
    write_mixed_folder(span)
    sizes = {Image.open(p).size for p in span.glob("*/*")}
    modes = {Image.open(p).mode for p in span.glob("*/*")}
    assert len(sizes) > 8 and {"RGB", "L", "RGBA"} <= modes
    with pytest.raises(ingest.IngestionError, match="differ from the"):
        ingest.scan(str(span))  # without a transform: today's strict behaviour

    records = ingest.scan(str(span), ImageTransform(size=(64, 64)))
    assert "data.channels not set: 3" in caplog.text
    assert {r.shape for r in records} == {(64, 64, 3)} and len(records) == 16
    for record in records[:4]:
        feature = ingest.to_example(record).features.feature
        decoded = tf.io.decode_png(feature["image"].bytes_list.value[0]).numpy()
        assert decoded.shape == (64, 64, 3) and feature["height"].int64_list.value[0] == 64
    grey = ingest.scan(str(span), ImageTransform(size=(32, 48), channels=1))
    assert {r.shape for r in grey} == {(32, 48, 1)}


def test_refusals_stay_refusals_under_a_transform(tmp_path):
    span = tmp_path / "span-1"
    span.mkdir()
    (span / "ok.png").write_bytes(png(stripes()))
    (span / "cut.png").write_bytes(png(stripes())[:-40])  # broken: cut before its end
    big = png(Image.new("L", (8, 8)))
    # A lying header: IHDR claims 5000x5000 (over MAX_PIXELS); the CRC is fixed so only the size lies.
    import struct
    import zlib
    ihdr = b"IHDR" + struct.pack(">II", 5000, 5000) + big[24:29]
    bomb = big[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + big[33:]
    (span / "bomb.png").write_bytes(bomb)
    (span / "deep.png").write_bytes(png(Image.fromarray(np.zeros((8, 8), np.uint16))))
    with pytest.raises(ingest.IngestionError) as refused:
        ingest.scan(str(span), ImageTransform(size=(16, 16)))
    message = str(refused.value)
    assert "3 image file(s) cannot be ingested" in message and "\n" not in message
    assert "cut.png" in message and "bomb.png" in message and "over the limit" in message
    assert "deep.png" in message and "data.convert_16bit" in message


def test_config_values_are_checked_by_name():
    from tfx_gan.data.config import DataConfig, image_transform_from
    from tfx_gan.common.options import parse_options

    def data(**values):
        return parse_options(DataConfig, {"input_base": "x", "schema_file": "y", **values}, "data")

    assert data().image_transform() is None
    assert data(image_size=64).image_transform() == ImageTransform(size=(64, 64))
    assert data(image_size=[48, 64], resize="pad", background="black").image_transform().size == (48, 64)
    for values, message in (({"image_size": 0}, "data.image_size"), ({"image_size": [1, 2, 3]}, "data.image_size"),
                            ({"resize": "crop"}, "data.resize"), ({"channels": 4}, "data.channels"),
                            ({"image_size": 8, "background": [300, 0, 0]}, "data.background")):
        with pytest.raises(ConfigError, match=message):
            data(**values)
    assert image_transform_from(data(channels=1)).size is None  # channels alone: sizes must still match


def test_make_schema_describes_the_transformed_images(tmp_path):
    span = tmp_path / "photos" / "span-1"
    write_mixed_folder(span)

    def make_schema(*args):
        return subprocess.run([os.path.join(REPO, "gan"), "make-schema", "--span_dir", str(span), *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    refused = make_schema("--out", "strict.pbtxt")
    assert refused.returncode == 2 and "differ from the" in refused.stderr
    made = make_schema("--out", "schema.pbtxt", "--set", "data.image_size=64")
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "schema.pbtxt").read_text()
    assert text.count("min: 64") == 2 and "min: 3" in text
    bad = make_schema("--out", "bad.pbtxt", "--set", "data.image_size=-1")
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error")]
    assert bad.returncode == 2 and errors == ["error: data.image_size: expected sizes from 1 to 4096 pixels, got -1"]
    assert not (tmp_path / "bad.pbtxt").exists()

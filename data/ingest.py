"""Turns what a user has (image folders, Keras-MNIST-style .npz, TFRecords) into tf.train.Examples.

Everything is checked before anything is written: a file that does not decode, or an image whose
size or channel count differs from the rest, is reported by name and the ingestion fails. Nothing
is skipped or resized silently: images are resized or converted only through a transform the
config asks for (``data.image_size``, ``channels``, ``convert_16bit``: data/image_transform.py),
which to_example applies one image at a time in the Beam job.

Layouts of one span folder (``<input_base>/span-<N>/``):
  images    ``*.png|*.jpg|*.jpeg`` directly (unlabelled) or in one subfolder per class, never
            both. Labels: when every class folder is a plain non-negative integer (``0``, ``7``,
            ``12``; no leading zeros, so ``1`` and ``01`` cannot both mean class 1) that integer
            is the label; when every folder is a name (``circle``, ``square``), labels follow the
            names' sorted order: the mapping is printed and ``./gan make-schema`` records it in
            the schema (the label feature's comments). Every later span must then hold the same
            class folders: adding or removing one renumbers the names after it. A mix of numbers
            and names, a single class folder, an empty class folder and folders nested deeper are
            errors. Labels are 0..``MAX_LABEL`` whatever the layout.
            Files: PNG or JPEG (by content; a BMP or GIF renamed ``.png`` is refused), at most 8
            bits per channel: PIL modes 1, L, P, RGB, RGBA, which TF decodes to 1, 3 or 4 channels
            (1-, 2- and 4-bit grayscale is expanded to 0..255 by both).
            16-bit PNGs are refused rather than scaled (convert them to 8-bit first, e.g. value
            >> 8), as are grayscale+alpha and CMYK images, and any image over ``MAX_PIXELS``: the
            size is read from the header before decoding, so a decompression bomb is never
            decoded. Each file must also decode with TensorFlow (what training uses), to the same
            shape.
  npz       one or more ``.npz`` files in the Keras MNIST layout: ``x_train``, ``y_train`` and
            optionally ``x_test``/``y_test`` (uint8, [N, H, W] or [N, H, W, C]).
  tfrecord  ``*.tfrecord``/``*.tfrecords``/``*.gz`` files of tf.train.Example in the project's
            format (``data/example_format.py``); plain or gzip-compressed.

``label_names`` gives the class name of each label (the folder names), which ImageExampleGen
records on its output so that the names reach the trained model.

Which spans a run trains on is ``data.spans`` (``select_spans``): the newest (``latest``), the
newest K (``last:K``) or ``all``; ``fingerprint_spans`` hashes every file of them (path, size,
content), so any change to a span is seen.

Hidden files and folders (names starting with ".") are ignored. Every other problem is an
``IngestionError`` whose one-line message names the files or folders.
"""
from __future__ import annotations

import logging
import collections
import dataclasses
import hashlib
import io
import os
import re
import struct
import warnings
import zipfile
import zlib

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from PIL import Image, UnidentifiedImageError

from tfx_gan.data import example_format
from tfx_gan.data import image_transform
from tfx_gan.common.errors import UserError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
NPZ_EXTENSIONS = (".npz",)
TFRECORD_EXTENSIONS = (".tfrecord", ".tfrecords", ".gz")
_MAX_NAMES_IN_ERROR = 20
# Largest image accepted, checked from the header before decoding: 4096 x 4096. PIL's own guard
# (Image.MAX_IMAGE_PIXELS) only warns up to twice its 89 Mpx limit, which is far more memory.
MAX_PIXELS = 4096 * 4096
# Largest label: training reads labels as int32.
MAX_LABEL = 2**31 - 1
# Integer labels up to this many get names ("0", "1", ...): a wider label range is no list of classes.
MAX_NAMED_LABELS = 10_000
# Modes whose pixels are 8 bits per channel, with the channel count TF decodes them to.
_CHANNELS_BY_MODE = {"1": 1, "L": 1, "P": 3, "RGB": 3, "RGBA": 4}  # what tf.io.decode_image can output
_CANONICAL_INT = re.compile(r"0|[1-9][0-9]*")


def _one_line(text: str) -> str:
    """``text`` with control characters escaped: file names may hold newlines."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class IngestionError(UserError, ValueError):
    """Input data that cannot be ingested; the one-line message names the offending files."""

    def __init__(self, message: str):
        super().__init__(_one_line(message))


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    source: str                  # path, or "<npz path>[x_train][17]"
    shape: tuple[int, int, int]  # height, width, channels
    label: int | None
    encoded: bytes | None = None  # None: read ``source`` from disk when the Example is built
    class_name: str | None = None  # the class folder's name when labels follow names' sorted order
    # The transform (data/image_transform.py) that makes the training image; None: the file as found.
    transform: image_transform.ImageTransform | None = None


def list_input_files(paths: list[str]) -> list[str]:
    """All files under the given files/folders (recursively), sorted, hidden files excluded."""
    files = []
    for path in paths:
        if tf.io.gfile.isdir(path):
            for root, dirs, names in tf.io.gfile.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
        elif not os.path.basename(path).startswith("."):
            files.append(path)
    return sorted(files)


def detect_format(files: list[str]) -> str:
    """'images', 'npz' or 'tfrecord', from the file extensions; mixed or unknown files are errors."""
    kinds = collections.defaultdict(list)
    for f in files:
        ext = os.path.splitext(f)[1].lower()
        kind = ("images" if ext in IMAGE_EXTENSIONS else "npz" if ext in NPZ_EXTENSIONS
                else "tfrecord" if ext in TFRECORD_EXTENSIONS else "unknown")
        kinds[kind].append(f)
    if "unknown" in kinds:
        raise IngestionError(
            "files of unknown type (expected images " + "/".join(IMAGE_EXTENSIONS)
            + ", .npz or TFRecord files): " + _names(kinds["unknown"])
            + "; move them out of the span folder (names starting with '.' are ignored)")
    if len(kinds) > 1:
        raise IngestionError("a span must hold one kind of input, found: "
                             + ", ".join(f"{k} ({len(v)} files)" for k, v in sorted(kinds.items())))
    return next(iter(kinds))


_SPAN_DIR = re.compile(r"^span-(\d+)/?$")


def parse_span_policy(policy: str) -> int | None:
    """``latest`` -> 1, ``last:K`` -> K, ``all`` -> None (every span); anything else: ValueError."""
    policy = str(policy).strip()
    if policy == "latest":
        return 1
    if policy == "all":
        return None
    match = re.fullmatch(r"last:\s*([0-9]+)", policy)
    if match and int(match.group(1)) >= 1:
        return int(match.group(1))
    raise ValueError(f"expected latest, last:K (K >= 1) or all, got {policy!r}")


def available_spans(input_base: str) -> list[int]:
    """The span numbers of ``<input_base>/span-<N>/`` folders, ascending."""
    if not tf.io.gfile.isdir(input_base):
        return []
    return sorted(int(m.group(1)) for m in map(_SPAN_DIR.match, tf.io.gfile.listdir(input_base)) if m)


def select_spans(input_base: str, policy: str, newest: int | None = None) -> list[int]:
    """The spans ``policy`` selects, ascending, ending at ``newest`` (default: the newest there)."""
    window = parse_span_policy(policy)
    spans = [s for s in available_spans(input_base) if newest is None or s <= newest]
    if not spans:
        raise IngestionError(f"no span-<N> folders in {input_base}")
    return spans if window is None else spans[-window:]


def fingerprint_spans(input_base: str, spans: list[int]) -> str:
    """A hash of every file of the spans: relative path, size and content (a replaced image of the
    same size changes it too; hidden files are ignored, as ingestion ignores them)."""
    digest = hashlib.sha256()
    for span in spans:
        span_dir = os.path.join(input_base, f"span-{span}")
        for path in list_input_files([span_dir]):
            file_digest, size = hashlib.sha256(), 0
            with tf.io.gfile.GFile(path, "rb") as f:  # in 1 MB pieces: a span may hold large files
                while chunk := f.read(1 << 20):
                    file_digest.update(chunk)
                    size += len(chunk)
            digest.update(f"{os.path.relpath(path, input_base)}\0{size}\0".encode())
            digest.update(file_digest.digest())
    return f"spans:{','.join(map(str, spans))},sha256:{digest.hexdigest()}"


def label_names(records: list[ImageRecord]) -> list[str] | None:
    """The name of each class, index = label: the class folders' names when labels follow them,
    else the labels as text ("0", "1", ... up to the largest); None for unlabelled data (and for
    integer labels of MAX_NAMED_LABELS or more)."""
    labels = {r.label for r in records if r.label is not None}
    if not labels:
        return None
    named = {r.label: r.class_name for r in records if r.class_name is not None}
    if named:  # labels 0..K-1 in the names' sorted order (_class_labels)
        return [named[label] for label in range(len(named))]
    if max(labels) >= MAX_NAMED_LABELS:
        return None
    return [str(label) for label in range(max(labels) + 1)]


def scan_spans(input_base: str, spans: list[int],
               transform: image_transform.ImageTransform | None = None) -> list[ImageRecord]:
    """``scan`` of several spans, which must agree on image shape and labelling."""
    records = _resolve_transform(
        [r for span in spans for r in _scan_one(os.path.join(input_base, f"span-{span}"), transform)], transform)
    _check_consistent_shapes(records)
    if len({r.label is None for r in records}) > 1:
        raise IngestionError(f"spans {spans} mix labelled and unlabelled images")
    label_of = {}
    for r in records:
        if r.class_name is not None and label_of.setdefault(r.class_name, r.label) != r.label:
            raise IngestionError(f"class folder '{r.class_name}' is label {label_of[r.class_name]} in one span and "
                                 f"{r.label} in another: spans {spans} hold different class folders")
    return records


def scan(span: str, transform: image_transform.ImageTransform | None = None) -> list[ImageRecord]:
    """Reads and checks every image of one span folder (or of one .npz/TFRecord file); returns one
    record per image. With a ``transform`` (``data.image_size`` and friends) the records' shapes
    are the transformed ones and each record carries the transform, with its channel count decided."""
    records = _resolve_transform(_scan_one(span, transform), transform)
    _check_consistent_shapes(records)
    return records


def _scan_one(span: str, transform) -> list[ImageRecord]:
    if not tf.io.gfile.exists(span):
        raise IngestionError(f"span folder not found: {span}; give one span-<N>/ folder of your data, which "
                             "holds the images")
    inner_spans = available_spans(span)
    if inner_spans:
        raise IngestionError(f"{span} holds span folders, not images: give one of them, e.g. "
                             f"{os.path.join(span, f'span-{inner_spans[-1]}')}")
    if tf.io.gfile.isdir(span):
        paths = [os.path.join(span, n.rstrip("/")) for n in sorted(tf.io.gfile.listdir(span)) if not n.startswith(".")]
        span_dirs = {span.rstrip("/")}
    else:
        paths, span_dirs = [span], {os.path.dirname(span)}
    _check_no_empty_folders(paths)
    files = list_input_files(paths)
    if not files:
        raise IngestionError(f"no input files in {span} (hidden files are ignored)")
    kind = detect_format(files)
    if kind == "images":
        records = _scan_image_files(files, span_dirs, transform)
    elif kind == "npz":
        records = [r for f in files for r in _scan_npz(f, transform)]
    else:
        records = [r for f in files for r in _scan_tfrecords(f, transform)]
    if not records:
        raise IngestionError(f"no images in {_names(files)}")
    return records


def _resolve_transform(records: list[ImageRecord], transform) -> list[ImageRecord]:
    """Records scanned for a transform hold (H, W, 3 if colour else 1); this decides the channel
    count (``data.channels``, or 3 when any image is in colour) and gives every record the result."""
    if transform is None:
        return records
    channels = transform.channels
    if channels is None:
        channels = 3 if any(r.shape[2] == 3 for r in records) else 1
        logger.info(f"[ingest] data.channels not set: {channels} ({'some images are in colour' if channels == 3 else 'every image is grayscale'})")
    resolved = transform.with_channels(channels)
    return [dataclasses.replace(r, shape=r.shape[:2] + (channels,), transform=resolved) for r in records]


def to_example(record: ImageRecord) -> tf.train.Example:
    """The record's tf.train.Example; with a transform, the image is transformed here (in the
    Beam job, one image at a time) and stored as PNG."""
    encoded = record.encoded
    if encoded is None:
        with tf.io.gfile.GFile(record.source, "rb") as f:
            encoded = f.read()
    if record.transform is not None:
        encoded, shape = image_transform.transformed_png(encoded, record.transform)
        if shape != record.shape:  # the scan decided the shape from the header: they must agree
            raise IngestionError(f"{record.source}: transformed to {shape}, scanned as {record.shape}")
    height, width, channels = record.shape
    return example_format.make_example(encoded, height, width, channels, record.source, record.label)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMES_IN_ERROR])
    more = len(items) - _MAX_NAMES_IN_ERROR
    return shown + (f" (and {more} more)" if more > 0 else "")


class _RefusedImage(ValueError):
    """An image refused by one of our checks (not PNG/JPEG, too large, not 8-bit); the message says why."""


# What a corrupt or hostile file can raise while PIL or TF reads it; every one becomes a named error.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError,
                  TypeError, Image.DecompressionBombError, tf.errors.OpError)  # _RefusedImage is a ValueError


def _problem(error: Exception) -> str:
    """One readable line saying why a file was refused."""
    if isinstance(error, _RefusedImage):
        return str(error)
    if isinstance(error, tf.errors.OpError):  # drop TF's "{{function_node ...}}" and "[Op:...]" wrapping
        return "TensorFlow: " + re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:.*$", "", error.message)
    return f"{type(error).__name__}: {error}"


def _open_header(encoded: bytes) -> Image.Image:
    """The image opened by PIL (header only) after checking its format and its size against
    ``MAX_PIXELS``: a decompression bomb is refused before any pixel is decoded."""
    try:
        with warnings.catch_warnings():  # PIL warns from 89 Mpx; our lower limit is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(encoded), formats=("PNG", "JPEG"))  # reads the header only
    except UnidentifiedImageError:
        raise _RefusedImage("not a PNG or JPEG image (or its header is damaged)") from None
    except Image.DecompressionBombError as e:  # PIL's own refusal, from 179 Mpx
        raise _RefusedImage(f"{e} (the limit here is {MAX_PIXELS:,}: tfx_gan.data.ingest.MAX_PIXELS)") from None
    if image.width * image.height > MAX_PIXELS:
        image.close()
        raise _RefusedImage(f"{image.width}x{image.height} pixels is over the limit of {MAX_PIXELS:,} "
                            "(tfx_gan.data.ingest.MAX_PIXELS); resize it first")
    return image


def _png_bit_depth(encoded: bytes, image: Image.Image) -> int:
    # PIL opens 16-bit RGB(A) PNGs as 8-bit modes, so the depth is read from the IHDR chunk,
    # which the PNG format puts first: byte 24 of the file.
    return encoded[24] if image.format == "PNG" else 8


def _check_tf_decodes(encoded: bytes, height: int, width: int) -> None:
    # Training decodes with TensorFlow, which is stricter than PIL (e.g. a PNG cut after its last
    # IDAT chunk loads in PIL but not in TF): the file must decode there too, to the same size.
    decoded = tf.io.decode_image(encoded, expand_animations=False)
    if tuple(decoded.shape[:2]) != (height, width):
        raise _RefusedImage(f"TensorFlow decodes it to {tuple(decoded.shape)}, PIL to {(height, width)}")


def _transformed_shape(encoded: bytes, transform: image_transform.ImageTransform) -> tuple[int, int, int]:
    """(height, width, 3 if colour else 1) of the image after ``transform``, after the same checks
    as without one (format, size limit, full decode in PIL and TF); modes and depths the transform
    converts are accepted, 16-bit only with ``convert_16bit``."""
    with _open_header(encoded) as image:
        if _png_bit_depth(encoded, image) > 8 and not transform.convert_16bit:
            raise _RefusedImage(f"{_png_bit_depth(encoded, image)}-bit PNG: set data.convert_16bit: true to "
                                "convert it to 8 bits (value >> 8), or convert it first")
        try:
            image_transform.check_mode(image, transform)
        except image_transform.TransformError as e:
            raise _RefusedImage(str(e)) from None
        colour = image_transform.is_colour(image)
        image.load()
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)  # EXIF orientation: 5-8 turn the image by 90 degrees
    _check_tf_decodes(encoded, height, width)
    if transform.size is not None:
        height, width = transform.size
    elif orientation in (5, 6, 7, 8):
        height, width = width, height
    return height, width, 3 if colour else 1


def _image_shape(encoded: bytes) -> tuple[int, int, int]:
    """(height, width, channels) after checking the header's size against ``MAX_PIXELS`` and the
    pixel depth, then decoding fully (a truncated file fails here, not later in training)."""
    image = _open_header(encoded)
    with image:
        if _png_bit_depth(encoded, image) > 8:
            raise _RefusedImage(f"{encoded[24]}-bit PNG: 8-bit pixels are expected; convert it first "
                                "(e.g. value >> 8)")
        channels = _CHANNELS_BY_MODE.get(image.mode)
        if channels is None:  # e.g. LA (grayscale + alpha), CMYK
            raise _RefusedImage(f"PIL mode {image.mode} is not supported ({', '.join(_CHANNELS_BY_MODE)} "
                                "expected): convert it to 8-bit grayscale, RGB or RGBA first")
        if image.mode == "P":  # palette images decode to RGB (or RGBA with transparency)
            channels = 4 if "transparency" in image.info else 3
        image.load()
        shape = (image.height, image.width, channels)
    # Training decodes with TensorFlow, which is stricter than PIL (e.g. a PNG cut after its last
    # IDAT chunk loads in PIL but not in TF): the file must decode there too, to the same shape.
    decoded = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    if tuple(decoded.shape) != shape:
        raise _RefusedImage(f"TensorFlow decodes it to {tuple(decoded.shape)}, PIL to {shape}")
    return shape


def _checked_label(value: int, source: str) -> int:
    if not 0 <= value <= MAX_LABEL:
        raise IngestionError(f"{source}: label {value} is outside 0..{MAX_LABEL} (tfx_gan.data.ingest.MAX_LABEL)")
    return int(value)


def _check_no_empty_folders(paths: list[str]) -> None:
    empty = [p for p in paths if tf.io.gfile.isdir(p) and not list_input_files([p])]
    if empty:
        raise IngestionError("empty class folder(s): " + _names(empty) + "; remove them or add images")


def _class_labels(files: list[str], span_dirs: set[str]) -> dict[str, tuple[int | None, str | None]]:
    """Maps each image file to (label, class name) from its class folder: (None, None) when the
    images sit directly in the span folder, a None name when folders are numbers (the rules are
    in the module docstring)."""
    parents = sorted({os.path.dirname(f) for f in files})
    flat = [p for p in parents if p in span_dirs]
    if flat and len(parents) > 1:
        raise IngestionError(f"images both directly in {flat[0]} and in class folders "
                             f"({_names([p for p in parents if p not in span_dirs])}): use one layout")
    if flat:
        return {f: (None, None) for f in files}
    nested = [p for p in parents if os.path.dirname(p) not in span_dirs]
    if nested:
        raise IngestionError("class folders must sit directly in the span folder, found deeper folders: "
                             + _names(nested))
    names = {p: os.path.basename(p) for p in parents}
    if len(parents) == 1:
        raise IngestionError(f"one class folder found ({parents[0]}): put unlabelled images directly in the "
                             "span folder, or add a folder for every class")
    numeric = [p for p in parents if re.fullmatch(r"[0-9]+", names[p])]
    if numeric and len(numeric) < len(parents):
        raise IngestionError("class folders mix numbers and names, so their labels are ambiguous: "
                             + _names([names[p] for p in parents]) + "; use all numbers or all names")
    if numeric:
        canonical = {names[p] for p in parents if _CANONICAL_INT.fullmatch(names[p])}
        odd = [name if str(int(name)) not in canonical else f"{name} (same number as {int(name)})"
               for name in (names[p] for p in parents) if name not in canonical]
        if odd:
            raise IngestionError("class folders named by numbers must be plain integers without leading zeros "
                                 f"(so '1' and '01' cannot both be class 1), found: {_names(odd)}")
        classes = {p: (_checked_label(int(names[p]), p), None) for p in parents}
    else:
        ordered = sorted(parents, key=lambda p: names[p])
        classes = {p: (i, names[p]) for i, p in enumerate(ordered)}
        logger.info(_one_line("[ingest] class folders -> labels: "
                        + ", ".join(f"{names[p]}={i}" for i, p in enumerate(ordered))))
    return {f: classes[os.path.dirname(f)] for f in files}


def _scan_image_files(files: list[str], span_dirs: set[str], transform=None) -> list[ImageRecord]:
    classes = _class_labels(files, span_dirs)
    records, corrupt = [], []
    for f in files:
        try:
            with tf.io.gfile.GFile(f, "rb") as fh:
                encoded = fh.read()
            shape = _image_shape(encoded) if transform is None else _transformed_shape(encoded, transform)
        except _DECODE_ERRORS as e:
            corrupt.append(f"{f} ({_problem(e)})")
            continue
        label, class_name = classes[f]
        records.append(ImageRecord(f, shape, label, class_name=class_name))
    if corrupt:
        raise IngestionError(f"{len(corrupt)} image file(s) cannot be ingested: " + _names(corrupt))
    return records


def _scan_npz(path: str, transform=None) -> list[ImageRecord]:
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            arrays = dict(np.load(io.BytesIO(f.read()), allow_pickle=False))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, tf.errors.OpError) as e:
        raise IngestionError(f"{path} is not a readable .npz file ({_problem(e)})") from e
    if "x_train" not in arrays:
        raise IngestionError(f"{path} has no 'x_train' array (Keras MNIST layout expected; found: "
                             f"{', '.join(sorted(arrays)) or 'nothing'})")
    records = []
    for part in ("train", "test"):
        x, y = arrays.get(f"x_{part}"), arrays.get(f"y_{part}")
        if x is None:
            continue
        if x.dtype != np.uint8:
            raise IngestionError(f"{path}: x_{part} has dtype {x.dtype}; uint8 pixels (0..255) are expected")
        if x.ndim == 3:
            x = x[..., np.newaxis]
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape[1:3]:
            raise IngestionError(f"{path}: x_{part} has shape {x.shape}; expected [N, H, W] or [N, H, W, 1|3]")
        if x.shape[1] * x.shape[2] > MAX_PIXELS:
            raise IngestionError(f"{path}: x_{part}'s {x.shape[2]}x{x.shape[1]} images are over the limit of "
                                 f"{MAX_PIXELS:,} pixels (tfx_gan.data.ingest.MAX_PIXELS)")
        if y is not None and (y.ndim != 1 or len(y) != len(x)):
            raise IngestionError(f"{path}: y_{part} has shape {y.shape}; expected [{len(x)}] labels")
        if y is not None and not np.issubdtype(y.dtype, np.integer):
            raise IngestionError(f"{path}: y_{part} has dtype {y.dtype}; integer labels are expected")
        shape = tuple(x.shape[1:])
        if transform is not None:  # (H, W, 3 if colour else 1): _resolve_transform decides the channels
            shape = (transform.size or shape[:2]) + (shape[2],)
        for i, image in enumerate(x):
            encoded = tf.io.encode_png(image).numpy()
            label = None if y is None else _checked_label(int(y[i]), f"{path}[y_{part}][{i}]")
            records.append(ImageRecord(f"{path}[x_{part}][{i}]", shape, label, encoded))
    return records


def _scan_tfrecords(path: str, transform=None) -> list[ImageRecord]:
    compression = "GZIP" if path.endswith(".gz") else ""
    records, bad = [], []
    try:
        for i, raw in enumerate(tf.data.TFRecordDataset(path, compression_type=compression)):
            source = f"{path}[{i}]"
            with warnings.catch_warnings(record=True) as parse_warnings:
                warnings.simplefilter("always")
                try:
                    feature = tf.train.Example.FromString(raw.numpy()).features.feature
                except DecodeError:
                    feature = None
            # protobuf only warns about some malformed input ("Not all data was converted").
            if feature is None or parse_warnings:
                bad.append(f"{source} (not a tf.train.Example)")
                continue
            if not feature[example_format.IMAGE_KEY].bytes_list.value:
                bad.append(f"{source} (no '{example_format.IMAGE_KEY}' bytes feature)")
                continue
            encoded = feature[example_format.IMAGE_KEY].bytes_list.value[0]
            try:
                shape = _image_shape(encoded) if transform is None else _transformed_shape(encoded, transform)
            except _DECODE_ERRORS as e:
                bad.append(f"{source} ({_problem(e)})")
                continue
            labels = feature[example_format.LABEL_KEY].int64_list.value
            if len(labels) > 1:
                bad.append(f"{source} ({len(labels)} labels, one expected)")
                continue
            label = _checked_label(labels[0], source) if labels else None
            records.append(ImageRecord(source, shape, label, encoded))
    except tf.errors.OpError as e:
        raise IngestionError(f"{path} is not a readable TFRecord file ({_problem(e)})") from e
    if bad:
        raise IngestionError(f"{len(bad)} record(s) hold no usable image: " + _names(bad))
    return records


def _check_consistent_shapes(records: list[ImageRecord]) -> None:
    counts = collections.Counter(r.shape for r in records)
    majority, _ = counts.most_common(1)[0]
    odd = [f"{r.source} ({r.shape[0]}x{r.shape[1]}x{r.shape[2]})" for r in records if r.shape != majority]
    if odd:
        raise IngestionError(
            f"{len(odd)} image(s) differ from the {majority[0]}x{majority[1]}x{majority[2]} (HxWxC) of the "
            "rest; resize or convert them before ingesting: " + _names(odd))
    labelled = sum(r.label is not None for r in records)
    if 0 < labelled < len(records):
        raise IngestionError(f"{len(records) - labelled} of {len(records)} images have no label while the "
                             "rest do; label all of them or none")

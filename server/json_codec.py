"""JSON <-> numpy for the TF Serving REST protocol, without TensorFlow.

Decoding (requests) turns JSON values into numpy arrays of a signature's dtype and refuses what
TF Serving refuses: strings or booleans for numeric inputs, non-integers for integer inputs,
values that do not fit the dtype, ragged lists, ``{"b64": ...}`` objects anywhere but string
inputs.

Encoding (responses) is the hot path of the server: a batch of 16 28x28x1 float32 images is
12,544 numbers. ``json.dumps(array.tolist())`` spends ~10 ms on it here (Python's float repr of
each value, widened to double, so 17 digits each). :func:`encode_float32_array` writes the same
nested lists with numpy in ~1.5 ms: each float32 becomes 9 significant digits (trailing zeros
trimmed), which is the precision TF Serving itself uses for float32 (``%.9g``,
``max_digits10``) and which parses back to the *identical* float32 value (9 significant digits
always round-trip a float32; the test suite checks millions of random bit patterns). NaN and
+-Infinity are written as ``NaN``/``Infinity``/``-Infinity`` like TF Serving and Python's json;
the server never sends them (server/app.py answers 500 instead: standard JSON has no
NaN) and refuses them in requests (``to_array``).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import threading
from collections import OrderedDict
from typing import Any

import numpy as np


class RequestError(ValueError):
    """A problem with the client's request: the server answers 400 with this message."""


# --------------------------------------------------------------------------- float32 encoding
_PAD = 0  # byte value marking "no character here"; removed before the bytes are returned
# 10**k for k in -64..64, each correctly rounded (float("1e-7") is, 10.0 ** -7 is not always).
_POW10 = np.array([float(f"1e{k}") for k in range(-64, 65)], dtype=np.float64)
_LUT4 = np.frombuffer("".join(f"{i:04d}" for i in range(10000)).encode(), dtype=np.uint8).copy()
_LUT4_U64 = _LUT4.view(np.uint32).astype(np.uint64)  # "0000".."9999", first digit in the low byte
_EXP = np.zeros((101, 4), dtype=np.uint8)  # exponent suffix for e = -50..50 ("" for 0)
for _e in range(-50, 51):
    _s = b"" if _e == 0 else b"e%d" % _e
    _EXP[_e + 50, : len(_s)] = np.frombuffer(_s, dtype=np.uint8)
_EXP_U64 = _EXP.view(np.uint32).ravel().astype(np.uint64)
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # low k bytes
_ALL_ZERO_DIGITS = np.uint64(int.from_bytes(b"00000000", "little"))
_HIGH_BYTES_ZERO = [np.uint64(1 << (64 - 8 * k)) for k in range(1, 8)]  # x < bound: top k bytes 0
_ZERO_DIGIT, _DOT, _MINUS = np.uint64(ord("0")), np.uint64(ord(".")), np.uint64(ord("-"))
_TOKEN_WIDTH = 16  # sign, first digit, '.', 8 decimals, exponent (up to "e-45"), 1 spare


def _fill_float32_tokens(x: np.ndarray, out: np.ndarray) -> None:
    """Writes the decimal text of each float32 in ``x`` (1-D) into ``out``, a C-contiguous
    [len(x), 16] uint8 array, as two little-endian 8-byte words per value."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        xd = x.astype(np.float64)
        ax = np.abs(xd)
        regular = np.isfinite(ax) & (ax > 0)
        all_regular = bool(regular.all())
        safe = ax if all_regular else np.where(regular, ax, 1.0)
        # 9 significant digits: m in [1e8, 1e9), value = m * 10**(e-8).
        e = np.floor(np.log10(safe)).astype(np.int64)
        m = np.rint(safe * _POW10[72 - e]).astype(np.int64)
        off = (m >= 1_000_000_000) | (m < 100_000_000)  # log10 rounding at powers of ten
        if off.any():
            e[off] += np.where(m[off] >= 1_000_000_000, 1, -1)
            m[off] = np.rint(safe[off] * _POW10[72 - e[off]]).astype(np.int64)
    first, rest = np.divmod(m, 100_000_000)
    hi, lo = np.divmod(rest, 10_000)
    decimals = _LUT4_U64[hi] | (_LUT4_U64[lo] << np.uint64(32))  # 8 digit bytes
    # trailing '0' digits are the high bytes; after XOR with "00000000" they are zero bytes
    zeros = decimals ^ _ALL_ZERO_DIGITS
    trailing_zeros = np.zeros(rest.shape, dtype=np.int64)
    for bound in _HIGH_BYTES_ZERO:
        trailing_zeros += zeros < bound
    decimals &= _KEEP[np.maximum(8 - trailing_zeros, 1)]  # drop trailing zeros, keep >= 1 decimal
    words = out.view(np.uint64)
    words[:, 0] = (
        np.where(np.signbit(xd), _MINUS, np.uint64(0))
        | ((first.astype(np.uint64) + _ZERO_DIGIT) << np.uint64(8))
        | (_DOT << np.uint64(16))
        | (decimals << np.uint64(24))
    )
    words[:, 1] = (decimals >> np.uint64(40)) | (_EXP_U64[e + 50] << np.uint64(24))
    if not all_regular:
        for i in np.flatnonzero(~regular):
            v = float(xd[i])
            if v == 0.0:
                token = b"-0.0" if math.copysign(1.0, v) < 0 else b"0.0"
            elif v != v:
                token = b"NaN"
            else:
                token = b"-Infinity" if v < 0 else b"Infinity"
            out[i, :] = _PAD
            out[i, : len(token)] = np.frombuffer(token, dtype=np.uint8)


# Templates cached by shape, least recently used first, within a byte budget: a template is about
# 25 bytes per element (256 images of 64x64x3 make 79 MB, more than the budget: used, not kept),
# so a count of entries would not bound the memory a stream of new batch shapes can take.
TEMPLATE_CACHE_BYTES = 16 * 1024 * 1024
_templates: "OrderedDict[tuple[int, ...], np.ndarray]" = OrderedDict()
_templates_lock = threading.Lock()


def _nesting_template(shape: tuple[int, ...]) -> np.ndarray:
    """[N, rank + 15 + rank + 1] bytes: the brackets and commas around each element (cached)."""
    with _templates_lock:
        template = _templates.get(shape)
        if template is not None:
            _templates.move_to_end(shape)
            return template
    template = _build_nesting_template(shape)
    if template.nbytes <= TEMPLATE_CACHE_BYTES:
        with _templates_lock:
            _templates[shape] = template
            while sum(t.nbytes for t in _templates.values()) > TEMPLATE_CACHE_BYTES:
                _templates.popitem(last=False)
    return template


def template_cache_bytes() -> int:
    """The bytes the template cache holds now (at most TEMPLATE_CACHE_BYTES)."""
    with _templates_lock:
        return sum(t.nbytes for t in _templates.values())


def _build_nesting_template(shape: tuple[int, ...]) -> np.ndarray:
    rank = len(shape)
    count = int(np.prod(shape))
    flat = np.arange(count, dtype=np.int64)
    spans = np.cumprod(np.array(shape[::-1], dtype=np.int64))[::-1]  # prod(shape[k:])
    opens = np.zeros(count, dtype=np.int64)
    closes = np.zeros(count, dtype=np.int64)
    for span in spans:
        rem = flat % span
        opens += rem == 0
        closes += rem == span - 1
    cols = np.arange(rank)[None, :]
    pre = np.where(cols >= (rank - opens)[:, None], ord("["), _PAD).astype(np.uint8)
    post = np.where(cols < closes[:, None], ord("]"), _PAD).astype(np.uint8)
    comma = np.full((count, 1), ord(","), dtype=np.uint8)
    comma[-1, 0] = _PAD
    template = np.concatenate([pre, np.zeros((count, _TOKEN_WIDTH), np.uint8), post, comma], axis=1)
    template.setflags(write=False)
    return template


def encode_float32_array(array: np.ndarray) -> bytes:
    """The JSON text of a float32 array as nested lists; values round-trip exactly."""
    array = np.asarray(array, dtype=np.float32)
    if array.size == 0:
        return json.dumps(array.tolist()).encode()
    tokens = np.empty((array.size, _TOKEN_WIDTH), dtype=np.uint8)
    _fill_float32_tokens(array.ravel(), tokens)
    if array.ndim == 0:
        return tokens[tokens != _PAD].tobytes()
    matrix = _nesting_template(array.shape).copy()
    matrix[:, array.ndim : array.ndim + _TOKEN_WIDTH] = tokens
    return matrix[matrix != _PAD].tobytes()


# --------------------------------------------------------------------------- generic encoding
def _b64(value: bytes) -> dict:
    return {"b64": base64.b64encode(value).decode("ascii")}


def _bytes_to_b64(nested: Any) -> Any:
    if isinstance(nested, list):
        return [_bytes_to_b64(v) for v in nested]
    if isinstance(nested, (bytes, bytearray)):
        return _b64(bytes(nested))
    if isinstance(nested, str):
        return _b64(nested.encode("utf-8"))
    return nested


def encode(obj: Any) -> bytes:
    """Compact JSON of dicts/lists/scalars/numpy arrays; float32 arrays take the fast path and
    byte strings (TF's DT_STRING) come out as ``{"b64": ...}``."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == np.float32:
            return encode_float32_array(obj)
        if obj.dtype.kind in "OSU":
            return json.dumps(_bytes_to_b64(obj.tolist()), separators=(",", ":")).encode()
        return json.dumps(obj.tolist(), separators=(",", ":")).encode()
    if isinstance(obj, dict):
        parts = [json.dumps(str(k)).encode() + b":" + encode(v) for k, v in obj.items()]
        return b"{" + b",".join(parts) + b"}"
    if isinstance(obj, (list, tuple)):
        return b"[" + b",".join(encode(v) for v in obj) + b"]"
    if isinstance(obj, (bytes, bytearray)):
        return encode(_b64(bytes(obj)))
    if isinstance(obj, np.generic):
        return encode(np.asarray(obj))
    return json.dumps(obj, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- request decoding
def _shape_str(shape) -> str:
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape) + "]"


def _describe(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):  # nested deeper than the encoder goes
        text = "a deeply nested list"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_bytes_leaf(value: Any, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RequestError(f'input "{name}": invalid base64 data ({exc})') from None
    raise RequestError(
        f'input "{name}": expected a string or {{"b64": ...}} for a string tensor, got {_describe(value)}'
    )


def _string_array(value: Any, name: str) -> np.ndarray:
    def shape_of(v):
        return [len(v)] + shape_of(v[0]) if isinstance(v, list) and v else ([0] if isinstance(v, list) else [])

    shape = shape_of(value)
    flat: list[bytes] = []

    def walk(v, depth):
        if depth == len(shape):
            flat.append(_to_bytes_leaf(v, name))
            return
        if not isinstance(v, list) or len(v) != shape[depth]:
            raise RequestError(f'input "{name}": ragged nested lists (every list at one depth must have the same length)')
        for item in v:
            walk(item, depth + 1)

    walk(value, 0)
    if not flat:
        raise RequestError(f'input "{name}" is empty; expected string values')
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


MAX_RANK = 32  # numpy's limit on dimensions; also keeps the recursive string walk shallow


def _nesting_depth(value: Any) -> int:
    """How deep the first elements of nested lists go (the rank the value claims)."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


_FLOAT_KINDS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}


def to_array(value: Any, dtype: np.dtype | str, name: str) -> np.ndarray:
    """A JSON value as a numpy array of ``dtype`` ('string' for TF's DT_STRING), or RequestError."""
    depth = _nesting_depth(value)
    if depth > MAX_RANK:
        raise RequestError(f'input "{name}": lists nested {depth} deep; a tensor has at most {MAX_RANK} dimensions')
    if isinstance(dtype, str) and dtype == "string":
        return _string_array(value, name)
    dtype = np.dtype(dtype)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(
            f'input "{name}": ragged or mixed nested lists (every list at one depth must have the same length)'
        ) from None
    kind = array.dtype.kind
    if array.size == 0:
        raise RequestError(f'input "{name}" is empty; expected {dtype.name} values')
    if kind == "O":
        if any(isinstance(v, dict) and "b64" in v for v in _leaves(value, 64)):
            raise RequestError(f'input "{name}": {{"b64": ...}} objects are only valid for string inputs, not {dtype.name}')
        raise RequestError(f'input "{name}": expected numbers of type {dtype.name}; got ragged lists, nulls or out-of-range integers')
    if dtype == np.bool_:
        if kind != "b":
            raise RequestError(f'input "{name}": expected true/false values for a bool input')
        return array
    if kind in "USa" or kind == "b":
        what = "strings" if kind in "USa" else "booleans"
        raise RequestError(f'input "{name}": expected numbers of type {dtype.name}, got {what}')
    if dtype in _FLOAT_KINDS:
        if kind not in "fiu":
            raise RequestError(f'input "{name}": expected numbers of type {dtype.name}')
        if array.size:
            finfo = np.finfo(dtype)
            if kind == "f":
                # Python's json module reads NaN and Infinity; a generator fed them returns NaN
                # images, and NaN has no standard JSON form: refuse them here.
                if not np.isfinite(array).all():
                    raise RequestError(f'input "{name}": NaN or infinite values are not allowed')
                if np.abs(array).max() > finfo.max:
                    raise RequestError(f'input "{name}": value {np.abs(array).max()!r} does not fit {dtype.name}')
            elif np.abs(array).max() > 2 ** (finfo.nmant + 1):
                raise RequestError(f'input "{name}": integer too large to convert to {dtype.name} without loss of precision')
        return array.astype(dtype, copy=False)
    if dtype.kind in "iu":
        if kind not in "iu":
            raise RequestError(f'input "{name}": expected integers of type {dtype.name}, got {array.dtype.name} values')
        if array.size:
            info = np.iinfo(dtype)
            lo, hi = array.min(), array.max()
            if lo < info.min or hi > info.max:
                raise RequestError(f'input "{name}": value out of range for {dtype.name}')
        return array.astype(dtype, copy=False)
    raise RequestError(f'input "{name}": unsupported input dtype {dtype.name}')


def _leaves(value: Any, limit: int):
    """Up to ``limit`` leaves of a nested list, depth first (for error messages)."""
    stack = [value]
    seen = 0
    while stack and seen < limit:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        else:
            seen += 1
            yield v


def check_shape(array: np.ndarray, expected: tuple, name: str) -> None:
    """``expected`` holds ints or None (any size); rank must match."""
    if array.ndim != len(expected) or any(e is not None and e != a for a, e in zip(array.shape, expected)):
        raise RequestError(
            f'input "{name}": expected shape {_shape_str(expected)}, got {_shape_str(array.shape)}'
        )

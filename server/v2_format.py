"""KServe's Open Inference Protocol (V2) in JSON, for one signature: the request of
``POST /v2/models/NAME[/versions/V]/infer`` turned into numpy inputs, the outputs into its
response, and the model metadata; pure functions, no HTTP and no TensorFlow.

The protocol: https://github.com/kserve/open-inference-protocol (REST, "Inference Request JSON
Object"). A tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` in row-major order,
flat or nested. V2 has no signatures: ``serving_default`` answers unless the request's
``parameters`` name another (``{"signature_name": "generate_png"}``). String outputs (the PNGs)
are BYTES tensors whose elements are base64 text, marked with the output parameter
``"content_type": "base64"`` (the convention of MLServer, KServe's V2 runtime for Python).

The binary tensor data extension (what Triton's and KServe's clients send by default): the body is
the JSON request of ``Inference-Header-Content-Length`` bytes followed by raw tensor bytes; an
input with ``"parameters": {"binary_data_size": N}`` and no ``data`` takes the next N bytes
(row-major; a BYTES element is a 4-byte little-endian length and its bytes). Outputs asked for
with ``"binary_data": true`` (or all, with the request parameter ``binary_data_output``) come back
the same way, the response's JSON length in the same header.
"""
from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

import numpy as np

from tfx_gan.server import json_codec
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import SERVING_DEFAULT, LoadedModel, SignatureInfo, TensorSpecInfo

# V2 datatype <-> numpy dtype name ("string" is TF's DT_STRING)
_DATATYPES = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "string",
}
_TO_DATATYPE = {v: k for k, v in _DATATYPES.items()}
_REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}
_TENSOR_KEYS = {"name", "shape", "datatype", "data", "parameters"}


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    signature_name: str
    inputs: dict  # name -> np.ndarray, already of the declared datatype and shape
    outputs: list[str]  # requested output names; empty: all
    binary_outputs: frozenset = frozenset()  # outputs to send as raw bytes (binary data extension)
    all_binary: bool = False  # the request parameter binary_data_output: every output as raw bytes


DATATYPES = frozenset(_DATATYPES)


def numpy_dtype(v2_datatype: str) -> np.dtype:
    return np.dtype(_DATATYPES[v2_datatype])


def item_bytes(v2_datatype: str) -> int:
    """Bytes per element of a V2 datatype; 0 for BYTES (its elements' sizes are in the data)."""
    return 0 if v2_datatype == "BYTES" else numpy_dtype(v2_datatype).itemsize


def datatype(spec: TensorSpecInfo) -> str:
    return _TO_DATATYPE.get(spec.dtype, spec.dtype.upper())


def json_length(value: str | None) -> int | None:
    """The Inference-Header-Content-Length header as a number (None when absent)."""
    if value is None:
        return None
    if not value.strip().isascii() or not value.strip().isdigit() or len(value.strip()) > 19:
        raise RequestError(f"invalid Inference-Header-Content-Length {value[:40]!r}")
    return int(value.strip())


def parse_infer(body: bytes, header_length: int | None = None) -> InferRequest:
    """The body of an infer request (JSON, or JSON of ``header_length`` bytes and then binary tensor
    data), each input tensor checked for name, datatype, shape and data."""
    binary = b""
    if header_length is not None:
        if header_length > len(body):
            raise RequestError(f"Inference-Header-Content-Length {header_length} is more than the body's {len(body)} bytes")
        body, binary = body[:header_length], body[header_length:]
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(f"malformed JSON request body: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list) or not request["inputs"]:
        raise RequestError('the request body must be a JSON object with a non-empty "inputs" list of tensors')
    unknown = sorted(set(request) - _REQUEST_KEYS)
    if unknown:
        raise RequestError(f"unknown key(s) {unknown} in request; allowed: {sorted(_REQUEST_KEYS)}")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError('"parameters" must be an object')
    signature_name = parameters.get("signature_name", SERVING_DEFAULT)
    if not isinstance(signature_name, str) or not signature_name:
        raise RequestError('parameters.signature_name must be a non-empty string')
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in request["inputs"]:
        name, array, used = _input_tensor(tensor, binary, offset)
        offset += used
        if name in inputs:
            raise RequestError(f'input "{name}" given twice')
        inputs[name] = array
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} bytes of binary data follow the last input's "
                           "(binary_data_size must account for every byte after the JSON header)")
    outputs = request.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise RequestError('"outputs" must be a list of {"name": ...} objects')
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError('"id" must be a string')
    binary_outputs = frozenset(o["name"] for o in outputs if isinstance(o.get("parameters"), dict)
                               and o["parameters"].get("binary_data") is True)
    return InferRequest(request_id, signature_name, inputs, [o["name"] for o in outputs], binary_outputs,
                        parameters.get("binary_data_output") is True)


def _input_tensor(tensor, binary: bytes = b"", offset: int = 0) -> tuple[str, np.ndarray, int]:
    """(name, array, bytes of ``binary`` it used from ``offset``)."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError('each input must be an object {"name", "shape", "datatype", "data"}')
    name = tensor["name"]
    parameters = tensor.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise RequestError(f'input "{name}": "parameters" must be an object')
    size = parameters.get("binary_data_size")
    missing = [k for k in ("shape", "datatype") + (() if size is not None else ("data",)) if k not in tensor]
    unknown = sorted(set(tensor) - _TENSOR_KEYS)
    if missing or unknown:
        raise RequestError(f'input "{name}": ' + "; ".join(
            ([f"missing {missing}"] if missing else []) + ([f"unknown key(s) {unknown}"] if unknown else [])))
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise RequestError(f'input "{name}": shape must be a list of non-negative integers, got {shape!r}'[:200])
    dtype = _DATATYPES.get(tensor["datatype"]) if isinstance(tensor["datatype"], str) else None
    if dtype is None:
        raise RequestError(f'input "{name}": unknown datatype {tensor["datatype"]!r}; use one of {sorted(_DATATYPES)}'[:300])
    expected = math.prod(shape)  # Python integers: a huge shape cannot overflow into a small count
    if size is None:
        array = json_codec.to_array(tensor["data"], dtype, name)  # BYTES elements: text, as UTF-8
        used = 0
    else:
        if "data" in tensor:
            raise RequestError(f'input "{name}": binary_data_size and "data" both given')
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or offset + size > len(binary):
            raise RequestError(f'input "{name}": binary_data_size {size!r} does not fit the '
                               f'{len(binary) - offset} bytes of binary data left')
        array, used = tensor_from_bytes(name, binary[offset:offset + size], tensor["datatype"], expected), size
    if array.size != expected:
        raise RequestError(f'input "{name}": shape {shape} holds {expected} elements, data has {array.size}')
    return name, array.reshape(shape), used


def tensor_from_bytes(name: str, raw: bytes, v2_datatype: str, elements: int) -> np.ndarray:
    """A flat array from raw tensor bytes (row-major; BYTES: 4-byte little-endian lengths)."""
    if v2_datatype == "BYTES":
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise RequestError(f'input "{name}": BYTES data ends inside the length of an element')
            length = int.from_bytes(raw[at:at + 4], "little")
            if at + 4 + length > len(raw):
                raise RequestError(f'input "{name}": a BYTES element of {length} bytes runs past the data')
            values.append(raw[at + 4:at + 4 + length])
            at += 4 + length
        return np.array(values, dtype=object)
    dtype = np.dtype(_DATATYPES[v2_datatype])
    if len(raw) != elements * dtype.itemsize:
        raise RequestError(f'input "{name}": {len(raw)} bytes of {v2_datatype} data; the shape needs '
                           f'{elements * dtype.itemsize}')
    return np.frombuffer(raw, dtype=dtype)


def tensor_to_bytes(array: np.ndarray) -> bytes:
    """Raw tensor bytes, row-major and little-endian; strings as 4-byte length + bytes."""
    if array.dtype.kind in "OSU":
        return b"".join(len(v).to_bytes(4, "little") + v for v in
                        (x if isinstance(x, bytes) else str(x).encode() for x in array.ravel().tolist()))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def check_inputs(signature: SignatureInfo, request: InferRequest) -> None:
    """Every input the signature takes, of its datatype; nothing else."""
    names = list(signature.inputs)
    missing = [n for n in names if n not in request.inputs]
    extra = sorted(set(request.inputs) - set(names))
    if missing or extra:
        parts = ([f"missing input(s) {missing}"] if missing else []) + ([f"unknown input(s) {extra}"] if extra else [])
        raise RequestError(f"{' and '.join(parts)}; signature {signature.name!r} takes "
                           f"{[(n, datatype(s)) for n, s in signature.inputs.items()]}")
    for name, spec in signature.inputs.items():
        given = _TO_DATATYPE.get("string" if request.inputs[name].dtype == object else request.inputs[name].dtype.name)
        if given != datatype(spec):
            raise RequestError(f'input "{name}": datatype {given} given, the model takes {datatype(spec)}')


def infer_response(model: LoadedModel, request: InferRequest, outputs: dict[str, np.ndarray]) -> tuple[dict, bytes | None]:
    """The Inference Response JSON Object (each output flat, in row-major order), and the binary
    data that follows it when outputs were asked for as binary (else None)."""
    wanted = request.outputs or list(outputs)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise RequestError(f"unknown output(s) {unknown}; the signature has {sorted(outputs)}")
    tensors, binary = [], []
    for name in wanted:
        array = np.asarray(outputs[name])
        tensor = {"name": name, "shape": list(array.shape)}
        strings = array.dtype.kind in "OSU"
        tensor["datatype"] = "BYTES" if strings else _TO_DATATYPE.get(array.dtype.name, array.dtype.name.upper())
        if request.all_binary or name in request.binary_outputs:
            raw = tensor_to_bytes(array)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            binary.append(raw)
        elif strings:
            tensor.update(parameters={"content_type": "base64"},
                          data=[base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode("ascii")
                                for v in array.ravel().tolist()])
        else:
            tensor["data"] = array.ravel()
        tensors.append(tensor)
    response = {"model_name": model.name, "model_version": str(model.version), "outputs": tensors}
    if request.id is not None:
        response["id"] = request.id
    return response, (b"".join(binary) if binary else None)


def model_metadata(model: LoadedModel, versions: list[int]) -> dict:
    """The Model Metadata Response JSON Object, for ``serving_default`` (its inputs and outputs)."""
    signature = model.signatures.get(SERVING_DEFAULT) or next(iter(model.signatures.values()))

    def describe(specs: dict) -> list[dict]:
        return [{"name": n, "datatype": datatype(s), "shape": [-1 if d is None else d for d in (s.shape or ())]}
                for n, s in specs.items()]

    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": "tensorflow_savedmodel",
        "inputs": describe(signature.inputs),
        "outputs": describe(signature.outputs),
        "parameters": {"signatures": sorted(model.signatures)},
    }

"""KServe's Open Inference Protocol (V2) in JSON, for one signature: the request of
``POST /v2/models/NAME[/versions/V]/infer`` turned into numpy inputs, the outputs into its
response, and the model metadata; pure functions, no HTTP and no TensorFlow.

The protocol: https://github.com/kserve/open-inference-protocol (REST, "Inference Request JSON
Object"). A tensor is ``{"name", "shape", "datatype", "data"}`` with ``data`` in row-major order,
flat or nested. V2 has no signatures: ``serving_default`` answers unless the request's
``parameters`` name another (``{"signature_name": "generate_png"}``). String outputs (the PNGs)
are BYTES tensors whose elements are base64 text, marked with the output parameter
``"content_type": "base64"`` (the convention of MLServer, KServe's V2 runtime for Python).
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


def datatype(spec: TensorSpecInfo) -> str:
    return _TO_DATATYPE.get(spec.dtype, spec.dtype.upper())


def parse_infer(body: bytes) -> InferRequest:
    """The JSON body of an infer request, each input tensor checked for name, datatype, shape and data."""
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
    for tensor in request["inputs"]:
        name, array = _input_tensor(tensor)
        if name in inputs:
            raise RequestError(f'input "{name}" given twice')
        inputs[name] = array
    outputs = request.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise RequestError('"outputs" must be a list of {"name": ...} objects')
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError('"id" must be a string')
    return InferRequest(request_id, signature_name, inputs, [o["name"] for o in outputs])


def _input_tensor(tensor) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError('each input must be an object {"name", "shape", "datatype", "data"}')
    name = tensor["name"]
    missing = [k for k in ("shape", "datatype", "data") if k not in tensor]
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
    array = json_codec.to_array(tensor["data"], dtype, name)  # BYTES elements: text, as UTF-8
    expected = math.prod(shape)  # Python integers: a huge shape cannot overflow into a small count
    if array.size != expected:
        raise RequestError(f'input "{name}": shape {shape} holds {expected} elements, data has {array.size}')
    return name, array.reshape(shape)


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


def infer_response(model: LoadedModel, request: InferRequest, outputs: dict[str, np.ndarray]) -> dict:
    """The Inference Response JSON Object: each output flat, in row-major order."""
    wanted = request.outputs or list(outputs)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise RequestError(f"unknown output(s) {unknown}; the signature has {sorted(outputs)}")
    tensors = []
    for name in wanted:
        array = np.asarray(outputs[name])
        tensor = {"name": name, "shape": list(array.shape)}
        if array.dtype.kind in "OSU":
            tensor.update(datatype="BYTES", parameters={"content_type": "base64"},
                          data=[base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode("ascii")
                                for v in array.ravel().tolist()])
        else:
            tensor.update(datatype=_TO_DATATYPE.get(array.dtype.name, array.dtype.name.upper()), data=array.ravel())
        tensors.append(tensor)
    response = {"model_name": model.name, "model_version": str(model.version), "outputs": tensors}
    if request.id is not None:
        response["id"] = request.id
    return response


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

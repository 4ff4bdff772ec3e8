"""The body of a :predict request, turned into numpy inputs for one signature, and the outputs
turned into the response body; pure functions, no HTTP and no TensorFlow.

TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest#request_format_2) has two
formats: row ("instances": one entry per example -> "predictions") and columnar ("inputs": one
value per input name -> "outputs"). Every problem is a RequestError whose one-line message names
the input and what was expected (the server answers 400 with it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfx_gan.server import json_codec
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import SERVING_DEFAULT, SignatureInfo

_TOP_LEVEL_KEYS = {"signature_name", "instances", "inputs"}


@dataclass(frozen=True)
class PredictRequest:
    signature_name: str
    columnar: bool  # "inputs" -> "outputs"; otherwise "instances" -> "predictions"
    data: Any  # the value of "inputs" or "instances"


def parse_body(body: bytes) -> PredictRequest:
    """The JSON body of a :predict request, checked for the keys TF Serving accepts."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(f"malformed JSON request body: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError('the request body must be a JSON object: {"instances": [...]} or {"inputs": ...}')
    unknown = sorted(set(request) - _TOP_LEVEL_KEYS)
    if unknown:
        raise RequestError(f"unknown key(s) {unknown} in request; allowed: signature_name, instances, inputs")
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances and has_inputs:
        raise RequestError('use either "instances" (row format) or "inputs" (columnar format), not both')
    if not (has_instances or has_inputs):
        raise RequestError('missing "instances" (row format) or "inputs" (columnar format)')
    signature_name = request.get("signature_name", SERVING_DEFAULT)
    if not isinstance(signature_name, str):
        raise RequestError('"signature_name" must be a string')
    data = request["inputs"] if has_inputs else request["instances"]
    return PredictRequest(signature_name or SERVING_DEFAULT, has_inputs, data)


def build_feed(signature: SignatureInfo, request: PredictRequest, max_images: int) -> dict[str, np.ndarray]:
    """Input name -> array of the signature's dtype and shape, within the image limit."""
    if request.columnar:
        feed = _parse_columns(signature, request.data, max_images)
    else:
        feed = _parse_rows(signature, request.data, max_images)
    _check_limits(signature, feed, max_images)
    return feed


def classes_text(num_classes: int | None, class_names: list[str] | None = None) -> str:
    """"0..2 (0 circle, 1 square, 2 triangle)", or "0..9" when the model records no names."""
    if not num_classes:
        return "unknown"
    names = f" ({', '.join(f'{i} {name}' for i, name in enumerate(class_names))})" if class_names else ""
    return f"0..{num_classes - 1}{names}"


def check_labels(feed: dict[str, np.ndarray], gan_metadata: dict | None) -> None:
    """A label outside the model's classes is refused by name before the model runs (the graph's
    own check would answer with an assertion's node name)."""
    num_classes = (gan_metadata or {}).get("num_classes")
    labels = feed.get("labels")
    if not num_classes or labels is None or labels.size == 0 or labels.dtype.kind not in "iu":
        return
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.size:
        raise RequestError(f"label {int(bad.flat[0])} is not a class of this model: labels are "
                           f"{classes_text(num_classes, gan_metadata.get('class_names'))}")


def response_payload(outputs: dict[str, np.ndarray], columnar: bool) -> dict:
    """{"outputs": ...} for the columnar format, {"predictions": ...} for the row format (one
    entry per example: an object of the outputs when there are several)."""
    if columnar:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    batch = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(batch) != 1 or None in batch:
        raise RequestError('outputs do not share a batch dimension; use the columnar format ("inputs")')
    return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(batch.pop())]}


def _parse_rows(signature: SignatureInfo, instances, max_images: int) -> dict:
    if not isinstance(instances, list):
        raise RequestError('"instances" must be a list with one entry per example')
    if not instances:
        raise RequestError('"instances" is empty')
    scalars = [n for n, s in signature.inputs.items() if s.shape == ()]
    if scalars:
        example = {n: (4 if n == "num_images" else 0) for n in scalars}
        raise RequestError(
            f"signature {signature.name!r} has scalar input(s) {scalars}, which the row format "
            f'("instances") cannot express; send the columnar format instead, e.g. '
            f'{{"signature_name": "{signature.name}", "inputs": {json.dumps(example)}}}'
        )
    if len(instances) > max_images:
        raise RequestError(f"too many images: {len(instances)} instances, the limit is {max_images} per request")
    names = list(signature.inputs)
    if len(names) == 1:
        name = names[0]
        if all(isinstance(i, dict) and set(i) == {name} for i in instances):
            values = [i[name] for i in instances]
        else:
            for i in instances:
                if isinstance(i, dict) and set(i) != {"b64"}:
                    raise RequestError(f"instance keys {sorted(i)} do not match the signature's input {names}")
            values = instances
        return {name: _convert(signature, name, values)}
    wanted = set(names)
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise RequestError(f"instance {index}: expected an object with the inputs {names}")
        if set(instance) != wanted:
            raise RequestError(_names_problem(f"instance {index}", set(instance), names))
    return {n: _convert(signature, n, [i[n] for i in instances]) for n in names}


def _parse_columns(signature: SignatureInfo, inputs, max_images: int) -> dict:
    names = list(signature.inputs)
    is_b64_value = isinstance(inputs, dict) and set(inputs) == {"b64"} and "b64" not in names
    if isinstance(inputs, dict) and not is_b64_value:
        if set(inputs) != set(names):
            raise RequestError(_names_problem('"inputs"', set(inputs), names))
        for name in names:  # refuse oversized batches before converting them
            _check_batch(signature, name, inputs[name], max_images)
        return {n: _convert(signature, n, inputs[n]) for n in names}
    if len(names) != 1:
        raise RequestError(f'"inputs" must be an object mapping the input names {names} to values')
    _check_batch(signature, names[0], inputs, max_images)
    return {names[0]: _convert(signature, names[0], inputs)}


def _check_batch(signature: SignatureInfo, name: str, value, max_images: int) -> None:
    spec = signature.inputs[name]
    if spec.shape and spec.shape[0] is None and isinstance(value, (list, np.ndarray)) and len(value) > max_images:
        raise RequestError(
            f'too many images: input "{name}" has a batch of {len(value)}, the limit is {max_images} per request'
        )


def _names_problem(where: str, given: set, names: list) -> str:
    missing = [n for n in names if n not in given]
    extra = sorted(given - set(names))
    parts = []
    if missing:
        parts.append(f"missing input(s) {missing}")
    if extra:
        parts.append(f"unknown input(s) {extra}")
    return f"{where}: {' and '.join(parts)}; the signature takes {names}"


def _convert(signature: SignatureInfo, name: str, value) -> np.ndarray:
    spec = signature.inputs[name]
    array = json_codec.to_array(value, spec.numpy_dtype, name)
    if spec.shape is not None:
        json_codec.check_shape(array, spec.shape, name)
    return array


def _check_limits(signature: SignatureInfo, feed: dict, max_images: int) -> None:
    for name, array in feed.items():
        if array.ndim >= 1:
            _check_batch(signature, name, array, max_images)
        if name == "num_images" and array.ndim == 0 and array.dtype.kind in "iu":
            count = int(array)
            if count < 1:
                raise RequestError(f"num_images must be positive, got {count}")
            if count > max_images:
                raise RequestError(f"too many images: num_images={count}, the limit is {max_images} per request")

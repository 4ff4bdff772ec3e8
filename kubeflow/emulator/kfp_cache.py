"""Open-source KFP's cache key for a task, computed as its backend computes it (KFP 2.5.0:
backend/src/v2/driver/driver.go getFingerPrint, backend/src/v2/cacheutils/cache.go).

The key holds the task's input artifact *names* (ML Metadata ids, not contents), its input
parameter values, its output artifact specs with the URIs wiped, its output parameter types, and
the container's image, command and arguments. It does not see the files a parameter names: a new
``span-2/`` under the same ``input_base`` gives ExampleGen the same key as ``span-1/`` did.

The fingerprint is sha256 of the key as Go writes it: protojson, then re-encoded with encoding/json
(map keys sorted, no spaces, ``<``, ``>``, ``&`` escaped, numbers as float64 in Go's format).
"""
from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal

from google.protobuf import json_format


def cache_key(inputs, outputs, output_parameter_types: dict[str, str], cmd_args: list[str], image: str) -> dict:
    """The CacheKey message as JSON (cachekey.CacheKey in api/v2alpha1/cache_key.proto).

    ``inputs``, ``outputs``: ExecutorInput.Inputs / .Outputs as the driver built them;
    ``output_parameter_types``: name -> ParameterType name, for the task's output parameters."""
    key: dict = {}
    artifact_names = {name: {"artifactNames": [a.name for a in artifact_list.artifacts]}
                      for name, artifact_list in inputs.artifacts.items()}
    parameter_values = {name: json_format.MessageToDict(value) for name, value in inputs.parameter_values.items()}
    output_specs = {}
    for name, artifact_list in outputs.artifacts.items():
        if not artifact_list.artifacts:
            continue
        artifact = artifact_list.artifacts[0]
        wiped = {"name": artifact.name} if artifact.name else {}
        if artifact.HasField("type"):
            wiped["type"] = json_format.MessageToDict(artifact.type)
        if artifact.HasField("metadata"):
            wiped["metadata"] = json_format.MessageToDict(artifact.metadata)
        output_specs[name] = wiped
    output_parameters = {}
    for name in outputs.parameters:
        if name not in output_parameter_types:
            raise ValueError(f"unknown parameter {name!r} found in ExecutorInput_Outputs")
        output_parameters[name] = output_parameter_types[name]
    # protojson leaves out empty maps and empty strings.
    for field, value in (("inputArtifactNames", artifact_names), ("inputParameterValues", parameter_values),
                         ("outputArtifactsSpec", output_specs), ("outputParametersSpec", output_parameters)):
        if value:
            key[field] = value
    container = {"image": image} if image else {}
    if cmd_args:
        container["cmdArgs"] = list(cmd_args)
    key["containerSpec"] = container
    return key


def fingerprint(key: dict) -> str:
    """sha256 hex of the key, encoded as cacheutils.GenerateFingerPrint encodes it."""
    return hashlib.sha256(go_json(key).encode("utf-8")).hexdigest()


def go_json(value) -> str:
    """``json.Marshal`` of what ``json.Unmarshal`` into ``interface{}`` made of a JSON document."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _go_float(number: float) -> str:
    """encoding/json's float64: shortest round-trip digits, 'f' form unless |x| < 1e-6 or >= 1e21."""
    if not math.isfinite(number):
        raise ValueError(f"json: unsupported value: {number}")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    if 1e-6 <= abs(number) < 1e21:
        text = format(Decimal(repr(number)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, exponent = repr(number).split("e")
    return f"{mantissa}e{'-' if int(exponent) < 0 else '+'}{abs(int(exponent))}"

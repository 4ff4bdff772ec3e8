"""One loaded version of a model: its SavedModel, a description of its signatures (names, dtypes,
shapes) for request checking, and the SignatureDefs as TF Serving's metadata API shows them."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tfx_gan.common import layout
from tfx_gan.common.compat import message_to_dict_with_defaults

LOG = logging.getLogger("tfx_gan.server")

SERVING_DEFAULT = "serving_default"


class ModelNotFound(LookupError):
    """Unknown model name, version or signature, or no version loaded yet (HTTP 404)."""


@dataclass(frozen=True)
class TensorSpecInfo:
    name: str
    dtype: str  # numpy dtype name, or "string" for DT_STRING
    shape: tuple | None  # ints, None for unknown dims; None for unknown rank

    @property
    def numpy_dtype(self):
        return "string" if self.dtype == "string" else np.dtype(self.dtype)


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    function: Callable
    inputs: dict  # name -> TensorSpecInfo, in signature order
    outputs: dict  # name -> TensorSpecInfo


@dataclass
class LoadedModel:
    name: str
    version: int
    path: str
    saved_model: Any
    signatures: dict  # name -> SignatureInfo
    signature_def_json: dict  # name -> SignatureDef as TF Serving writes it in JSON
    gan_metadata: dict | None
    loaded_at: float = field(default_factory=time.time)

    def signature(self, name: str) -> SignatureInfo:
        try:
            return self.signatures[name]
        except KeyError:
            raise ModelNotFound(
                f"signature {name!r} not found in model {self.name!r} version {self.version}; "
                f"available: {sorted(self.signatures)}"
            ) from None


def load_model(name: str, version: int, path: str, warmup: bool = True) -> LoadedModel:
    """Loads one version directory with tf.saved_model.load and describes its signatures."""
    import tensorflow as tf

    saved_model = tf.saved_model.load(path)
    signatures = {}
    for sig_name, fn in saved_model.signatures.items():
        _, kwargs = fn.structured_input_signature
        outputs = fn.structured_outputs
        if not isinstance(outputs, dict):
            outputs = {"output_0": outputs}
        signatures[sig_name] = SignatureInfo(
            name=sig_name,
            function=fn,
            inputs={k: _spec_info(k, s) for k, s in kwargs.items()},
            outputs={k: _spec_info(k, s) for k, s in outputs.items()},
        )
    model = LoadedModel(
        name=name,
        version=int(version),
        path=path,
        saved_model=saved_model,
        signatures=signatures,
        signature_def_json=_signature_defs_json(path),
        gan_metadata=layout.read_metadata(path),
    )
    if warmup:
        _warmup(model)
    return model


def _spec_info(name: str, spec) -> TensorSpecInfo:
    import tensorflow as tf

    dtype = "string" if spec.dtype == tf.string else spec.dtype.as_numpy_dtype().dtype.name
    shape = tuple(spec.shape.as_list()) if spec.shape.rank is not None else None
    return TensorSpecInfo(name=name, dtype=dtype, shape=shape)


def _signature_defs_json(path: str) -> dict:
    """The SignatureDefs from saved_model.pb, as the proto3 JSON TF Serving's metadata API uses."""
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    if layout.exists(pb):
        with tf.io.gfile.GFile(pb, "rb") as f:
            saved_model.ParseFromString(f.read())
    else:
        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pbtxt"), "r") as f:
            text_format.Parse(f.read(), saved_model)
    graphs = [g for g in saved_model.meta_graphs if "serve" in g.meta_info_def.tags] or list(saved_model.meta_graphs)
    if not graphs:
        return {}
    return {
        name: message_to_dict_with_defaults(sig, preserving_proto_field_name=True)
        for name, sig in graphs[0].signature_def.items()
        if not name.startswith("__")
    }


def _warmup(model: LoadedModel) -> None:
    """One small call per signature so that the first real request does not pay for it; raises
    when every signature fails."""
    import tensorflow as tf

    tried, failures = 0, []
    for sig in model.signatures.values():
        feed = {}
        for spec in sig.inputs.values():
            if spec.shape is None:
                break
            shape = [1 if d is None else d for d in spec.shape]
            if spec.dtype == "string":
                feed[spec.name] = tf.constant(np.full(shape, b"", dtype=object), dtype=tf.string)
            elif spec.dtype == "bool":
                feed[spec.name] = tf.zeros(shape, tf.bool)
            else:
                fill = 1 if (spec.shape == () and np.dtype(spec.dtype).kind in "iu") else 0
                feed[spec.name] = tf.constant(np.full(shape, fill, dtype=spec.dtype))
        else:
            tried += 1
            try:
                sig.function(**feed)
            except Exception as exc:  # one signature may need inputs zeros cannot stand for
                LOG.debug("warm-up of %s/%s %s failed: %s", model.name, model.version, sig.name, exc)
                failures.append(f"{sig.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    if tried and len(failures) == tried:
        # A version none of whose signatures runs would fail every request: refuse it (the store
        # keeps serving the previous version), as TF Serving refuses a version whose warm-up fails.
        raise RuntimeError(f"warm-up failed for every signature ({'; '.join(failures)})")

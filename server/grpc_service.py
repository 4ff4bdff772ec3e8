"""TF Serving's gRPC API over the serving app's model stores: ``tensorflow.serving.PredictionService``
(Predict, GetModelMetadata) and ``tensorflow.serving.ModelService`` (GetModelStatus), with the
messages of tensorflow_serving/apis/*.proto (the generated stubs of tensorflow-serving-api).

The handlers reuse the REST app's pieces: the same stores (hot reload), the same request checks and
image limit (server/predict_format.py), the same model call (``ServingApp.call_model``) and the same
metrics (server/metrics.py, entrypoint GRPC). A ModelSpec names a version, a version_label or
neither (the newest loaded version). Errors map to
the gRPC status codes TF Serving uses: NOT_FOUND for an unknown model, version or signature,
INVALID_ARGUMENT for a bad request, RESOURCE_EXHAUSTED for one over the limits, DEADLINE_EXCEEDED
when the client's deadline passed before the model was called, INTERNAL for a failing model.

Bounded like the REST side: a request tensor's declared size (shape x dtype) is checked against the
request-size limit before anything is allocated (``tf.make_ndarray`` broadcasts a single value to
the declared shape, so 40 bytes on the wire could otherwise ask for gigabytes), and at most
``max_concurrent_rpcs`` calls run or wait at once (more get RESOURCE_EXHAUSTED from gRPC itself).
"""
from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tfx_gan.server import predict_format, v2_grpc_service
from tfx_gan.server.app import Response, ServingApp, unknown_model_message
from tfx_gan.server.http_server import DEFAULT_MAX_CONNECTIONS
from tfx_gan.server.grpc_status import HTTP_TO_GRPC, Refused, declared_bytes
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import ModelNotFound

LOG = logging.getLogger("tfx_gan.server")




# The dtypes a request tensor may have, with their size in bytes; the others (complex, quantized,
# resource, variant) no signature takes. DT_STRING's elements are already in the message.
_DTYPE_BYTES = {types_pb2.DT_FLOAT: 4, types_pb2.DT_DOUBLE: 8, types_pb2.DT_HALF: 2, types_pb2.DT_BFLOAT16: 2,
                types_pb2.DT_INT8: 1, types_pb2.DT_UINT8: 1, types_pb2.DT_INT16: 2, types_pb2.DT_UINT16: 2,
                types_pb2.DT_INT32: 4, types_pb2.DT_UINT32: 4, types_pb2.DT_INT64: 8, types_pb2.DT_UINT64: 8,
                types_pb2.DT_BOOL: 1, types_pb2.DT_STRING: 0}


def tensor_from_proto(name: str, proto, max_bytes: int):
    """The request tensor ``proto`` as an array, once its declared shape and dtype are known to be
    within ``max_bytes``; RequestError (INVALID_ARGUMENT) or Refused (RESOURCE_EXHAUSTED) otherwise."""
    import tensorflow as tf

    if proto.dtype not in _DTYPE_BYTES:
        raise RequestError(f"input '{name}': dtype {types_pb2.DataType.Name(proto.dtype)} is not supported "
                           f"(numeric, bool or string tensors)")
    if proto.tensor_shape.unknown_rank:
        raise RequestError(f"input '{name}': the tensor's shape has an unknown rank")
    dims = [dim.size for dim in proto.tensor_shape.dim]
    declared = declared_bytes(name, dims, types_pb2.DataType.Name(proto.dtype), _DTYPE_BYTES[proto.dtype], max_bytes)
    if proto.tensor_content and len(proto.tensor_content) != declared:
        raise RequestError(f"input '{name}': tensor_content has {len(proto.tensor_content):,} bytes; "
                           f"shape {dims} needs {declared:,}")
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as exc:  # e.g. more values than the shape holds
        raise RequestError(f"input '{name}': {exc}") from None


def _model_of(app: ServingApp, model_spec):
    """(store, loaded model) a ModelSpec names: by version, by version_label, or the newest."""
    store = app.stores.get(model_spec.name)
    version = model_spec.version.value if model_spec.WhichOneof("version_choice") == "version" else None
    if store is None:
        raise Refused(grpc.StatusCode.NOT_FOUND, unknown_model_message(model_spec.name, version))
    label = model_spec.version_label if model_spec.WhichOneof("version_choice") == "version_label" else None
    return store, store.get(version, label)


def _answer(api: str):
    """Runs a handler, turning the project's refusals into the gRPC status TF Serving would send,
    and counts the call in the server's metrics."""
    def decorate(handler):
        def wrapped(self, request, context):
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                return handler(self, request, context)
            except Refused as exc:
                code, message = exc.code, str(exc)
            except ModelNotFound as exc:
                code, message = grpc.StatusCode.NOT_FOUND, str(exc)
            except RequestError as exc:
                code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
            except Exception:
                code = grpc.StatusCode.UNKNOWN  # what grpc answers for an exception it is not told about
                raise
            finally:
                if code != grpc.StatusCode.OK:  # every refusal, named in one line
                    LOG.info("gRPC %s %s: %s %s", api, request.model_spec.name[:100], code.name,
                             (message if code != grpc.StatusCode.UNKNOWN else "")[:300])
                if self.app.metrics is not None and request.model_spec.name in self.app.stores:
                    self.app.metrics.observe(request.model_spec.name, api, "GRPC", code.name,
                                             time.perf_counter() - started)
            context.abort(code, message)
        wrapped.__name__ = handler.__name__
        return wrapped
    return decorate


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, app: ServingApp):
        self.app = app

    @_answer("predict")
    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        import tensorflow as tf

        _, model = _model_of(self.app, request.model_spec)
        signature = model.signature(request.model_spec.signature_name or "serving_default")
        inputs = {name: tensor_from_proto(name, proto, self.app.max_body_bytes) for name, proto in request.inputs.items()}
        feed = predict_format.build_feed(signature, predict_format.PredictRequest(signature.name, True, inputs),
                                         self.app.max_images)
        predict_format.check_labels(feed, model.gan_metadata)
        if context.time_remaining() is not None and context.time_remaining() <= 0:
            raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "the client's deadline passed before the model was called")
        outputs = self.app.call_model(model, signature, feed)
        if isinstance(outputs, Response):  # the model refused the input or failed
            raise Refused(HTTP_TO_GRPC.get(outputs.status, grpc.StatusCode.INTERNAL), outputs.payload["error"])
        wanted = list(request.output_filter) or list(outputs)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise RequestError(f"output_filter: unknown output(s) {unknown}; the signature has {sorted(outputs)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = model.name, signature.name
        response.model_spec.version.value = model.version
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    @_answer("metadata")
    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        unsupported = sorted(set(request.metadata_field) - {"signature_def"})
        if unsupported:
            raise RequestError(f"metadata_field {unsupported} is not supported: only signature_def")
        _, model = _model_of(self.app, request.model_spec)
        signatures = json_format.ParseDict({"signature_def": model.signature_def_json},
                                           get_model_metadata_pb2.SignatureDefMap())
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, app: ServingApp):
        self.app = app

    @_answer("status")
    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        store, model = _model_of(self.app, request.model_spec)
        asked = request.model_spec.WhichOneof("version_choice") is not None  # else: every loaded version
        response = get_model_status_pb2.GetModelStatusResponse()
        for entry in store.status(model.version if asked else None):
            status = response.model_version_status.add(version=int(entry["version"]))
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(entry["state"])
        return response


def start_grpc_server(app: ServingApp, host: str, port: int, max_workers: int = 16,
                      max_concurrent_rpcs: int = DEFAULT_MAX_CONNECTIONS) -> tuple[grpc.Server, int]:
    """Serves ``app``'s stores over gRPC on host:port (0: a free port); returns (server, bound port).
    At most ``max_concurrent_rpcs`` calls run or queue at once, the REST side's connection cap."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
                         maximum_concurrent_rpcs=max_concurrent_rpcs,
                         options=[("grpc.max_receive_message_length", app.max_body_bytes),
                                  ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(app), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(app), server)
    v2_grpc_service.add_to_server(app, server)  # KServe V2's GRPCInferenceService on the same port
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC")
    server.start()
    LOG.info("gRPC (TF Serving's PredictionService, ModelService; KServe V2's GRPCInferenceService) on %s:%d",
             host, bound)
    return server, bound

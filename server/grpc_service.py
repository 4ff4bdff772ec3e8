"""TF Serving's gRPC API over the serving app's model stores: ``tensorflow.serving.PredictionService``
(Predict, GetModelMetadata) and ``tensorflow.serving.ModelService`` (GetModelStatus), with the
messages of tensorflow_serving/apis/*.proto (the generated stubs of tensorflow-serving-api).

The handlers reuse the REST app's pieces: the same stores (hot reload), the same request checks and
image limit (server/predict_format.py), the same model call (``ServingApp._call``). Errors map to
the gRPC status codes TF Serving uses: NOT_FOUND for an unknown model, version or signature,
INVALID_ARGUMENT for a bad request, INTERNAL for a failing model.
"""
from __future__ import annotations

import logging
from concurrent import futures

import grpc
from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tfx_gan.server import predict_format
from tfx_gan.server.app import Response, ServingApp, unknown_model_message
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import ModelNotFound

LOG = logging.getLogger("tfx_gan.server")

_HTTP_TO_GRPC = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
                 413: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _store_and_version(app: ServingApp, model_spec):
    """The store a ModelSpec names and its version (None: the newest); version labels are not served."""
    store = app.stores.get(model_spec.name)
    version = model_spec.version.value if model_spec.HasField("version") else None
    if store is None:
        raise _Refused(grpc.StatusCode.NOT_FOUND, unknown_model_message(model_spec.name, version))
    if model_spec.version_label:
        raise _Refused(grpc.StatusCode.UNIMPLEMENTED, "version_label is not supported yet: give a version or none")
    return store, version


def _answer(handler):
    """Runs a handler, turning the project's refusals into the gRPC status TF Serving would send."""
    def wrapped(self, request, context):
        try:
            return handler(self, request, context)
        except _Refused as exc:
            context.abort(exc.code, str(exc))
        except ModelNotFound as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except RequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    wrapped.__name__ = handler.__name__
    return wrapped


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, app: ServingApp):
        self.app = app

    @_answer
    def Predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        import tensorflow as tf

        store, version = _store_and_version(self.app, request.model_spec)
        model = store.get(version)
        signature = model.signature(request.model_spec.signature_name or "serving_default")
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        feed = predict_format.build_feed(signature, predict_format.PredictRequest(signature.name, True, inputs),
                                         self.app.max_images)
        predict_format.check_labels(feed, model.gan_metadata)
        outputs = self.app._call(model, signature, feed)
        if isinstance(outputs, Response):  # the model refused the input or failed
            raise _Refused(_HTTP_TO_GRPC.get(outputs.status, grpc.StatusCode.INTERNAL), outputs.payload["error"])
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

    @_answer
    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        unsupported = sorted(set(request.metadata_field) - {"signature_def"})
        if unsupported:
            raise RequestError(f"metadata_field {unsupported} is not supported: only signature_def")
        store, version = _store_and_version(self.app, request.model_spec)
        model = store.get(version)
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

    @_answer
    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        store, version = _store_and_version(self.app, request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for entry in store.status(version):
            status = response.model_version_status.add(version=int(entry["version"]))
            status.state = get_model_status_pb2.ModelVersionStatus.State.Value(entry["state"])
        return response


def start_grpc_server(app: ServingApp, host: str, port: int, max_workers: int = 16) -> tuple[grpc.Server, int]:
    """Serves ``app``'s stores over gRPC on host:port (0: a free port); returns (server, bound port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
                         options=[("grpc.max_receive_message_length", app.max_body_bytes),
                                  ("grpc.so_reuseport", 0)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(app), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(app), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port} for gRPC")
    server.start()
    LOG.info("gRPC (TF Serving's PredictionService, ModelService) on %s:%d", host, bound)
    return server, bound

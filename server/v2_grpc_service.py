"""KServe's Open Inference Protocol (V2) over gRPC: ``inference.GRPCInferenceService`` (ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer) beside TF Serving's services
on the same port, over the serving app's model stores.

The messages and service stubs are those Triton's client package generates (tritonclient.grpc
service_pb2; Triton's service is a superset of KServe's grpc_predict_v2.proto with the same package,
names and field numbers), so KServe's and Triton's gRPC clients talk to it as they do to those
servers. The methods reuse the REST side: model metadata and the infer call go through
server/v2_format.py and ``ServingApp.v2_call`` (the same checks, limits and model call). Tensors
come in ``contents`` (typed repeated fields) or ``raw_input_contents`` (one bytes entry per input,
row-major); outputs go back in ``raw_output_contents``, as Triton answers. Errors: NOT_FOUND for an
unknown model or version, INVALID_ARGUMENT for a bad request, RESOURCE_EXHAUSTED for a tensor
declared larger than the request limit (checked before anything is allocated), INTERNAL for a
failing model.
"""
from __future__ import annotations

import logging
import math

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tfx_gan.server import v2_format
from tfx_gan.server.app import SERVER_NAME, Response, Route, ServingApp, _package_version, unknown_model_message
from tfx_gan.server.grpc_status import HTTP_TO_GRPC, Refused, declared_bytes
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import ModelNotFound

LOG = logging.getLogger("tfx_gan.server")

# InferTensorContents' field for each V2 datatype (the narrower integers travel widened, as in KServe)
_CONTENTS_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
                   "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
                   "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
                   "FP64": "fp64_contents", "BYTES": "bytes_contents"}


def _store(app: ServingApp, name: str, version: str):
    store = app.stores.get(name)
    number = None
    if version:
        if not version.isascii() or not version.isdigit():
            raise RequestError(f"model_version {version[:40]!r} is not a version number")
        number = int(version)
    if store is None:
        raise Refused(grpc.StatusCode.NOT_FOUND, unknown_model_message(name, number))
    return store, number


def _input_array(tensor, raw: bytes | None, max_bytes: int) -> np.ndarray:
    """One InferInputTensor as an array of its datatype and shape, its declared size checked first."""
    name, datatype = tensor.name, tensor.datatype
    if datatype not in v2_format.DATATYPES:
        raise RequestError(f'input "{name}": unknown datatype {datatype[:40]!r}; use one of {sorted(v2_format.DATATYPES)}')
    shape = list(tensor.shape)
    declared_bytes(name, shape, datatype, v2_format.item_bytes(datatype), max_bytes)
    elements = math.prod(shape)
    if raw is not None:
        array = v2_format.tensor_from_bytes(name, raw, datatype, elements)
    elif datatype == "FP16":
        raise RequestError(f'input "{name}": FP16 tensors must come in raw_input_contents')
    else:
        values = getattr(tensor.contents, _CONTENTS_FIELD[datatype])
        if len(values) != elements:
            raise RequestError(f'input "{name}": shape {shape} holds {elements} elements, contents has {len(values)}')
        dtype = object if datatype == "BYTES" else v2_format.numpy_dtype(datatype)
        array = np.array(list(values), dtype=dtype)
    if array.size != elements:
        raise RequestError(f'input "{name}": shape {shape} holds {elements} elements, data has {array.size}')
    return array.reshape(shape)


class GRPCInferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, app: ServingApp):
        self.app = app

    def _abort(self, context, exc: Exception):
        LOG.info("gRPC V2 refused: %s: %s", type(exc).__name__, str(exc)[:300])  # every refusal, named in one line
        if isinstance(exc, Refused):
            context.abort(exc.code, str(exc))
        if isinstance(exc, ModelNotFound):
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=self.app.v2_ready(Route("v2_ready")).status == 200)

    def ModelReady(self, request, context):
        try:
            store, version = _store(self.app, request.name, request.version)
            store.get(version)
            return service_pb2.ModelReadyResponse(ready=True)
        except ModelNotFound:
            return service_pb2.ModelReadyResponse(ready=False)
        except (Refused, RequestError) as exc:
            self._abort(context, exc)

    def ServerMetadata(self, request, context):
        return service_pb2.ServerMetadataResponse(name=SERVER_NAME, version=_package_version(), extensions=[])

    def ModelMetadata(self, request, context):
        try:
            store, version = _store(self.app, request.name, request.version)
            metadata = v2_format.model_metadata(store.get(version), store.loaded_versions())
        except (Refused, RequestError, ModelNotFound) as exc:
            self._abort(context, exc)
        return service_pb2.ModelMetadataResponse(
            name=metadata["name"], versions=metadata["versions"], platform=metadata["platform"],
            inputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["inputs"]],
            outputs=[service_pb2.ModelMetadataResponse.TensorMetadata(**t) for t in metadata["outputs"]])

    def ModelInfer(self, request, context):
        try:
            store, version = _store(self.app, request.model_name, request.model_version)
            raw = list(request.raw_input_contents)
            if raw and len(raw) != len(request.inputs):
                raise RequestError(f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs")
            inputs = {}
            for index, tensor in enumerate(request.inputs):
                if tensor.name in inputs:
                    raise RequestError(f'input "{tensor.name}" given twice')
                inputs[tensor.name] = _input_array(tensor, raw[index] if raw else None, self.app.max_body_bytes)
            signature = request.parameters["signature_name"].string_param if "signature_name" in request.parameters \
                else v2_format.SERVING_DEFAULT
            infer = v2_format.InferRequest(request.id or None, signature, inputs, [o.name for o in request.outputs],
                                           all_binary=True)
            called = self.app.v2_call(Route("v2_infer", store, version), infer)
            if isinstance(called, Response):
                raise Refused(HTTP_TO_GRPC.get(called.status, grpc.StatusCode.INTERNAL), called.payload["error"])
            model, outputs = called
            payload, binary = v2_format.infer_response(model, infer, outputs)
        except (Refused, RequestError, ModelNotFound) as exc:
            self._abort(context, exc)
        response = service_pb2.ModelInferResponse(model_name=payload["model_name"],
                                                  model_version=payload["model_version"], id=request.id)
        for tensor in payload["outputs"]:
            response.outputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        # one raw entry per output, in order: infer_response laid them out back to back
        at = 0
        for tensor in payload["outputs"]:
            size = tensor["parameters"]["binary_data_size"]
            response.raw_output_contents.append(binary[at:at + size])
            at += size
        return response


def add_to_server(app: ServingApp, server: grpc.Server) -> None:
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(GRPCInferenceService(app), server)

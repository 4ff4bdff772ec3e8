"""The gRPC API, driven by TF Serving's own generated Python client (tensorflow_serving.apis
*_pb2_grpc stubs over a real channel on loopback), against the same stores as the REST app."""
import json
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc)

from tfx_gan.server.app import ServingApp
from tfx_gan.server.grpc_service import start_grpc_server

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

VERSION = 1700000001


@pytest.fixture(scope="module")
def served(tiny_serving_model, tmp_path_factory):
    push = tmp_path_factory.mktemp("grpc") / "push"
    shutil.copytree(tiny_serving_model, push / str(VERSION))
    app = ServingApp({"gan": str(push)}, max_images=8, settle_s=0, poll_interval_s=0.2)
    app.load_initial()
    server, port = start_grpc_server(app, "127.0.0.1", 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield app, prediction_service_pb2_grpc.PredictionServiceStub(channel), model_service_pb2_grpc.ModelServiceStub(channel)
    channel.close()
    server.stop(None)


def predict_request(latent: np.ndarray, name: str = "gan") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["latent"].CopyFrom(tf.make_tensor_proto(latent))
    return request


def test_predict_over_grpc_returns_what_rest_returns_for_the_same_latent(served):
    app, predictions, _ = served
    latent = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    response = predictions.Predict(predict_request(latent), timeout=60)
    assert response.model_spec.name == "gan" and response.model_spec.version.value == VERSION
    route = app.route("POST", "/v1/models/gan:predict")
    rest = app.predict(route, json.dumps({"inputs": {"latent": latent.tolist()}}).encode())
    assert rest.status == 200
    rest_outputs = rest.payload["outputs"]
    if not isinstance(rest_outputs, dict):  # one output: TF Serving's REST answer is its value alone
        rest_outputs = {name: rest_outputs for name in response.outputs}
    assert set(response.outputs) == set(rest_outputs)
    for name, proto in response.outputs.items():
        grpc_value = tf.make_ndarray(proto)
        if grpc_value.dtype == object:  # PNG bytes: REST sends them as {"b64": ...}
            assert len(grpc_value) == 3 and all(v.startswith(b"\x89PNG") for v in grpc_value)
        else:
            assert grpc_value.shape[0] == 3
            np.testing.assert_allclose(grpc_value, np.asarray(rest_outputs[name], dtype=grpc_value.dtype), atol=1e-6)


def test_metadata_and_status_over_grpc(served):
    _, predictions, models = served
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "gan"
    metadata = predictions.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signatures)
    assert "latent" in signatures.signature_def["serving_default"].inputs
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "gan"
    (status,) = models.GetModelStatus(status_request, timeout=30).model_version_status
    assert status.version == VERSION and status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize("change, code, fragment", [
    (lambda r: setattr(r.model_spec, "name", "nope"), grpc.StatusCode.NOT_FOUND, "unknown model name"),
    (lambda r: r.model_spec.version.__setattr__("value", 5), grpc.StatusCode.NOT_FOUND, "5"),
    (lambda r: setattr(r.model_spec, "signature_name", "nope"), grpc.StatusCode.NOT_FOUND, "signature 'nope'"),
    (lambda r: r.inputs["latent"].CopyFrom(tf.make_tensor_proto(np.zeros((9, 4), np.float32))),
     grpc.StatusCode.INVALID_ARGUMENT, "too many images"),
    (lambda r: r.inputs["extra"].CopyFrom(tf.make_tensor_proto(np.zeros(1, np.float32))),
     grpc.StatusCode.INVALID_ARGUMENT, "unknown input(s) ['extra']"),
    (lambda r: r.output_filter.append("nope"), grpc.StatusCode.INVALID_ARGUMENT, "output_filter"),
    (lambda r: r.inputs["latent"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 4), np.complex64))),
     grpc.StatusCode.INVALID_ARGUMENT, "input 'latent': dtype DT_COMPLEX64 is not supported"),
    (lambda r: r.inputs["latent"].tensor_shape.dim[0].__setattr__("size", 3),  # 8 floats' bytes for 12
     grpc.StatusCode.INVALID_ARGUMENT, "input 'latent': tensor_content has 32 bytes; shape [3, 4] needs 48"),
    (lambda r: r.inputs["latent"].tensor_shape.dim[0].__setattr__("size", -2),
     grpc.StatusCode.INVALID_ARGUMENT, "input 'latent': shape [-2, 4] has a negative dimension"),
])
def test_bad_grpc_requests_get_tf_servings_status_codes(served, change, code, fragment, caplog):
    caplog.set_level("INFO", logger="tfx_gan.server")
    _, predictions, _ = served
    request = predict_request(np.zeros((2, 4), np.float32))
    change(request)
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request, timeout=30)
    assert raised.value.code() == code and fragment in raised.value.details(), raised.value.details()
    assert any("gRPC predict" in r.getMessage() and code.name in r.getMessage() and fragment in r.getMessage()
               for r in caplog.records)  # the server's log names it in one line


def test_a_tiny_request_declaring_a_huge_tensor_is_refused_before_anything_is_allocated(served):
    """40 bytes on the wire that declare a [3000, 100000] float tensor (1.2 GB once broadcast from its
    one value): RESOURCE_EXHAUSTED, and this process (the server runs in it) allocates nothing like it.
    ru_maxrss is the peak RSS: a transient 1.2 GB allocation would raise it by about that much."""
    import resource

    _, predictions, _ = served
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gan"
    request.inputs["latent"].CopyFrom(tf.make_tensor_proto(1.0, dtype=tf.float32, shape=[3000, 100000]))
    assert request.ByteSize() < 100
    peak_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.details() == ("input 'latent': shape [3000, 100000] of DT_FLOAT is 1,200,000,000 bytes, "
                                      "over the request limit of 8,388,608")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kb < 50 * 1024


def test_a_call_whose_deadline_passed_is_not_run(served, monkeypatch):
    """The model is not called for a client that has stopped waiting: the request's checks are made
    slow (0.3 s) against a 0.05 s deadline, and the handler then skips the model."""
    import time

    from tfx_gan.server import predict_format

    app, predictions, _ = served
    calls, checked = [], []
    monkeypatch.setattr(app, "call_model", lambda *args: calls.append(args))
    monkeypatch.setattr(predict_format, "check_labels", lambda *args: (time.sleep(0.3), checked.append(1)))
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(predict_request(np.zeros((2, 4), np.float32)), timeout=0.05)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 5
    while not checked and time.monotonic() < deadline:  # the server's handler is still sleeping
        time.sleep(0.05)
    time.sleep(0.1)
    assert checked and not calls

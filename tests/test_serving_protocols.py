"""What a user moving between this server and TF Serving or KServe relies on: version policies and
labels from TF Serving's model config file (REST label paths, gRPC version_label, through TF
Serving's own generated client), KServe's V2 health/metadata/infer, Prometheus metrics (read with
prometheus_client's own parser), case-insensitive paths, and TF Serving flags that are accepted
with a warning. Everything runs a real server on loopback."""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from tfx_gan.server import server as server_module
from tfx_gan.server.grpc_service import start_grpc_server
from tfx_gan.server.http_server import start_server
from tfx_gan.server.model_config import parse_model_config

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

LATENT = 4  # tiny_serving_model's latent size
MODEL_CONFIG = """
model_config_list {
  config {
    name: 'gan'
    base_path: 'push'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
  config { name: 'newest2' base_path: 'push' model_version_policy { latest { num_versions: 2 } } }
}
"""


@pytest.fixture(scope="module")
def served(tiny_serving_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("protocols")
    for version in (1, 2, 3):
        shutil.copytree(tiny_serving_model, root / "push" / str(version))
    (root / "models.config").write_text(MODEL_CONFIG)
    server = start_server(parse_model_config(str(root / "models.config")), max_images=8, settle_s=0, poll_interval_s=0)
    grpc_server, grpc_port = start_grpc_server(server.app, "127.0.0.1", 0)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    yield {"server": server, "root": root, "predictions": prediction_service_pb2_grpc.PredictionServiceStub(channel),
           "models": model_service_pb2_grpc.ModelServiceStub(channel), "grpc_port": grpc_port}
    channel.close()
    grpc_server.stop(None)
    server.close()


def request(server, method, path, body=None):
    """(status, headers, body) of one request; JSON bodies parsed."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        response = conn.getresponse()
        data = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        if headers.get("content-type", "").startswith("application/json") and data:
            data = json.loads(data)
        return response.status, headers, data
    finally:
        conn.close()


def latent(n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype(np.float32)


def grpc_predict(served, **spec):
    message = predict_pb2.PredictRequest()
    message.model_spec.name = spec.pop("name", "gan")
    for key, value in spec.items():
        if key == "version":
            message.model_spec.version.value = value
        else:
            setattr(message.model_spec, key, value)
    message.inputs["latent"].CopyFrom(tf.make_tensor_proto(latent()))
    return served["predictions"].Predict(message, timeout=60)


# --------------------------------------------------------------------------- versions and labels
def test_version_policy_and_labels_over_rest(served):
    server = served["server"]
    status, _, body = request(server, "GET", "/v1/models/gan")
    assert status == 200 and [s["version"] for s in body["model_version_status"]] == ["2", "1"]  # specific [1, 2]
    status, _, body = request(server, "GET", "/v1/models/newest2")
    assert [s["version"] for s in body["model_version_status"]] == ["3", "2"]  # latest 2
    for path, version in (("/v1/models/gan/labels/stable:predict", "1"), ("/v1/models/gan/labels/canary:predict", "2"),
                          ("/v1/models/gan:predict", "2"), ("/v1/models/gan/versions/1:predict", "1")):
        status, headers, body = request(server, "POST", path, {"inputs": {"latent": latent().tolist()}})
        assert status == 200 and headers["x-model-version"] == version, (path, body)
    status, _, body = request(server, "GET", "/v1/models/gan/labels/stable/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    status, _, body = request(server, "GET", "/v1/models/gan/labels/canary")
    assert [s["version"] for s in body["model_version_status"]] == ["2"]
    status, _, body = request(server, "POST", "/v1/models/gan/labels/nightly:predict", {"inputs": {"latent": [[0] * 4]}})
    assert status == 404 and "Unrecognized servable version label: nightly" in body["error"]
    assert "['canary', 'stable']" in body["error"]
    status, _, body = request(server, "GET", "/v1/models/gan/versions/3")  # on disk, outside the policy
    assert status == 404 and "version 3 is not loaded (serving [2, 1])" in body["error"]


def test_version_labels_over_tf_servings_grpc_client(served):
    assert grpc_predict(served, version_label="stable").model_spec.version.value == 1
    assert grpc_predict(served, version_label="canary").model_spec.version.value == 2
    assert grpc_predict(served).model_spec.version.value == 2
    assert grpc_predict(served, name="newest2").model_spec.version.value == 3
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "gan"
    versions = [s.version for s in served["models"].GetModelStatus(status_request, timeout=30).model_version_status]
    assert versions == [2, 1]
    status_request.model_spec.version_label = "stable"
    (status,) = served["models"].GetModelStatus(status_request, timeout=30).model_version_status
    assert status.version == 1 and status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    with pytest.raises(grpc.RpcError) as raised:
        grpc_predict(served, version_label="nightly")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "version label: nightly" in raised.value.details()


def test_latest_n_policy_follows_pushes_and_removals(served, tiny_serving_model):
    root, store = served["root"], served["server"].app.stores["newest2"]
    shutil.copytree(tiny_serving_model, root / "push" / "4")
    try:
        assert store.poll() and store.loaded_versions() == [4, 3]  # 2 unloaded: the policy keeps two
        assert served["server"].app.stores["gan"].loaded_versions() == [2, 1]  # specific: unmoved by 4
    finally:
        shutil.rmtree(root / "push" / "4")
    assert store.poll() and store.loaded_versions() == [3, 2]  # 4 removed: back to the newest two


def test_paths_match_in_any_case_like_tf_serving_but_names_do_not(served):
    server = served["server"]
    status, _, body = request(server, "GET", "/V1/Models/gan/Versions/1/METADATA")
    assert status == 200 and body["model_spec"]["version"] == "1"
    status, headers, _ = request(server, "POST", "/v1/MODELS/gan/LABELS/canary:Predict", {"instances": latent().tolist()})
    assert status == 200 and headers["x-model-version"] == "2"
    status, _, body = request(server, "GET", "/v1/models/GAN")
    assert status == 404 and "unknown model name" in body["error"]
    status, _, body = request(server, "GET", "/v1/models/gan/labels/STABLE")
    assert status == 404 and "label: STABLE" in body["error"]


# --------------------------------------------------------------------------- KServe V2
def test_kserve_v2_health_and_metadata(served):
    server = served["server"]
    assert request(server, "GET", "/v2/health/live")[::2] == (200, {"live": True})
    assert request(server, "GET", "/v2/health/ready")[::2] == (200, {"ready": True})
    status, _, body = request(server, "GET", "/v2")
    assert status == 200 and body["name"] == "tfx_gan" and body["extensions"] == []
    status, _, body = request(server, "GET", "/v2/models/gan")
    assert status == 200 and body["versions"] == ["2", "1"] and body["platform"] == "tensorflow_savedmodel"
    assert body["inputs"] == [{"name": "latent", "datatype": "FP32", "shape": [-1, LATENT]}]
    assert body["outputs"][0]["datatype"] == "FP32" and body["outputs"][0]["shape"] == [-1, 28, 28, 1]
    assert request(server, "GET", "/v2/models/gan/versions/1/ready")[::2] == (200, {"name": "gan", "version": "1", "ready": True})
    status, _, body = request(server, "GET", "/v2/models/gan/versions/3/ready")
    assert status == 503 and body["ready"] is False
    assert request(server, "GET", "/v2/models/nope/ready")[0] == 404


def test_kserve_v2_infer_answers_what_tf_servings_predict_answers(served):
    server = served["server"]
    z = latent(3, seed=5)
    # an Open Inference Protocol request as KServe's clients send it: flat row-major data
    infer = {"id": "req-1", "inputs": [{"name": "latent", "shape": [3, LATENT], "datatype": "FP32",
                                        "data": z.ravel().tolist()}]}
    status, _, body = request(server, "POST", "/v2/models/gan/versions/1/infer", infer)
    assert status == 200, body
    assert body["model_name"] == "gan" and body["model_version"] == "1" and body["id"] == "req-1"
    (output,) = body["outputs"]
    assert output["datatype"] == "FP32" and output["shape"] == [3, 28, 28, 1]
    images = np.asarray(output["data"], np.float32).reshape(output["shape"])
    status, _, rest = request(server, "POST", "/v1/models/gan/versions/1:predict", {"inputs": {"latent": z.tolist()}})
    np.testing.assert_array_equal(images, np.asarray(rest["outputs"], np.float32))
    # another signature by parameter; BYTES outputs are base64 text
    png = {"parameters": {"signature_name": "generate_png"},
           "inputs": [{"name": "num_images", "shape": [], "datatype": "INT32", "data": [2]},
                      {"name": "seed", "shape": [], "datatype": "INT32", "data": [7]}]}
    status, _, body = request(server, "POST", "/v2/models/gan/infer", png)
    assert status == 200, body
    (output,) = [o for o in body["outputs"] if o["datatype"] == "BYTES"]
    assert output["parameters"] == {"content_type": "base64"} and output["shape"] == [2]
    assert all(base64.b64decode(v).startswith(b"\x89PNG") for v in output["data"])


def test_tritons_http_client_speaks_the_binary_data_extension(served):
    """Triton's Python HTTP client (tritonclient.http), a real V2 client: its default request puts
    the tensor in binary after the JSON header and asks for binary outputs; the same latent gives
    the same images as TF Serving's predict. BYTES outputs (PNGs) come back raw."""
    import tritonclient.http as triton_http

    server = served["server"]
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("gan", "1")
        assert client.get_model_metadata("gan")["inputs"][0]["name"] == "latent"
        z = latent(3, seed=9)
        tensor = triton_http.InferInput("latent", [3, LATENT], "FP32")
        tensor.set_data_from_numpy(z)  # binary_data=True: the extension
        result = client.infer("gan", [tensor], model_version="1")
        (output,) = result.get_response()["outputs"]
        images = result.as_numpy(output["name"])
        assert output["parameters"]["binary_data_size"] == 3 * 28 * 28 * 4 and images.shape == (3, 28, 28, 1)
        status, _, rest = request(server, "POST", "/v1/models/gan/versions/1:predict", {"inputs": {"latent": z.tolist()}})
        np.testing.assert_array_equal(images, np.asarray(rest["outputs"], np.float32))
        # JSON inputs, one output asked for as JSON: the same numbers
        tensor.set_data_from_numpy(z, binary_data=False)
        as_json = client.infer("gan", [tensor], model_version="1",
                               outputs=[triton_http.InferRequestedOutput(output["name"], binary_data=False)])
        np.testing.assert_array_equal(as_json.as_numpy(output["name"]), images)
        count = triton_http.InferInput("num_images", [], "INT32")
        count.set_data_from_numpy(np.array(2, np.int32))
        seed = triton_http.InferInput("seed", [], "INT32")
        seed.set_data_from_numpy(np.array(7, np.int32))
        pngs = client.infer("gan", [count, seed], model_version="1", parameters={"signature_name": "generate_png"})
        (png_output,) = [o["name"] for o in pngs.get_response()["outputs"] if o["datatype"] == "BYTES"]
        assert all(v.startswith(b"\x89PNG") for v in pngs.as_numpy(png_output).ravel())
    finally:
        client.close()


@pytest.mark.parametrize("body, header, fragment", [
    (b'{"inputs": [{"name": "latent", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}'
     + b"\0" * 12, None, "binary_data_size 16 does not fit the 12 bytes"),
    (b'{"inputs": [{"name": "latent", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 12}}]}'
     + b"\0" * 12, None, "12 bytes of FP32 data; the shape needs 16"),
    (b'{"inputs": [{"name": "latent", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}'
     + b"\0" * 20, None, "4 bytes of binary data follow the last input's"),
    (b"{}", "12x", "invalid Inference-Header-Content-Length"),
    (b"{}", "99", "Inference-Header-Content-Length 99 is more than the body's 2 bytes"),
])
def test_bad_binary_v2_requests_are_400s_that_name_the_problem(served, body, header, fragment):
    server = served["server"]
    json_part = body.split(b"}]}", 1)[0] + b"}]}" if b"}]}" in body else body
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request("POST", "/v2/models/gan/versions/1/infer", body=body,
                     headers={"Inference-Header-Content-Length": header or str(len(json_part))})
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 400 and fragment in answer["error"], answer


def test_tritons_grpc_client_speaks_the_v2_grpc_service(served):
    """Triton's Python gRPC client (tritonclient.grpc) against the GRPCInferenceService on the gRPC
    port: live, ready, metadata, and infer with raw_input_contents, the same images as REST."""
    import tritonclient.grpc as triton_grpc
    from tritonclient.utils import InferenceServerException

    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{served['grpc_port']}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("gan", "1") and not client.is_model_ready("gan", "3")
        assert client.get_server_metadata().name == "tfx_gan"
        metadata = client.get_model_metadata("gan", "1")
        assert metadata.versions == ["2", "1"] and metadata.inputs[0].name == "latent"
        assert list(metadata.inputs[0].shape) == [-1, LATENT] and metadata.inputs[0].datatype == "FP32"
        z = latent(2, seed=3)
        tensor = triton_grpc.InferInput("latent", [2, LATENT], "FP32")
        tensor.set_data_from_numpy(z)  # raw_input_contents
        result = client.infer("gan", [tensor], model_version="1")
        (output,) = result.get_response().outputs
        images = result.as_numpy(output.name)
        status, _, rest = request(served["server"], "POST", "/v1/models/gan/versions/1:predict",
                                  {"inputs": {"latent": z.tolist()}})
        np.testing.assert_array_equal(images, np.asarray(rest["outputs"], np.float32))
        with pytest.raises(InferenceServerException, match="unknown input"):
            bad = triton_grpc.InferInput("z", [2, LATENT], "FP32")
            bad.set_data_from_numpy(z)
            client.infer("gan", [bad], model_version="1")
        with pytest.raises(InferenceServerException, match="over the request limit"):
            huge = triton_grpc.InferInput("latent", [3000, 100000], "FP32")
            huge._raw_content = b"\0" * 16  # declares 1.2 GB, sends 16 bytes
            huge._input.ClearField("contents")
            client.infer("gan", [huge], model_version="1")
    finally:
        client.close()


@pytest.mark.parametrize("change, fragment", [
    (lambda r: r["inputs"][0].update(datatype="INT32", data=[0] * 8), "datatype INT32 given, the model takes FP32"),
    (lambda r: r["inputs"][0].update(shape=[3, LATENT]), "holds 12 elements, data has 8"),
    (lambda r: r["inputs"][0].update(datatype="FLOAT"), "unknown datatype 'FLOAT'"),
    (lambda r: r["inputs"][0].update(datatype=["FP32"]), "unknown datatype ['FP32']"),
    (lambda r: r["inputs"][0].update(shape=[2**40, 2**40, LATENT]), "holds 4835703278458516698824704 elements, data has 8"),
    (lambda r: r["inputs"][0].update(name="z"), "missing input(s) ['latent'] and unknown input(s) ['z']"),
    (lambda r: r["inputs"][0].pop("shape"), "missing ['shape']"),
    (lambda r: r["inputs"][0].update(shape=[9, LATENT], data=[0.0] * 36), "too many images"),
    (lambda r: r.update(outputs=[{"name": "nope"}]), "unknown output(s) ['nope']"),
    (lambda r: r.update(inputs=[]), 'non-empty "inputs"'),
])
def test_bad_v2_requests_are_400s_that_name_the_problem(served, change, fragment):
    infer = {"inputs": [{"name": "latent", "shape": [2, LATENT], "datatype": "FP32", "data": [0.5] * 8}]}
    change(infer)
    status, _, body = request(served["server"], "POST", "/v2/models/gan/infer", infer)
    assert status == 400 and fragment in body["error"], body


# --------------------------------------------------------------------------- Prometheus
def _scrape(server, path="/monitoring/prometheus/metrics") -> dict:
    status, headers, text = request(server, "GET", path)
    assert status == 200 and headers["content-type"].startswith("text/plain"), headers
    samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_prometheus_metrics_count_requests_of_every_protocol(served):
    server = served["server"]
    before = _scrape(server)
    request(server, "POST", "/v1/models/gan:predict", {"inputs": {"latent": latent().tolist()}})
    request(server, "POST", "/v1/models/gan:predict", {"inputs": {"latent": "not numbers"}})
    request(server, "POST", "/v2/models/gan/infer",
            {"inputs": [{"name": "latent", "shape": [1, LATENT], "datatype": "FP32", "data": [0.0] * 4}]})
    grpc_predict(served, version_label="stable")
    after = _scrape(server)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew(":tensorflow:serving:request_count_total", model_name="gan", status="OK") == 3
    assert grew(":tensorflow:serving:request_count_total", model_name="gan", status="INVALID_ARGUMENT") == 1
    for entrypoint, api, count in (("REST", "predict", 2), ("V2", "infer", 1), ("GRPC", "predict", 1)):
        assert grew(":tensorflow:serving:request_latency_count", model_name="gan", API=api, entrypoint=entrypoint) == count
        # microseconds: a model call takes more than 10 us and less than 100 s
        total = grew(":tensorflow:serving:request_latency_sum", model_name="gan", API=api, entrypoint=entrypoint)
        assert 10 * count < total < 1e8 * count


# --------------------------------------------------------------------------- TF Serving's command line
def test_tf_serving_command_line_starts_with_unimplemented_flags_named_in_one_warning(served, tmp_path, capsys):
    (tmp_path / "monitoring.config").write_text('prometheus_config { enable: true, path: "/metrics" }\n')
    parser = argparse.ArgumentParser()
    server_module.add_arguments(parser)
    args = parser.parse_args([
        "--model_config_file", str(served["root"] / "models.config"), "--port=0", "--rest_api_port=0",
        "--enable_batching", "--rest_api_num_threads=8", "--monitoring_config_file", str(tmp_path / "monitoring.config"),
        "--allow_version_labels_for_unavailable_models=true", "--poll_interval_s", "0"])
    ready, result = [], []
    thread = threading.Thread(target=lambda: result.append(server_module.run(args, on_ready=ready.append)), daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not ready and time.time() < deadline:
        time.sleep(0.05)
    assert ready, "the server did not start"
    httpd = ready[0]
    try:
        captured = capsys.readouterr()
        warnings = [line for line in captured.err.splitlines() if "TF Serving flag" in line]
        assert warnings == ["warning: ignoring TF Serving flag(s) this server does not implement: "
                            "--rest_api_num_threads=8 --enable_batching=true"]
        port = httpd.server_address[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200 and b"request_latency" in response.read()
        conn.close()
    finally:
        httpd.shutdown()
        thread.join(timeout=30)
    assert result == [0]
    with pytest.raises(SystemExit):  # a flag TF Serving does not have either is still an error
        parser.parse_args(["--model_base_path", "x", "--enable_batchin_typo"])
    assert re.search(r"unrecognized arguments: --enable_batchin_typo", capsys.readouterr().err)

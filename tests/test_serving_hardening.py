"""The server under hostile clients and odd files: non-finite numbers, empty inputs, slow clients
holding connections, a version whose metadata arrives after it loaded. A real loopback server
and real SavedModels; every loop is bounded in count and time."""
from __future__ import annotations

import http.client
import json
import shutil
import socket
import threading
import time

import keras
import tensorflow as tf
import pytest
from keras import layers

from tfx_gan.common import layout
from tfx_gan.training.export import export_generator
from tfx_gan.server.http_server import start_server
from tfx_gan.server.model_store import ModelStore

LATENT = 4


def generator(bias: float = 0.1, classes: int | None = None) -> keras.Model:
    z = keras.Input((LATENT,))
    inputs, h = z, z
    if classes:
        y = keras.Input((), dtype="int32")
        h = layers.Concatenate()([z, layers.Embedding(classes, LATENT)(y)])
        inputs = [z, y]
    # Weights of 10 and no tanh: large finite latents overflow float32 inside the model.
    x = layers.Dense(28 * 28, kernel_initializer=keras.initializers.Constant(10.0),
                     bias_initializer=keras.initializers.Constant(bias))(h)
    return keras.Model(inputs, layers.Reshape((28, 28, 1))(x))


@pytest.fixture(scope="module")
def push(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    export_generator(generator(), str(root / "gan" / "1"), LATENT)
    export_generator(generator(classes=3), str(root / "cgan" / "1"), LATENT, num_classes=3)
    return root


def strict_json(data: bytes):
    """json.loads that refuses NaN/Infinity, which standard JSON does not have."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token} in {data[:200]!r}")
    return json.loads(data, parse_constant=refuse)


def call(server, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body if body is None or isinstance(body, (bytes, str)) else json.dumps(body))
        response = conn.getresponse()
        data = response.read()
        return response.status, data
    finally:
        conn.close()


def test_non_finite_inputs_are_400_and_outputs_are_never_nan_json(push):
    with start_server({"gan": str(push / "gan"), "cgan": str(push / "cgan")}, settle_s=0, warmup=False) as server:
        for token in ("NaN", "Infinity", "-Infinity", "1e39"):
            body = '{"instances": [[0.1, 0.2, 0.3, %s]]}' % token
            status, data = call(server, "POST", "/v1/models/gan:predict", body)
            assert status == 400, (token, data)
            message = json.loads(data)["error"]
            assert "latent" in message and ("NaN or infinite" in message or "does not fit" in message)
        # A finite input that overflows inside the model: a 500 that says so, in standard JSON.
        status, data = call(server, "POST", "/v1/models/gan:predict", {"instances": [[3e38, 3e38, 3e38, 3e38]]})
        assert status == 500 and "NaN or infinite" in strict_json(data)["error"]
        # Empty inputs name the input and what it expects.
        status, data = call(server, "POST", "/v1/models/cgan:predict",
                            {"inputs": {"latent": [[0.0] * LATENT], "labels": []}})
        assert status == 400 and 'input "labels" is empty; expected int32 values' in json.loads(data)["error"]


def test_slow_clients_cannot_starve_a_normal_one(push):
    """40 clients that send a byte every 0.3 s: the cap (8) turns the surplus away at once and the
    header deadline (1 s) cuts the rest; a normal client that retries on 503 is served within
    seconds, all the time."""
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False, max_connections=8,
                      header_timeout_s=1.0, body_timeout_s=1.0) as server:
        stop = threading.Event()
        cut = []

        def slowloris():
            try:
                with socket.create_connection((server.host, server.port), timeout=5) as s:
                    for byte in b"GET /v1/models/gan HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                        if stop.is_set():
                            return
                        s.sendall(bytes([byte]))
                        time.sleep(0.3)
            except OSError:
                cut.append(1)  # the server closed it

        threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(40)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        waits = []
        try:
            for _ in range(5):
                started = time.monotonic()
                while True:
                    status, _ = call(server, "GET", "/v1/models/gan", timeout=5)
                    if status == 200:
                        break
                    assert status == 503
                    assert time.monotonic() - started < 10, "a normal client was starved"
                    time.sleep(0.2)
                waits.append(time.monotonic() - started)
                time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=10)
        assert max(waits) < 5, waits
        assert len(cut) >= 30, f"only {len(cut)} of 40 slow connections were cut"


def test_health_probes_are_answered_while_slow_clients_fill_the_connection_cap(push):
    """8 clients that declare a body and never send it hold all 8 connections for the 30 s body
    deadline; liveness, readiness and model status still answer 200 at once (the probe lane),
    a predict gets the 503, and with the probe lane full too (8 silent connections) the next
    connection gets an immediate 503."""
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False, max_connections=8) as server:
        held = []
        try:
            for _ in range(8):
                s = socket.create_connection((server.host, server.port), timeout=10)
                s.sendall(b"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
                held.append(s)
            time.sleep(0.3)
            latencies = {}
            for path in ("/v2/health/live", "/v2/health/ready", "/v1/models/gan", "/v2/models/gan/ready"):
                started = time.monotonic()
                status, body = call(server, "GET", path, timeout=5)
                latencies[path] = time.monotonic() - started
                assert status == 200, (path, body)
            assert max(latencies.values()) < 1.0, latencies
            print("probes with the cap full: " + ", ".join(f"{p} {1000 * t:.1f} ms" for p, t in latencies.items()))
            status, body = call(server, "POST", "/v1/models/gan:predict", {"instances": [[0.0] * LATENT]})
            assert status == 503 and b"too many connections" in body
            for _ in range(8):  # silent connections fill the probe lane for its 2 s deadline
                held.append(socket.create_connection((server.host, server.port), timeout=10))
            time.sleep(0.3)
            started = time.monotonic()
            status, _ = call(server, "GET", "/v2/health/live", timeout=5)
            assert status == 503 and time.monotonic() - started < 1.0
        finally:
            for s in held:
                s.close()


def test_a_hostile_barrage_grows_the_server_by_less_than_50_mb(push):
    """benchmarks/serve_hostile.py's barrage (new batch shapes, bodies nested 100,000 deep or
    declared 10^12 bytes, V2 shapes of 2^80 elements, 40-byte gRPC tensors declaring 1.2 GB,
    unsupported dtypes) against `python -m tfx_gan.server.server` in its own process: every answer
    a client error; RSS (/proc/PID/status) up by less than 50 MB once the burst is over, and the
    peak during it within 200 MB (it was 1,270 MB: the 1.2 GB tensors were allocated)."""
    from benchmarks.serve_hostile import measure

    result = measure(str(push / "gan"), "gan", LATENT)
    assert not result["server_errors"], result["answers"]
    assert result["answers"]["grpc 40 bytes declaring 1.2 GB"] == {"RESOURCE_EXHAUSTED": 10}
    assert result["rss_growth_mb"] < 50 and result["peak_growth_mb"] < 200, result


def test_slow_body_is_cut_at_its_deadline(push):
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False, body_timeout_s=1.0) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(b"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            started = time.monotonic()
            assert s.recv(1024) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < 5


@pytest.mark.parametrize("path", ["/v1/models/gan", "/no/such/route"])
def test_a_get_body_that_never_arrives_is_cut_at_the_same_deadline(push, path):
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False, body_timeout_s=1.0) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode())
            started = time.monotonic()
            assert s.recv(1024) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < 5


@pytest.mark.parametrize("headers, message", [
    ("Content-Length: \u0661\u0662\r\n", "invalid Content-Length"),  # Arabic-Indic digits: str.isdigit() is True
    ("Content-Length: 2\r\nContent-Length: 2\r\n", "Content-Length given 2 times"),
    ("Content-Length: -2\r\n", "invalid Content-Length"),
])
def test_content_length_must_be_one_ascii_number(push, headers, message, caplog):
    caplog.set_level("INFO", logger="tfx_gan.server")
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(f"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\n{headers}\r\n{{}}".encode())
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.0 400"), answer[:200]
    assert message.encode() in answer
    # and the server's log names it in one line
    assert any("POST /v1/models/gan:predict: 400" in r.getMessage() and message in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_metadata_arriving_after_the_load_is_picked_up(push, tmp_path):
    base = tmp_path / "push"
    shutil.copytree(push / "gan" / "1", base / "7", ignore=shutil.ignore_patterns(layout.METADATA_FILENAME))
    store = ModelStore("m", str(base), settle_s=0, warmup=False)
    assert store.poll() and store.current().gan_metadata is None
    time.sleep(0.05)
    shutil.copy(push / "gan" / "1" / "assets.extra" / layout.METADATA_FILENAME,
                base / "7" / "assets.extra" / layout.METADATA_FILENAME)
    assert store.poll()
    assert store.current().version == 7 and store.current().gan_metadata["latent_dim"] == LATENT
    assert not store.poll()  # unchanged now: nothing to do


def test_served_version_is_reloaded_when_its_files_change_and_partials_are_ignored(push, tmp_path):
    """What `generate --server` reads: the metadata endpoint shows gan_metadata once it arrives,
    more than settle_s after the rest of the version; a hidden partial copy (Pusher's atomic
    publish) is never served."""
    base = tmp_path / "push"
    shutil.copytree(push / "gan" / "1", base / "7", ignore=shutil.ignore_patterns(layout.METADATA_FILENAME))
    shutil.copytree(push / "gan" / "1", base / ".8.123.partial")
    with start_server({"gan": str(base)}, settle_s=0.2, poll_interval_s=0.1, warmup=False) as server:
        def metadata_when(predicate, what):
            deadline = time.monotonic() + 10
            while True:
                status, data = call(server, "GET", "/v1/models/gan/metadata")
                if status == 200 and predicate(json.loads(data)):
                    return json.loads(data)
                assert time.monotonic() < deadline, what
                time.sleep(0.1)

        first = metadata_when(lambda answer: True, "version 7 was never loaded")
        assert first["model_spec"]["version"] == "7" and "gan_metadata" not in first["metadata"]
        time.sleep(0.5)  # well past settle_s
        shutil.copy(push / "gan" / "1" / "assets.extra" / layout.METADATA_FILENAME,
                    base / "7" / "assets.extra" / layout.METADATA_FILENAME)
        later = metadata_when(lambda answer: "gan_metadata" in answer["metadata"],
                              "the late gan_metadata.json was never picked up")
        assert later["metadata"]["gan_metadata"]["latent_dim"] == LATENT and later["model_spec"]["version"] == "7"


class FailsEveryCall(tf.Module):
    """A SavedModel that loads but whose every call fails (a runtime check no request meets)."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(1.0)

    @tf.function(input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name="latent")])
    def serve(self, latent):
        tf.debugging.assert_equal(tf.shape(latent)[0], -1, message="this version is broken")
        return {"images": tf.reshape(latent * self.scale, [-1, 2, 2, 1])}


def test_versions_come_and_go_without_leaving_nothing_to_serve(push, tmp_path):
    """TF Serving's availability-preserving behaviour: a pruned version serves on from memory until
    a newer one loads; versions with broken files, or that load but fail every call (warm-up), are
    refused and the previous one keeps serving."""
    base = tmp_path / "push"
    shutil.copytree(push / "gan" / "1", base / "1")
    store = ModelStore("m", str(base), settle_s=0, warmup=True)
    assert store.poll() and store.loaded_versions() == [1]
    shutil.rmtree(base / "1")  # pruned while its successor is still being copied
    (base / "2").mkdir()
    assert not store.poll() and store.loaded_versions() == [1] and store.get().version == 1
    assert store.last_problem.startswith("version 1: its folder is gone")
    shutil.copytree(push / "gan" / "1", base / "2", dirs_exist_ok=True)
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")  # broken files
    broken = FailsEveryCall()
    tf.saved_model.save(broken, str(base / "3"), signatures={"serving_default": broken.serve})
    assert not store.poll() and store.loaded_versions() == [1]
    refused = store.refused_versions()
    assert sorted(refused) == [2, 3] and refused[3].startswith("warm-up failed for every signature")
    assert [(s["version"], s["state"]) for s in store.status()] == [("1", "AVAILABLE"), ("3", "END"), ("2", "END")]
    images = store.get().signatures["serving_default"].function(latent=tf.zeros([2, LATENT]))
    assert images["images"].shape == (2, 28, 28, 1)
    shutil.copytree(push / "gan" / "1", base / "4")  # a good version: it replaces the one in memory
    assert store.poll() and store.loaded_versions() == [4] and store.last_problem == ""


def test_churn_with_live_clients_fails_no_request(push, tmp_path):
    """A REST and a gRPC client send predicts without pause while versions come and go the way the
    Pusher makes them (publish_version, then prune_versions with keep 1): a good version; a good
    one whose predecessor, the served one, is pruned before the server has loaded it; one with
    broken files; one that loads but fails every call; a good one with the rest pruned. No
    request fails; the status names the refused versions while they are there."""
    import grpc
    import numpy as np
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfx_gan.server.grpc_service import start_grpc_server

    base, staging = tmp_path / "push", tmp_path / "staging"
    broken = FailsEveryCall()
    tf.saved_model.save(broken, str(staging / "fails"), signatures={"serving_default": broken.serve})
    shutil.copytree(push / "gan" / "1", staging / "corrupt")
    (staging / "corrupt" / "saved_model.pb").write_bytes(b"not a SavedModel")
    versions = iter(range(100, 200))

    def publish(source) -> int:
        return int(layout.publish_version(str(source), str(base), clock=lambda: next(versions))[0])

    first = publish(push / "gan" / "1")
    with start_server({"gan": str(base)}, settle_s=0, poll_interval_s=0.1) as server:
        grpc_server, grpc_port = start_grpc_server(server.app, "127.0.0.1", 0)
        store = server.app.stores["gan"]
        stop, outcomes = threading.Event(), {"rest": [], "grpc": []}

        def rest_client():
            body = json.dumps({"instances": [[0.0] * LATENT] * 2})
            while not stop.is_set():
                outcomes["rest"].append(call(server, "POST", "/v1/models/gan:predict", body)[0])

        def grpc_client():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "gan"
            request.inputs["latent"].CopyFrom(tf.make_tensor_proto(np.zeros((2, LATENT), np.float32)))
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                while not stop.is_set():
                    try:
                        stub.Predict(request, timeout=30)
                        outcomes["grpc"].append("OK")
                    except grpc.RpcError as exc:
                        outcomes["grpc"].append(exc.code().name)

        def serving(version: int) -> bool:
            deadline = time.monotonic() + 30
            while store.get().version != version and time.monotonic() < deadline:
                time.sleep(0.05)
            return store.get().version == version

        clients = [threading.Thread(target=rest_client), threading.Thread(target=grpc_client)]
        for client in clients:
            client.start()
        try:
            time.sleep(0.5)
            second = publish(push / "gan" / "1")
            assert serving(second)
            third = publish(push / "gan" / "1")
            layout.prune_versions(str(base), keep=1)  # the served version goes before the third loads
            assert serving(third)
            corrupt, fails = publish(staging / "corrupt"), publish(staging / "fails")
            deadline = time.monotonic() + 30
            while set(store.refused_versions()) != {corrupt, fails} and time.monotonic() < deadline:
                time.sleep(0.05)
            status = {entry["version"]: entry for entry in json.loads(call(server, "GET", "/v1/models/gan")[1])[
                "model_version_status"]}
            assert status[str(third)]["state"] == "AVAILABLE"
            assert status[str(corrupt)]["state"] == status[str(fails)]["state"] == "END"
            assert "warm-up failed for every signature" in status[str(fails)]["status"]["error_message"]
            last = publish(push / "gan" / "1")
            layout.prune_versions(str(base), keep=1)
            assert serving(last)
            time.sleep(0.5)
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
            grpc_server.stop(None)
    assert first == 100 and store.loaded_versions() == [last]
    failed = {kind: [o for o in done if o not in (200, "OK")] for kind, done in outcomes.items()}
    assert failed == {"rest": [], "grpc": []}, {k: v[:5] for k, v in failed.items()}
    assert min(len(done) for done in outcomes.values()) >= 20, {k: len(v) for k, v in outcomes.items()}
    print(f"churn: {len(outcomes['rest'])} REST and {len(outcomes['grpc'])} gRPC requests, 0 failed")


@pytest.mark.parametrize("bad", ["../../escaped", "a/b", "..", "", ".hidden"])
def test_augment_refuses_class_names_that_are_not_plain_folder_names(push, tmp_path, bad):
    from tfx_gan.server.augment import write_class_folders
    from tfx_gan.server.generate import GenerateError, PushDirSource

    base = tmp_path / "push"
    shutil.copytree(push / "cgan" / "1", base / "1")
    layout.add_metadata(str(base / "1"), class_names=["cat", bad, "dog"])
    out = tmp_path / "deep" / "er" / "span-1"
    with pytest.raises(GenerateError, match="is not a plain folder name"):
        write_class_folders(PushDirSource(str(base), settle_s=0), 2, str(out))
    assert not (tmp_path / "deep").exists() and not (tmp_path / "escaped").exists()  # nothing written

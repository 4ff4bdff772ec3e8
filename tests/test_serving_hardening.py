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
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from components import layout
from components.gan.export import export_generator
from components.serving import json_codec
from components.serving.json_codec import RequestError
from components.serving.model_store import ModelStore
from components.serving.http_server import start_server

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


def test_slow_body_is_cut_at_its_deadline(push):
    with start_server({"gan": str(push / "gan")}, settle_s=0, warmup=False, body_timeout_s=1.0) as server:
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(b"POST /v1/models/gan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            started = time.monotonic()
            assert s.recv(1024) == b""  # closed by the server, not by our timeout
            assert time.monotonic() - started < 5


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


# --------------------------------------------------------------------------- request parsing
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.fixed_dictionaries({"b64": st.text(max_size=12)}),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUE, st.sampled_from(["float32", "int32", "string"]))
def test_to_array_gives_an_array_or_a_request_error(value, dtype):
    try:
        array = json_codec.to_array(value, dtype, "x")
    except RequestError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(array, np.ndarray) and array.size > 0
    if dtype == "float32":
        assert array.dtype == np.float32 and np.isfinite(array).all()
    elif dtype == "int32":
        assert array.dtype == np.int32


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200), JSON_VALUE.map(json.dumps),
                      st.fixed_dictionaries({"instances": JSON_VALUE}).map(json.dumps),
                      st.fixed_dictionaries({"inputs": JSON_VALUE}).map(json.dumps)),
       path=st.sampled_from(["/v1/models/cgan:predict", "/v1/models/cgan/versions/1:predict",
                             "/v1/models/cgan/versions/x:predict", "/v1/models/../cgan:predict"]))
def test_any_request_gets_a_json_answer_never_a_500(push, body, path):
    server = _shared_server(push)
    status, data = call(server, "POST", path, body)
    assert status in (200, 400, 404, 413), (status, data[:300])
    answer = strict_json(data)
    assert ("error" in answer) == (status != 200)


_SERVERS: dict = {}


def _shared_server(push):
    if "server" not in _SERVERS:
        _SERVERS["server"] = start_server({"cgan": str(push / "cgan")}, settle_s=0, warmup=False)
    return _SERVERS["server"]


def teardown_module(module):
    if "server" in _SERVERS:
        _SERVERS.pop("server").close()

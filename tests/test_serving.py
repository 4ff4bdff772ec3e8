"""The local TF-Serving-compatible server, its model store, hot reload and the generate command.

Tiny Keras 3 generators are exported with the project's own contract
(tfx_gan.training.export.export_generator) into push directories laid out like TFX Pusher's
(<push>/<version>/saved_model.pb + variables/), then served on a free loopback port.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import re
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from PIL import Image  # noqa: E402

from tfx_gan.training.export import export_generator  # noqa: E402
from tfx_gan.common.layout import check_version_dir, list_versions  # noqa: E402
from tfx_gan.server import generate, json_codec, model_store  # noqa: E402
from tfx_gan.server.http_server import start_server  # noqa: E402
from tfx_gan.server.model_config import ModelSource, VersionPolicy, parse_model_config, validate_model_name  # noqa: E402
from tfx_gan.server.model_store import ModelStore  # noqa: E402

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line

LATENT = 8
NUM_CLASSES = 3
VERSION = 1700000000
MAX_IMAGES = 32
MAX_BODY = 256 * 1024
HOT_V1, HOT_V2 = 0.2, 0.7  # the constant pre-activation each "hot" version outputs (tanh of it)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- models
def random_generator(seed: int = 1) -> keras.Model:
    z = keras.Input((LATENT,))
    x = layers.Dense(28 * 28, kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed))(z)
    x = layers.Reshape((28, 28, 1))(x)
    return keras.Model(z, layers.Activation("tanh")(x))


def constant_generator(value: float) -> keras.Model:
    z = keras.Input((LATENT,))
    x = layers.Dense(28 * 28, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value))(z)
    x = layers.Reshape((28, 28, 1))(x)
    return keras.Model(z, layers.Activation("tanh")(x))


def conditional_generator() -> keras.Model:
    z = keras.Input((LATENT,))
    y = keras.Input((), dtype="int32")
    e = layers.Embedding(NUM_CLASSES, LATENT, embeddings_initializer=keras.initializers.RandomNormal(stddev=2.0, seed=3))(y)
    h = layers.Concatenate()([z, e])
    x = layers.Dense(28 * 28, kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=4))(h)
    x = layers.Reshape((28, 28, 1))(x)
    return keras.Model([z, y], layers.Activation("tanh")(x))


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    push, staging = root / "push", root / "staging"
    dirs = {"gan": push / "gan", "cgan": push / "cgan", "hot": push / "hot", "empty": push / "empty"}
    export_generator(random_generator(), str(dirs["gan"] / str(VERSION)), LATENT)
    export_generator(conditional_generator(), str(dirs["cgan"] / str(VERSION)), LATENT, num_classes=NUM_CLASSES)
    export_generator(constant_generator(HOT_V1), str(staging / "hot_v1"), LATENT)
    export_generator(constant_generator(HOT_V2), str(staging / "hot_v2"), LATENT)
    shutil.copytree(staging / "hot_v1", dirs["hot"] / "1")
    dirs["empty"].mkdir(parents=True)
    config = root / "models.json"
    config.write_text(json.dumps({k: str(v) for k, v in dirs.items()}))
    server = start_server(
        parse_model_config(str(config)),
        poll_interval_s=0.1,
        settle_s=0.5,
        max_images=MAX_IMAGES,
        max_body_bytes=MAX_BODY,
    )
    # versions written less than settle_s ago are loaded by the poller a moment later
    assert wait_for(lambda: all(server.app.stores[n].current() for n in ("gan", "cgan", "hot")))
    yield {"root": root, "dirs": dirs, "staging": staging, "server": server, "config": config}
    server.close()


def request(server, method, path, body=None, headers=None):
    """(status, headers, parsed JSON body) for one request on a fresh connection."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data) if data else None
    finally:
        conn.close()


def predict(server, model, payload, version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "") + ":predict"
    return request(server, "POST", path, payload)


def latent(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, LATENT)).astype(np.float32)


# --------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("name", ["gan", "mnist-dcgan_2", "a.b", "A1", "x" * 128])
def test_valid_model_names(name):
    assert validate_model_name(name) == name


@pytest.mark.parametrize("name", ["", "..", ".", "../etc", "a/b", "a\\b", "a..b", ".hidden", "-x", "a b", "a%2F", "é", "x" * 129, None])
def test_invalid_model_names(name):
    with pytest.raises(ValueError):
        validate_model_name(name)


def test_model_config_formats(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"gan": "push/gan", "other": "/abs/dir"}))
    assert parse_model_config(str(tmp_path / "a.json")) == {"gan": ModelSource(str(tmp_path / "push/gan")),
                                                            "other": ModelSource("/abs/dir")}
    (tmp_path / "b.json").write_text(json.dumps({"models": [
        {"name": "g", "base_path": "gs://bucket/push", "model_version_policy": {"latest": {"num_versions": 2}},
         "version_labels": {"stable": 1}}]}))
    assert parse_model_config(str(tmp_path / "b.json")) == {
        "g": ModelSource("gs://bucket/push", VersionPolicy("latest", num_versions=2), (("stable", 1),))}
    (tmp_path / "c.config").write_text(
        "model_config_list {\n config {\n  name: 'gan'\n  base_path: '/models/gan'\n  model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 2 versions: 1 } }\n"
        "  version_labels { key: 'stable' value: 1 }\n  version_labels { key: 'canary' value: 2 }\n }\n"
        ' config { name: "cgan" base_path: "/models/cgan" model_version_policy { all {} } }\n}\n'
    )
    assert parse_model_config(str(tmp_path / "c.config")) == {
        "gan": ModelSource("/models/gan", VersionPolicy("specific", versions=(1, 2)), (("canary", 2), ("stable", 1))),
        "cgan": ModelSource("/models/cgan", VersionPolicy("all")),
    }
    for bad in ({"../x": "/p"}, {"a/b": "/p"}, {}, {"models": [{"name": "g", "base_path": "/p", "labels": {}}]},
                {"models": [{"name": "g", "base_path": "/p", "version_labels": {"9lives": 1}}]}):
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            parse_model_config(str(tmp_path / "bad.json"))
    # a label on a version the policy never serves is a mistake in the file
    (tmp_path / "bad.config").write_text("model_config_list { config { name: 'g' base_path: '/p' "
                                         "model_version_policy { specific { versions: 1 } } "
                                         "version_labels { key: 'canary' value: 2 } } }")
    with pytest.raises(ValueError, match="canary.*version 2.*specific"):
        parse_model_config(str(tmp_path / "bad.config"))


def test_float32_json_encoding_is_exact():
    rng = np.random.default_rng(0)
    special = np.array(
        [0.0, -0.0, 1.0, -1.0, 0.1, 1e-45, -1e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 1e10, 123456789.0, 0.5, 9.999999e-1],
        np.float32,
    )
    bits = rng.integers(0, 2**32, 300_000, dtype=np.uint64).astype(np.uint32)
    for array in (special, bits.view(np.float32), rng.uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)):
        text = json_codec.encode_float32_array(array)
        back = np.asarray(json.loads(text), dtype=np.float32)
        assert back.shape == array.shape
        same = (back.view(np.uint32) == array.view(np.uint32)) | (np.isnan(back) & np.isnan(array))
        assert same.all(), array[~same][:5]
    assert json_codec.encode_float32_array(np.array([np.nan, np.inf, -np.inf], np.float32)) == b"[NaN,Infinity,-Infinity]"
    assert json_codec.encode_float32_array(np.float32(0.5)) == b"5.0e-1"
    payload = {"a": np.zeros((2, 0), np.float32), "b": np.array([b"\x89PNG"], dtype=object), "c": np.arange(3, dtype=np.int32)}
    assert json.loads(json_codec.encode(payload)) == {"a": [[], []], "b": [{"b64": "iVBORw=="}], "c": [0, 1, 2]}


def test_the_json_templates_stay_within_their_byte_budget(monkeypatch):
    """A stream of new batch shapes (each a new template, ~25 bytes per element) keeps the cache at
    most its budget (1 MB here, to keep the test small); a template over the budget alone is used
    and not kept."""
    monkeypatch.setattr(json_codec, "TEMPLATE_CACHE_BYTES", 1024 * 1024)
    for batch in range(1, 30):  # 768 elements per image: 19 KB of template at batch 1, 560 KB at 29
        array = np.zeros((batch, 16, 16, 3), np.float32)
        assert json.loads(json_codec.encode_float32_array(array)) == array.tolist()
        assert 0 < json_codec.template_cache_bytes() <= 1024 * 1024
    kept = json_codec.template_cache_bytes()
    huge = np.zeros((80, 16, 16, 3), np.float32)  # a 1.5 MB template
    assert json.loads(json_codec.encode_float32_array(huge)) == huge.tolist()
    assert json_codec.template_cache_bytes() == kept


def test_list_versions_and_completeness(env, tmp_path):
    source = env["dirs"]["gan"] / str(VERSION)
    base = tmp_path / "push"
    (base / "abc").mkdir(parents=True)
    (base / ".tmp-123").mkdir()
    (base / "12a").mkdir()
    (base / "77").write_text("a file, not a version")
    (base / "5").mkdir()  # empty: Pusher just created it
    (base / "6").mkdir()
    shutil.copy(source / "saved_model.pb", base / "6")  # saved_model.pb only
    shutil.copytree(source, base / "7", ignore=shutil.ignore_patterns("variables.data*"))  # index, no data
    shutil.copytree(source, base / "8")
    later = time.time() + 60
    assert [v for v, _ in list_versions(str(base))] == [8, 7, 6, 5]
    assert list_versions(str(tmp_path / "missing")) == []
    assert not check_version_dir(str(base / "5"), now=later)[0]
    assert not check_version_dir(str(base / "6"), now=later)[0]
    assert "variables.data" in check_version_dir(str(base / "7"), now=later)[1]
    assert check_version_dir(str(base / "8"), settle_s=5, now=later)[0]
    complete, reason, _ = check_version_dir(str(base / "8"), settle_s=5)  # just written: not settled
    assert not complete and "settle" in reason
    # copies that keep the old mtimes (cp -a) still count as fresh: ctime
    old = time.time() - 3600
    for d, _, files in os.walk(base / "8"):
        for f in files:
            os.utime(os.path.join(d, f), (old, old))
    assert not check_version_dir(str(base / "8"), settle_s=5)[0]
    store = ModelStore("m", str(base), settle_s=5, warmup=False)
    assert not store.poll() and store.current() is None and "settle" in store.last_problem
    store.clock = lambda: time.time() + 60
    assert store.poll() and store.current().version == 8


@pytest.mark.filterwarnings("ignore:Unexpected end-group tag")
def test_corrupt_version_is_skipped_and_retried_only_when_changed(env, tmp_path, monkeypatch):
    source = env["dirs"]["gan"] / str(VERSION)
    base = tmp_path / "push"
    shutil.copytree(source, base / "1")
    shutil.copytree(source, base / "2")
    (base / "2" / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    calls = []
    real_load = model_store.load_model
    monkeypatch.setattr(model_store, "load_model", lambda *a, **k: calls.append(a[1]) or real_load(*a, **k))
    store = ModelStore("m", str(base), settle_s=0.5, warmup=False)
    store.clock = lambda: time.time() + 60
    assert store.poll() and store.current().version == 1
    assert calls == [2, 1] and "failed to load" in store.last_problem
    assert not store.poll() and calls == [2, 1]  # unchanged broken version: not retried
    shutil.copy(source / "saved_model.pb", base / "2" / "saved_model.pb")  # fixed
    store.clock = time.time
    assert not store.poll() and calls == [2, 1]  # just changed: not settled yet
    store.clock = lambda: time.time() + 60
    assert store.poll() and store.current().version == 2 and calls == [2, 1, 2]


# --------------------------------------------------------------------------- status / metadata
def test_model_status(env):
    server = env["server"]
    expected = [{"version": str(VERSION), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    for path in ("/v1/models/gan", f"/v1/models/gan/versions/{VERSION}", "/v1/models/gan/"):
        status, _, body = request(server, "GET", path)
        assert (status, body) == (200, {"model_version_status": expected}), path
    assert request(server, "GET", "/v1/models/hot")[2]["model_version_status"][0]["version"] == "1"
    cases = {
        "/v1/models/gan/versions/123": 404,
        "/v1/models/nope": 404,
        "/v1/models/empty": 404,  # configured, nothing pushed yet
        "/v1/models/gan/versions/abc": 400,
        "/v1/models/..": 400,
        "/v1/models/../metadata": 400,
        "/v1/models/.hidden": 400,
        "/v1/models/a%2F..%2Fetc": 400,
        "/v1/models/gan/versions/1/../../x": 404,
        "/v1/models/gan/extra": 404,
        "/v1/models": 404,
        "/": 404,
        "/v1/models/gan:classify": 404,
    }
    for path, code in cases.items():
        status, headers, body = request(server, "GET" if ":" not in path else "POST", path, "{}" if ":" in path else None)
        assert status == code, (path, status, body)
        assert headers["content-type"] == "application/json" and isinstance(body["error"], str)


def test_model_metadata(env):
    server = env["server"]
    status, headers, body = request(server, "GET", "/v1/models/gan/metadata")
    assert status == 200 and headers["x-model-version"] == str(VERSION)
    assert body["model_spec"] == {"name": "gan", "signature_name": "", "version": str(VERSION)}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert set(sigs) == {"serving_default", "generate_png"}
    latent_in = sigs["serving_default"]["inputs"]["latent"]
    assert latent_in["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in latent_in["tensor_shape"]["dim"]] == ["-1", str(LATENT)]
    images = sigs["serving_default"]["outputs"]["images"]
    assert images["dtype"] == "DT_FLOAT" and [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert sigs["generate_png"]["inputs"]["num_images"]["dtype"] == "DT_INT32"
    assert sigs["generate_png"]["inputs"]["num_images"]["tensor_shape"] == {"dim": [], "unknown_rank": False}
    assert sigs["generate_png"]["outputs"]["png_bytes"]["dtype"] == "DT_STRING"
    assert sigs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert body["metadata"]["gan_metadata"]["latent_dim"] == LATENT
    status, _, body = request(server, "GET", f"/v1/models/cgan/versions/{VERSION}/metadata")
    assert status == 200 and body["metadata"]["gan_metadata"]["num_classes"] == NUM_CLASSES
    assert body["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["labels"]["dtype"] == "DT_INT32"
    assert request(server, "GET", "/v1/models/gan/versions/9/metadata")[0] == 404


# --------------------------------------------------------------------------- predict
def test_predict_row_and_columnar_exact(env):
    server = env["server"]
    z = latent(3)
    direct = server.app.stores["gan"].current().signatures["serving_default"].function(latent=tf.constant(z))["images"].numpy()
    status, headers, body = predict(server, "gan", {"instances": z.tolist()})
    assert status == 200 and headers["x-model-version"] == str(VERSION)
    got = np.asarray(body["predictions"], np.float32)
    assert got.shape == (3, 28, 28, 1) and np.array_equal(got, direct)  # exact float32 values
    rows = [{"latent": row} for row in z.tolist()]
    assert np.array_equal(np.asarray(predict(server, "gan", {"instances": rows})[2]["predictions"], np.float32), direct)
    for payload in ({"inputs": {"latent": z.tolist()}}, {"inputs": z.tolist(), "signature_name": "serving_default"}):
        status, _, body = predict(server, "gan", payload, version=VERSION)
        assert status == 200 and set(body) == {"outputs"}
        assert np.array_equal(np.asarray(body["outputs"], np.float32), direct)
    ints = predict(server, "gan", {"instances": [[1] * LATENT]})  # ints are fine for a float input
    assert ints[0] == 200 and len(ints[2]["predictions"]) == 1


def test_generate_png_signature(env):
    server = env["server"]
    payload = {"signature_name": "generate_png", "inputs": {"num_images": 3, "seed": 7}}
    status, headers, body = predict(server, "gan", payload)
    assert status == 200 and headers["x-model-version"] == str(VERSION)
    pngs = [base64.b64decode(item["b64"]) for item in body["outputs"]]
    assert len(pngs) == 3 and all(p.startswith(b"\x89PNG") for p in pngs)
    image = Image.open(io.BytesIO(pngs[0]))
    assert image.size == (28, 28) and image.mode == "L"
    assert predict(server, "gan", payload)[2] == body  # seeded: reproducible
    assert predict(server, "gan", {"signature_name": "generate_png", "inputs": {"num_images": 3, "seed": 8}})[2] != body


def test_conditional_model(env):
    server = env["server"]
    z = latent(4)
    rows = [{"latent": row, "labels": label} for row, label in zip(z.tolist(), [0, 1, 2, 1])]
    status, _, body = predict(server, "cgan", {"instances": rows})
    assert status == 200 and np.asarray(body["predictions"]).shape == (4, 28, 28, 1)
    status, _, body = predict(server, "cgan", {"inputs": {"latent": z.tolist(), "labels": [2, 2, 2, 2]}})
    assert status == 200
    gen = {"signature_name": "generate_png", "inputs": {"num_images": 2, "seed": 1, "labels": [2]}}
    assert predict(server, "cgan", gen)[0] == 200
    gen["inputs"]["labels"] = [NUM_CLASSES]
    status, _, body = predict(server, "cgan", gen)
    assert status == 400 and body["error"] == f"label {NUM_CLASSES} is not a class of this model: labels are 0..2"
    status, _, body = predict(server, "cgan", {"instances": [{"latent": z[0].tolist()}]})
    assert status == 400 and "missing input(s) ['labels']" in body["error"]
    status, _, body = predict(server, "cgan", {"inputs": {"latent": z.tolist(), "labels": [0] * 4, "noise": 1}})
    assert status == 400 and "unknown input(s) ['noise']" in body["error"]


def test_predict_errors(env):
    server = env["server"]
    row = [0.5] * LATENT
    cases = [
        ("{not json", 400, "malformed JSON"),
        ("[" * 100_000 + "]" * 100_000, 400, "malformed JSON"),
        ("[1, 2]", 400, "JSON object"),
        ({"instances": [row], "inputs": [row]}, 400, "not both"),
        ({"signature_name": "serving_default"}, 400, "missing"),
        ({"instances": [row], "extra": 1}, 400, "unknown key"),
        ({"instances": []}, 400, "empty"),
        ({"instances": row}, 400, "expected shape"),
        ({"instances": [[0.5] * (LATENT - 1)]}, 400, "expected shape [-1, 8], got [1, 7]"),
        ({"instances": [row, row[:-1]]}, 400, "ragged"),
        ({"instances": [["a"] * LATENT]}, 400, "got strings"),
        ({"instances": [[True] * LATENT]}, 400, "got booleans"),
        ({"instances": [[None] * LATENT]}, 400, "expected numbers"),
        ({"instances": [[{"b64": "AAAA"}] * LATENT]}, 400, "only valid for string inputs"),
        ({"inputs": {"latent": {"x": 1}}}, 400, "expected numbers"),
        ({"instances": [[1e39] * LATENT]}, 400, "does not fit float32"),
        ({"instances": [{"latnt": row}]}, 400, "do not match"),
        ({"instances": [row] * (MAX_IMAGES + 1)}, 400, "too many images"),
        ({"inputs": {"latent": [row] * (MAX_IMAGES + 1)}}, 400, "too many images"),
        ({"signature_name": 3, "instances": [row]}, 400, "must be a string"),
        ({"signature_name": "nope", "instances": [row]}, 404, "signature 'nope' not found"),
        ({"signature_name": "generate_png", "instances": [{"num_images": 1, "seed": 0}]}, 400, "columnar"),
        ({"signature_name": "generate_png", "inputs": {"num_images": MAX_IMAGES + 1, "seed": 0}}, 400, "too many images"),
        ({"signature_name": "generate_png", "inputs": {"num_images": 0, "seed": 0}}, 400, "must be positive"),
        ({"signature_name": "generate_png", "inputs": {"num_images": 2.5, "seed": 0}}, 400, "expected integers"),
        ({"signature_name": "generate_png", "inputs": {"num_images": [2], "seed": 0}}, 400, "expected shape []"),
        ({"signature_name": "generate_png", "inputs": {"num_images": 2, "seed": 2**40}}, 400, "out of range"),
        ({"signature_name": "generate_png", "inputs": {"num_images": 2}}, 400, "missing input(s) ['seed']"),
        ({"signature_name": "generate_png", "inputs": 3}, 400, "must be an object"),
    ]
    for payload, code, fragment in cases:
        status, headers, body = predict(server, "gan", payload)
        assert status == code and fragment in body["error"], (payload if len(str(payload)) < 200 else str(payload)[:200], status, body)
        assert headers["content-type"] == "application/json"
    assert predict(server, "nope", {"instances": [row]})[0] == 404
    assert predict(server, "gan", {"instances": [row]}, version=123)[0] == 404
    assert predict(server, "empty", {"instances": [row]})[0] == 404


def test_methods_and_limits(env):
    server = env["server"]
    status, headers, _ = request(server, "GET", "/v1/models/gan:predict")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = request(server, "POST", "/v1/models/gan", "{}")
    assert status == 405 and headers["allow"] == "GET"
    for method in ("PUT", "DELETE", "PATCH"):
        assert request(server, method, "/v1/models/gan/metadata", "{}")[0] == 405
    for raw, code in ((b"FOO /v1/models/gan HTTP/1.1\r\nHost: x\r\n\r\n", 405), (b"GARBAGE\r\n\r\n", 400)):
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == str(code).encode() and "error" in json.loads(body), answer
    # 413: decided from Content-Length before any body byte is read
    for extra in ({}, {"Expect": "100-continue"}):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.putrequest("POST", "/v1/models/gan:predict")
        conn.putheader("Content-Length", str(MAX_BODY + 1))
        for k, v in extra.items():
            conn.putheader(k, v)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and "exceeds the limit" in json.loads(response.read())["error"]
        conn.close()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.putrequest("POST", "/v1/models/gan:predict")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411
    conn.close()
    # a body just under the limit is read and answered (400: it is not a valid request)
    big = json.dumps({"instances": [[0.123456789] * LATENT] * 4000})[: MAX_BODY - 10]
    assert request(server, "POST", "/v1/models/gan:predict", big)[0] == 400
    # keep-alive: several requests on one connection, errors included
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    for body, code in (("{}", 400), (json.dumps({"instances": [[0.0] * LATENT]}), 200), ("x", 400)):
        conn.request("POST", "/v1/models/gan:predict", body)
        response = conn.getresponse()
        response.read()
        assert response.status == code
    conn.request("GET", "/v1/models/gan")
    assert conn.getresponse().status == 200
    conn.close()


# --------------------------------------------------------------------------- hot reload
def test_hot_reload_without_failed_requests(env):
    server, hot, staging = env["server"], env["dirs"]["hot"], env["staging"]
    store = server.app.stores["hot"]
    expect = {1: np.tanh(np.float32(HOT_V1)), 2: np.tanh(np.float32(HOT_V2)), 3: np.tanh(np.float32(HOT_V1))}
    stop = threading.Event()
    results: list[list] = [[], []]
    failures: list = []
    body = json.dumps({"instances": [[0.0] * LATENT] * 2})

    def client(out):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        while not stop.is_set():
            try:
                conn.request("POST", "/v1/models/hot:predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.status != 200:
                    failures.append((response.status, data[:200]))
                    continue
                value = json.loads(data)["predictions"][1][27][27][0]
                out.append((int(response.getheader("X-Model-Version")), value))
            except Exception as exc:  # noqa: BLE001 - any failure counts
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client, args=(out,), daemon=True) for out in results]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: all(len(r) >= 3 for r in results))
        assert all(v == 1 for r in results for v, _ in r)
        # push version 2 like Pusher would, but atomically: written elsewhere, renamed into place
        os.rename(staging / "hot_v2", hot / "2")
        assert wait_for(lambda: all(r[-1][0] == 2 for r in results)), "version 2 was never served"
        assert request(server, "GET", "/v1/models/hot")[2]["model_version_status"][0]["version"] == "2"
        # version 3 arrives the slow way: directory first, files one by one (Pusher copying)
        (hot / "3").mkdir()
        shutil.copy(staging / "hot_v1" / "saved_model.pb", hot / "3")
        time.sleep(1.0)  # 10 polls and twice the settle time
        assert store.current().version == 2 and 3 not in store._failed
        (hot / "3" / "variables").mkdir()
        shutil.copy(staging / "hot_v1" / "variables" / "variables.index", hot / "3" / "variables")
        time.sleep(0.5)
        assert store.current().version == 2 and 3 not in store._failed  # index without data: skipped
        shutil.copytree(staging / "hot_v1" / "variables", hot / "3" / "variables", dirs_exist_ok=True)
        shutil.copytree(staging / "hot_v1" / "assets.extra", hot / "3" / "assets.extra")
        assert wait_for(lambda: all(r[-1][0] == 3 for r in results)), "version 3 was never served"
        count = sum(len(r) for r in results)
        assert wait_for(lambda: sum(len(r) for r in results) > count + 4)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert failures == []
    for r in results:
        versions = [v for v, _ in r]
        assert versions == sorted(versions) and versions[0] == 1 and versions[-1] == 3  # switched, never back
        for version, value in r:
            assert value == pytest.approx(float(expect[version]), abs=1e-6), (version, value)
    assert {v for r in results for v, _ in r} == {1, 2, 3}


# --------------------------------------------------------------------------- generate command
def run_generate(*argv):
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    return generate.run(parser.parse_args([str(a) for a in argv]))


def read_pngs(directory):
    return [(directory / f).read_bytes() for f in sorted(os.listdir(directory)) if f.startswith("img_")]


def test_generate_from_push_dir_and_server(env, tmp_path, capsys):
    server, dirs = env["server"], env["dirs"]
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert run_generate("--push_dir", dirs["gan"], "-n", 10, "--batch_size", 4, "--seed", 3, "--out_dir", local, "--settle_s", 0) == 0
    assert run_generate("--server", server.url, "--model_name", "gan", "-n", 10, "--batch_size", 4, "--seed", 3, "--out_dir", remote) == 0
    a, b = read_pngs(local), read_pngs(remote)
    assert len(a) == 10 and a == b and len(set(a)) == 10  # same seed, same images; all different
    grid = Image.open(local / "grid.png")
    assert grid.size == (4 * 30 + 2, 3 * 30 + 2)
    manifest = json.loads((local / "generate.json").read_text())
    assert manifest["version"] == VERSION and manifest["num_images"] == 10
    assert "wrote 10 images" in capsys.readouterr().out


def test_generate_per_class(env, tmp_path):
    server, dirs = env["server"], env["dirs"]
    outs = {}
    for source in ("push", "server"):
        for label in (0, 2):
            out = tmp_path / f"{source}{label}"
            where = ("--push_dir", dirs["cgan"], "--settle_s", 0) if source == "push" else ("--server", server.url, "--model_name", "cgan")
            assert run_generate(*where, "-n", 5, "--label", label, "--seed", 1, "--out_dir", out) == 0
            outs[source, label] = read_pngs(out)
    assert outs["push", 2] == outs["server", 2] and outs["push", 0] == outs["server", 0]
    assert len(outs["push", 2]) == 5 and outs["push", 0] != outs["push", 2]  # the class changes the images
    assert run_generate("--push_dir", dirs["cgan"], "-n", 6, "--out_dir", tmp_path / "cycle", "--settle_s", 0) == 0
    assert len(read_pngs(tmp_path / "cycle")) == 6  # no --label: classes 0,1,2,0,1,2


def test_generate_errors(env, tmp_path, capsys):
    server, dirs = env["server"], env["dirs"]
    out = ("--out_dir", tmp_path / "out")
    cases = [
        (("--push_dir", dirs["gan"], "--label", 1), 2, "unconditional"),
        (("--server", server.url, "--model_name", "gan", "--label", 1), 2, "unconditional"),
        (("--push_dir", dirs["cgan"], "--label", NUM_CLASSES), 2, "out of range"),
        (("--server", server.url, "--model_name", "cgan", "--label", -1), 2, "out of range"),
        (("--push_dir", dirs["gan"], "-n", 0), 2, "must be positive"),
        (("--push_dir", dirs["empty"]), 2, "no version directories"),
        (("--push_dir", tmp_path / "missing"), 2, "does not exist"),
        (("--server", server.url, "--model_name", "nope"), 1, "404"),
        (("--server", server.url, "--model_name", "../x"), 2, "invalid model name"),
        (("--server", "ftp://x"), 2, "http"),
    ]
    for argv, code, fragment in cases:
        assert run_generate(*argv, *out, "--settle_s", 0) == code, argv
        assert fragment in capsys.readouterr().err, argv
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert run_generate("--server", f"http://127.0.0.1:{port}", *out) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_server_command_line(env, capsys):
    """serve's add_arguments/run: REST on --rest_api_port and gRPC on --port (TF Serving's meanings),
    0 picks free ports and prints them; TF Serving's own gRPC client gets the status; shutdown ends
    run() with 0."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    from tfx_gan.server import server as server_module

    parser = argparse.ArgumentParser()
    server_module.add_arguments(parser)
    args = parser.parse_args(["--model_base_path", str(env["dirs"]["gan"]), "--model_name", "g", "--rest_api_port", "0",
                              "--port", "0", "--poll_interval_s", "0"])
    assert (args.host, args.max_images, args.max_body_bytes) == ("127.0.0.1", 256, 8 * 1024 * 1024)
    ready = []
    result = []
    thread = threading.Thread(target=lambda: result.append(server_module.run(args, on_ready=ready.append)), daemon=True)
    thread.start()
    assert wait_for(lambda: ready, timeout=60)
    httpd = ready[0]
    conn = http.client.HTTPConnection("127.0.0.1", httpd.server_address[1], timeout=30)
    conn.request("GET", "/v1/models/g")
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["model_version_status"][0]["version"] == str(VERSION)
    conn.close()
    printed = capsys.readouterr().out
    assert f"on http://127.0.0.1:{httpd.server_address[1]} (REST)" in printed
    grpc_port = int(re.search(r"\(REST\) and 127\.0\.0\.1:(\d+) \(gRPC\)", printed)[1])
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "g"
        (status,) = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30).model_version_status
    assert status.version == VERSION
    httpd.shutdown()
    thread.join(timeout=30)
    assert result == [0]
    # `python -m tfx_gan.server.server` is wired up (bad flags fail before TensorFlow loads)
    environment = dict(os.environ, PYTHONPATH=REPO_ROOT)
    for argv, fragment in (([], "exactly one of --model_base_path or --model_config"),
                           (["--model_base_path", "x", "--model_name", "../etc"], "invalid model name")):
        bad = subprocess.run([sys.executable, "-m", "tfx_gan.server.server", *argv], cwd=REPO_ROOT, env=environment,
                             capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and fragment in bad.stderr, bad.stderr


def test_kubernetes_manifests():
    import yaml

    with open(os.path.join(REPO_ROOT, "kubeflow", "serving", "inferenceservice.yaml")) as f:
        (isvc,) = list(yaml.safe_load_all(f))
    model = isvc["spec"]["predictor"]["model"]
    assert isvc["kind"] == "InferenceService" and model["modelFormat"]["name"] == "tensorflow"
    assert model["storageUri"].endswith("/serving/gan-digits")
    with open(os.path.join(REPO_ROOT, "kubeflow", "serving", "tf-serving-deployment.yaml")) as f:
        deployment, service = list(yaml.safe_load_all(f))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("tensorflow/serving:")
    args = dict(a.split("=", 1) for a in container["args"])
    assert args["--model_name"] == "gan-digits" and args["--rest_api_port"] == "8501"
    assert any(m["mountPath"] == args["--model_base_path"] for m in container["volumeMounts"])
    assert service["kind"] == "Service" and {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}

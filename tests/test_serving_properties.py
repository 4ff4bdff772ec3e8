"""Property-based tests (Hypothesis) of the server's request handling: whatever a client sends,
the answer is a result or a 4xx whose {"error": ...} names the problem, in standard JSON; never
a 500, a traceback or a hung connection.

Most examples go to the pure request functions (server/predict_format.py), which
is fast; a smaller number go through a real loopback server and a real SavedModel.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket

import keras
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from keras import layers

from tfx_gan.training.export import export_generator
from tfx_gan.server import json_codec, predict_format
from tfx_gan.server.http_server import start_server
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import SignatureInfo, TensorSpecInfo

LATENT = 4
CLASSES = 3
MAX_IMAGES = 8
FLOAT32_MAX = float(np.finfo(np.float32).max)


def spec(name, dtype, shape):
    return TensorSpecInfo(name=name, dtype=dtype, shape=shape)


# The conditional generator's signatures (training/export.py), plus a string input.
SIGNATURES = {
    "serving_default": SignatureInfo("serving_default", None, {
        "latent": spec("latent", "float32", (None, LATENT)), "labels": spec("labels", "int32", (None,))}, {}),
    "generate_png": SignatureInfo("generate_png", None, {
        "num_images": spec("num_images", "int32", ()), "seed": spec("seed", "int32", ()),
        "labels": spec("labels", "int32", (None,))}, {}),
    "strings": SignatureInfo("strings", None, {"text": spec("text", "string", (None,))}, {}),
}

JSON_LEAF = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
             | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
             | st.fixed_dictionaries({"b64": st.text(max_size=12)}))
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=20)
INPUT_NAMES = st.sampled_from(["latent", "labels", "num_images", "seed", "text", "b64", "x"])
# Bodies that get past the JSON parser often: the right keys with random or nearly right values.
REQUEST = st.one_of(
    st.fixed_dictionaries({"instances": JSON_VALUE}),
    st.fixed_dictionaries({"inputs": JSON_VALUE}),
    st.fixed_dictionaries({"inputs": st.dictionaries(INPUT_NAMES, JSON_VALUE, max_size=4)}),
    st.fixed_dictionaries({"instances": st.lists(st.dictionaries(INPUT_NAMES, JSON_VALUE, max_size=3), max_size=4)}),
    st.dictionaries(st.sampled_from(["signature_name", "instances", "inputs", "extra"]), JSON_VALUE, max_size=3),
).flatmap(lambda body: st.sampled_from([None, *SIGNATURES]).map(
    lambda name: body if name is None else {**body, "signature_name": name}))


def check_feed(signature: SignatureInfo, feed: dict) -> None:
    """What a successful parse promises: every input, its dtype and shape, finite, within limits."""
    assert set(feed) == set(signature.inputs)
    for name, array in feed.items():
        wanted = signature.inputs[name]
        assert array.ndim == len(wanted.shape) and array.size > 0
        assert all(w is None or w == a for a, w in zip(array.shape, wanted.shape))
        if wanted.dtype == "string":
            assert array.dtype == object and all(isinstance(v, bytes) for v in array.ravel())
        else:
            assert array.dtype == np.dtype(wanted.dtype)
            assert np.isfinite(array).all()
        if wanted.shape and wanted.shape[0] is None:
            assert len(array) <= MAX_IMAGES
    if "num_images" in feed:
        assert 1 <= int(feed["num_images"]) <= MAX_IMAGES


def parse(body) -> tuple[SignatureInfo, dict]:
    """parse_body + build_feed as the server runs them; a RequestError must be one clear line."""
    request = predict_format.parse_body(body if isinstance(body, bytes) else json.dumps(body).encode())
    signature = SIGNATURES.get(request.signature_name)
    if signature is None:
        raise LookupError(request.signature_name)  # the server's 404
    return signature, predict_format.build_feed(signature, request, MAX_IMAGES)


def assert_clear(error: RequestError) -> None:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 1000


# --------------------------------------------------------------------------- pure functions
@settings(max_examples=600, deadline=None)
@given(st.one_of(REQUEST, JSON_VALUE, st.binary(max_size=100)))
def test_any_body_parses_to_a_valid_feed_or_a_clear_request_error(body):
    try:
        signature, feed = parse(body)
    except RequestError as error:
        assert_clear(error)
    except LookupError as unknown:  # an unknown signature_name: the server answers 404
        assert str(unknown.args[0]) not in SIGNATURES
    else:
        check_feed(signature, feed)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.lists(st.floats(-FLOAT32_MAX, FLOAT32_MAX, width=32), min_size=LATENT, max_size=LATENT),
                     min_size=1, max_size=MAX_IMAGES),
       label=st.integers(-2**31, 2**31 - 1), columnar=st.booleans())
def test_well_formed_requests_are_accepted_exactly(rows, label, columnar):
    labels = [label] * len(rows)
    body = ({"inputs": {"latent": rows, "labels": labels}} if columnar
            else {"instances": [{"latent": r, "labels": label} for r in rows]})
    signature, feed = parse(body)
    check_feed(signature, feed)
    assert np.array_equal(feed["latent"], np.asarray(rows, np.float32)) and feed["labels"].tolist() == labels


BAD_NUMBER = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e39", "-3.5e38", "1e400"])


@settings(max_examples=100, deadline=None)
@given(bad=BAD_NUMBER, position=st.integers(0, LATENT - 1), columnar=st.booleans())
def test_non_finite_and_overflowing_numbers_are_refused_by_name(bad, position, columnar):
    row = ["0.5"] * LATENT
    row[position] = bad
    latent = "[[" + ",".join(row) + "]]"
    body = ('{"inputs": {"latent": %s, "labels": [0]}}' % latent if columnar
            else '{"instances": [{"latent": %s, "labels": 0}]}' % latent[1:-1])
    with pytest.raises(RequestError, match='input "latent"') as caught:
        parse(body.encode())
    assert "NaN or infinite" in str(caught.value) or "does not fit float32" in str(caught.value)


@pytest.mark.parametrize("inputs, message", [
    ({"latent": [[0.0] * LATENT], "labels": []}, 'input "labels" is empty; expected int32 values'),
    ({"latent": [], "labels": [0]}, 'input "latent" is empty; expected float32 values'),
    ({"latent": [[]], "labels": [0]}, 'input "latent" is empty; expected float32 values'),
])
def test_empty_inputs_say_what_is_expected(inputs, message):
    with pytest.raises(RequestError) as caught:
        parse({"inputs": inputs})
    assert str(caught.value) == message


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=40), text=st.text(max_size=16))
def test_b64_values_decode_exactly_or_are_refused(data, text):
    body = {"signature_name": "strings", "inputs": {"text": [{"b64": base64.b64encode(data).decode()}]}}
    assert parse(body)[1]["text"].tolist() == [data]
    try:
        decoded = parse({"signature_name": "strings", "inputs": {"text": [{"b64": text}]}})[1]["text"][0]
    except RequestError as error:
        assert 'input "text": invalid base64' in str(error)
    else:
        assert decoded == base64.b64decode(text, validate=True)


V2_DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
             "BOOL": np.bool_, "BYTES": object}


@given(tensors=st.lists(st.tuples(st.sampled_from(sorted(V2_DTYPES)), st.lists(st.integers(0, 3), max_size=3),
                                  st.integers(0, 2**32 - 1)), min_size=1, max_size=3))
def test_v2_binary_tensors_parse_back_exactly(tensors):
    """Any tensors sent as V2 binary data (JSON header, then each tensor's raw bytes, as Triton's
    client lays them out) parse back to the same dtype, shape and values."""
    from tfx_gan.server import v2_format

    header, raw, arrays = [], [], {}
    for index, (datatype, shape, seed) in enumerate(tensors):
        rng = np.random.default_rng(seed)
        count = int(np.prod(shape))
        if datatype == "BYTES":
            array = np.array([rng.bytes(int(n)) for n in rng.integers(0, 6, count)], dtype=object).reshape(shape)
        else:
            array = rng.integers(0, 200, count).astype(V2_DTYPES[datatype]).reshape(shape)
        data = v2_format.tensor_to_bytes(array)
        header.append({"name": f"t{index}", "shape": shape, "datatype": datatype,
                       "parameters": {"binary_data_size": len(data)}})
        raw.append(data)
        arrays[f"t{index}"] = array
    head = json.dumps({"inputs": header}).encode()
    request = v2_format.parse_infer(head + b"".join(raw), len(head))
    for name, array in arrays.items():
        assert request.inputs[name].shape == array.shape
        assert request.inputs[name].tolist() == array.tolist()


@given(body=st.binary(max_size=200), header_length=st.integers(0, 250))
def test_any_binary_v2_body_parses_or_is_a_clear_request_error(body, header_length):
    from tfx_gan.server import v2_format

    try:
        v2_format.parse_infer(body, header_length)
    except RequestError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(json_codec.MAX_RANK + 1, 900), dtype=st.sampled_from(["float32", "string"]))
def test_deeply_nested_lists_are_refused_without_recursing(depth, dtype):
    value = json.loads("[" * depth + "1" + "]" * depth)
    with pytest.raises(RequestError, match=f"nested {depth} deep"):
        json_codec.to_array(value, dtype, "x")


# --------------------------------------------------------------------------- real server
def bounded_generator() -> keras.Model:
    """tanh on the way in and out: any finite input gives finite images, so no request can
    legitimately end in the server's 500 for non-finite outputs."""
    z = keras.Input((LATENT,))
    y = keras.Input((), dtype="int32")
    h = layers.Concatenate()([layers.Activation("tanh")(z), layers.Embedding(CLASSES, LATENT)(y)])
    x = layers.Activation("tanh")(layers.Dense(28 * 28)(h))
    return keras.Model([z, y], layers.Reshape((28, 28, 1))(x))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    push = tmp_path_factory.mktemp("properties") / "cgan"
    export_generator(bounded_generator(), str(push / "1"), LATENT, num_classes=CLASSES)
    with start_server({"cgan": str(push)}, settle_s=0, warmup=False, max_images=MAX_IMAGES,
                      max_body_bytes=64 * 1024, header_timeout_s=2.0, body_timeout_s=2.0) as running:
        yield running


def strict_json(data: bytes):
    """json.loads that refuses NaN/Infinity, which standard JSON does not have."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token} in {data[:200]!r}")
    return json.loads(data, parse_constant=refuse)


def assert_answer(status: int, data: bytes, allowed=(200, 400, 404, 405, 411, 413)) -> None:
    assert status in allowed, (status, data[:300])
    answer = strict_json(data)
    assert isinstance(answer, dict) and ("error" in answer) == (status != 200), answer
    if status != 200:
        assert isinstance(answer["error"], str) and answer["error"] and "Traceback" not in answer["error"]


def call(server, method, path, body):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)  # a hang fails the test
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


PATH = st.one_of(
    st.sampled_from(["/v1/models/cgan:predict", "/v1/models/cgan/versions/1:predict", "/v1/models/cgan",
                     "/v1/models/cgan/metadata", "/v1/models/cgan/versions/2", "/v1/models/../cgan:predict",
                     "/v1/models/cgan/versions/x:predict", "/v1/models/cgan:regress", "/"]),
    st.text(st.sampled_from("/v1modelsgan:predict.%2F?#-_0129"), max_size=40).map(lambda p: "/" + p),
)


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(REQUEST.map(json.dumps), JSON_VALUE.map(json.dumps), st.binary(max_size=200)),
       path=PATH, method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
def test_any_request_to_the_server_gets_a_json_answer_never_a_500(server, body, path, method):
    assert_answer(*call(server, method, path, body))


@settings(max_examples=100, deadline=None)
@given(request_line=st.binary(max_size=60), headers=st.lists(st.binary(max_size=30), max_size=3))
def test_garbage_on_the_socket_is_answered_or_closed_promptly(server, request_line, headers):
    raw = b"\r\n".join([request_line, *headers]).replace(b"\r\n\r\n", b"\r\n") + b"\r\n\r\n"
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # nothing more is coming: the server must not wait for it
        answer = b""
        while chunk := sock.recv(65536):  # a hang raises socket.timeout
            answer += chunk
    if answer:  # an empty request line may just be closed; anything else gets a JSON answer
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        # the HTTP parser's own refusals: 414/431 for long lines or many headers, 505 for HTTP/2+
        assert_answer(status, body[:length], allowed=(200, 400, 404, 405, 411, 413, 414, 431, 505))


@settings(max_examples=100, deadline=None)
@given(num_images=st.integers(-2, MAX_IMAGES + 2), seed=st.integers(-2**31, 2**31 - 1),
       labels=st.lists(st.integers(-2, CLASSES + 1), max_size=MAX_IMAGES + 1),
       latent=st.lists(st.floats(-1e6, 1e6, width=32), min_size=LATENT, max_size=LATENT))
def test_model_calls_with_any_numbers_answer_200_or_a_named_400(server, num_images, seed, labels, latent):
    """Values that pass the request checks but not the model's own (labels out of range, too
    few or too many labels): TF's InvalidArgumentError becomes a 400 with its message."""
    png = {"signature_name": "generate_png", "inputs": {"num_images": num_images, "seed": seed, "labels": labels}}
    rows = {"instances": [{"latent": latent, "labels": label} for label in labels]}
    for body in (png, rows):
        status, data = call(server, "POST", "/v1/models/cgan:predict", json.dumps(body))
        assert_answer(status, data)
        valid_labels = bool(labels) and all(0 <= label < CLASSES for label in labels)
        if body is rows:
            assert (status == 200) == valid_labels, data[:300]
        else:
            fits = 1 <= num_images <= MAX_IMAGES and len(labels) in (1, num_images)
            assert (status == 200) == (valid_labels and fits), data[:300]
            if status == 200:
                assert len(strict_json(data)["outputs"]) == num_images

"""A local model server speaking TensorFlow Serving's REST API, with hot reload.

    python -m components.serving.server --model_base_path serving/gan --model_name gan
    curl localhost:8501/v1/models/gan
    curl localhost:8501/v1/models/gan/metadata
    curl -d '{"signature_name": "generate_png", "inputs": {"num_images": 4, "seed": 0}}' \\
        localhost:8501/v1/models/gan:predict

Endpoints (TF Serving's REST API, https://www.tensorflow.org/tfx/serving/api_rest):
  GET  /v1/models/NAME[/versions/V]             model_version_status
  GET  /v1/models/NAME[/versions/V]/metadata    model_spec + signature_def (proto3 JSON)
  POST /v1/models/NAME[/versions/V]:predict     {"signature_name"?, "instances" | "inputs"}

Differences from TF Serving, on purpose:
  * every DT_STRING output (the generator's PNGs) is returned as {"b64": ...}; TF Serving does
    that only for outputs whose name ends in "_bytes";
  * the metadata answer also carries the exported gan_metadata.json under metadata.gan_metadata;
  * limits: images per request (--max_images, batch dimension and num_images) and body size
    (--max_body_bytes, 413 before the body is read); unknown top-level request keys are a 400;
  * only the newest complete version is served (TF Serving's default policy), and a version must
    have been unchanged for --settle_s seconds before it is loaded.
The server binds 127.0.0.1 unless --host says otherwise. It has no authentication.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from components.serving import json_codec
from components.serving.json_codec import RequestError
from components.serving.model_store import (
    SERVING_DEFAULT,
    LoadedModel,
    ModelNotFound,
    ModelStore,
    Poller,
    SignatureInfo,
    parse_model_config,
    validate_model_name,
)

LOG = logging.getLogger("components.serving")

DEFAULT_PORT = 8501
DEFAULT_MODEL_NAME = "gan"
DEFAULT_MAX_IMAGES = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 64       # open connections (one thread each); more get a 503
DEFAULT_HEADER_TIMEOUT_S = 10.0    # request line + headers, including a keep-alive connection's idle wait
DEFAULT_BODY_TIMEOUT_S = 30.0
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]*)(?:/versions/(?P<version>[^/:]*))?(?P<suffix>/metadata|:[A-Za-z_]+)?/?$"
)
_TOP_LEVEL_KEYS = {"signature_name", "instances", "inputs"}


@dataclass
class Response:
    status: int
    payload: object = None  # encoded with json_codec.encode unless body is given
    headers: dict = field(default_factory=dict)
    close: bool = False
    body: bytes | None = None

    def encoded(self) -> bytes:
        if self.body is None:
            self.body = json_codec.encode(self.payload)
        return self.body


def error(status: int, message: str, **kwargs) -> Response:
    return Response(status, {"error": message}, **kwargs)


@dataclass(frozen=True)
class Route:
    kind: str  # "status" | "metadata" | "predict"
    store: ModelStore
    version: int | None


def _clean_tf_message(message: str) -> str:
    message = message.split("\n\t [[", 1)[0]
    message = re.sub(r"\s*\[Op:[^\]]*\]", "", message).strip()
    return message[:500]


class ServingApp:
    """Routing and request handling, independent of the HTTP plumbing."""

    def __init__(
        self,
        models: dict[str, str],
        *,
        max_images: int = DEFAULT_MAX_IMAGES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_interval_s: float = 1.0,
        settle_s: float = 1.0,
        max_concurrent: int = 0,
        warmup: bool = True,
    ):
        if not models:
            raise ValueError("no models to serve")
        if max_images < 1 or max_body_bytes < 1:
            raise ValueError("max_images and max_body_bytes must be positive")
        self.stores = {name: ModelStore(name, path, settle_s=settle_s, warmup=warmup) for name, path in models.items()}
        self.max_images = int(max_images)
        self.max_body_bytes = int(max_body_bytes)
        self.poller = Poller(list(self.stores.values()), interval_s=poll_interval_s)
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent > 0 else None

    # ------------------------------------------------------------------ lifecycle
    def load_initial(self) -> None:
        self.poller.poll_all()
        for store in self.stores.values():
            if store.current() is None:
                LOG.warning("model %s: nothing to serve yet under %s (%s); polling", store.name, store.base_path, store.last_problem)

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()

    # ------------------------------------------------------------------ routing
    def route(self, method: str, raw_path: str) -> Route | Response:
        path = raw_path.split("?", 1)[0].split("#", 1)[0]
        match = _ROUTE.match(path)
        if not match:
            return error(404, f"unknown path {path[:200]!r}; the API is /v1/models/NAME[/versions/V][/metadata | :predict]")
        suffix = match["suffix"] or ""
        if suffix == "":
            kind, allowed = "status", "GET"
        elif suffix == "/metadata":
            kind, allowed = "metadata", "GET"
        elif suffix == ":predict":
            kind, allowed = "predict", "POST"
        elif suffix in (":classify", ":regress"):
            return error(404, f"{suffix[1:]} is not supported: the generator's signatures take tensors, use :predict")
        else:
            return error(404, f"unknown method {suffix!r}; use :predict")
        if method != allowed:
            return error(405, f"{method} not allowed here; use {allowed}", headers={"Allow": allowed})
        try:
            name = validate_model_name(match["name"])
        except ValueError as exc:
            return error(400, str(exc))
        version = None
        if match["version"] is not None:
            if not re.fullmatch(r"[0-9]{1,19}", match["version"]):
                return error(400, f"invalid version {match['version'][:40]!r}: versions are integers")
            version = int(match["version"])
        store = self.stores.get(name)
        if store is None:
            spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            return error(404, f"Servable not found for request: {spec}: unknown model name")
        return Route(kind, store, version)

    # ------------------------------------------------------------------ GET
    def status(self, route: Route) -> Response:
        try:
            return Response(200, {"model_version_status": route.store.status(route.version)})
        except ModelNotFound as exc:
            return error(404, str(exc))

    def metadata(self, route: Route) -> Response:
        try:
            model = route.store.get(route.version)
        except ModelNotFound as exc:
            return error(404, str(exc))
        metadata = {"signature_def": {"signature_def": model.signature_def_json}}
        if model.gan_metadata is not None:
            metadata["gan_metadata"] = model.gan_metadata
        payload = {
            "model_spec": {"name": model.name, "signature_name": "", "version": str(model.version)},
            "metadata": metadata,
        }
        return Response(200, payload, headers={"X-Model-Version": str(model.version)})

    # ------------------------------------------------------------------ POST :predict
    def predict(self, route: Route, body: bytes) -> Response:
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return error(400, f"malformed JSON request body: {exc}")
        if not isinstance(request, dict):
            return error(400, 'the request body must be a JSON object: {"instances": [...]} or {"inputs": ...}')
        unknown = sorted(set(request) - _TOP_LEVEL_KEYS)
        if unknown:
            return error(400, f"unknown key(s) {unknown} in request; allowed: signature_name, instances, inputs")
        has_instances, has_inputs = "instances" in request, "inputs" in request
        if has_instances and has_inputs:
            return error(400, 'use either "instances" (row format) or "inputs" (columnar format), not both')
        if not (has_instances or has_inputs):
            return error(400, 'missing "instances" (row format) or "inputs" (columnar format)')
        signature_name = request.get("signature_name", SERVING_DEFAULT)
        if not isinstance(signature_name, str):
            return error(400, '"signature_name" must be a string')
        signature_name = signature_name or SERVING_DEFAULT
        try:
            model = route.store.get(route.version)
            signature = model.signature(signature_name)
        except ModelNotFound as exc:
            return error(404, str(exc))
        try:
            if has_instances:
                feed = self._parse_rows(signature, request["instances"])
            else:
                feed = self._parse_columns(signature, request["inputs"])
            self._check_limits(signature, feed)
        except RequestError as exc:
            return error(400, str(exc))
        outputs = self._call(model, signature, feed)
        if isinstance(outputs, Response):
            return outputs
        headers = {"X-Model-Version": str(model.version)}
        if has_inputs:
            value = next(iter(outputs.values())) if len(outputs) == 1 else outputs
            return Response(200, {"outputs": value}, headers=headers)
        if len(outputs) == 1:
            return Response(200, {"predictions": next(iter(outputs.values()))}, headers=headers)
        batch = {v.shape[0] if v.ndim else None for v in outputs.values()}
        if len(batch) != 1 or None in batch:
            return error(400, "outputs do not share a batch dimension; use the columnar format (\"inputs\")")
        rows = [{k: v[i] for k, v in outputs.items()} for i in range(batch.pop())]
        return Response(200, {"predictions": rows}, headers=headers)

    def _parse_rows(self, signature: SignatureInfo, instances) -> dict:
        if not isinstance(instances, list):
            raise RequestError('"instances" must be a list with one entry per example')
        if not instances:
            raise RequestError('"instances" is empty')
        scalars = [n for n, s in signature.inputs.items() if s.shape == ()]
        if scalars:
            example = {n: (4 if n == "num_images" else 0) for n in scalars}
            raise RequestError(
                f"signature {signature.name!r} has scalar input(s) {scalars}, which the row format "
                f'("instances") cannot express; send the columnar format instead, e.g. '
                f'{{"signature_name": "{signature.name}", "inputs": {json.dumps(example)}}}'
            )
        if len(instances) > self.max_images:
            raise RequestError(f"too many images: {len(instances)} instances, the limit is {self.max_images} per request")
        names = list(signature.inputs)
        if len(names) == 1:
            name = names[0]
            if all(isinstance(i, dict) and set(i) == {name} for i in instances):
                values = [i[name] for i in instances]
            else:
                for i in instances:
                    if isinstance(i, dict) and set(i) != {"b64"}:
                        raise RequestError(f"instance keys {sorted(i)} do not match the signature's input {names}")
                values = instances
            return {name: self._convert(signature, name, values)}
        wanted = set(names)
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise RequestError(f"instance {index}: expected an object with the inputs {names}")
            if set(instance) != wanted:
                raise RequestError(self._names_problem(f"instance {index}", set(instance), names))
        return {n: self._convert(signature, n, [i[n] for i in instances]) for n in names}

    def _parse_columns(self, signature: SignatureInfo, inputs) -> dict:
        names = list(signature.inputs)
        is_b64_value = isinstance(inputs, dict) and set(inputs) == {"b64"} and "b64" not in names
        if isinstance(inputs, dict) and not is_b64_value:
            if set(inputs) != set(names):
                raise RequestError(self._names_problem('"inputs"', set(inputs), names))
            for name in names:  # refuse oversized batches before converting them
                self._check_batch(signature, name, inputs[name])
            return {n: self._convert(signature, n, inputs[n]) for n in names}
        if len(names) != 1:
            raise RequestError(f'"inputs" must be an object mapping the input names {names} to values')
        self._check_batch(signature, names[0], inputs)
        return {names[0]: self._convert(signature, names[0], inputs)}

    def _check_batch(self, signature: SignatureInfo, name: str, value) -> None:
        spec = signature.inputs[name]
        if spec.shape and spec.shape[0] is None and isinstance(value, (list, np.ndarray)) and len(value) > self.max_images:
            raise RequestError(
                f'too many images: input "{name}" has a batch of {len(value)}, the limit is {self.max_images} per request'
            )

    @staticmethod
    def _names_problem(where: str, given: set, names: list) -> str:
        missing = [n for n in names if n not in given]
        extra = sorted(given - set(names))
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if extra:
            parts.append(f"unknown input(s) {extra}")
        return f"{where}: {' and '.join(parts)}; the signature takes {names}"

    @staticmethod
    def _convert(signature: SignatureInfo, name: str, value) -> np.ndarray:
        spec = signature.inputs[name]
        array = json_codec.to_array(value, spec.numpy_dtype, name)
        if spec.shape is not None:
            json_codec.check_shape(array, spec.shape, name)
        return array

    def _check_limits(self, signature: SignatureInfo, feed: dict) -> None:
        for name, array in feed.items():
            if array.ndim >= 1:
                self._check_batch(signature, name, array)
            if name == "num_images" and array.ndim == 0 and array.dtype.kind in "iu":
                count = int(array)
                if count < 1:
                    raise RequestError(f"num_images must be positive, got {count}")
                if count > self.max_images:
                    raise RequestError(f"too many images: num_images={count}, the limit is {self.max_images} per request")

    def _call(self, model: LoadedModel, signature: SignatureInfo, feed: dict):
        import tensorflow as tf

        tensors = {
            name: tf.constant(array, dtype=tf.string) if array.dtype == object else tf.constant(array)
            for name, array in feed.items()
        }
        if self._slots is not None:
            self._slots.acquire()
        try:
            outputs = {name: tensor.numpy() for name, tensor in signature.function(**tensors).items()}
            bad = [n for n, v in outputs.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
            if bad:  # standard JSON has no NaN/Infinity: say so instead of emitting them
                LOG.error("model %s version %d signature %s returned non-finite values in %s",
                          model.name, model.version, signature.name, bad)
                return error(500, f"the model returned NaN or infinite values in output(s) {bad}")
            return outputs
        except tf.errors.InvalidArgumentError as exc:
            return error(400, _clean_tf_message(exc.message))
        except tf.errors.OpError as exc:
            LOG.error("model %s version %d signature %s failed: %s", model.name, model.version, signature.name, exc)
            return error(500, _clean_tf_message(exc.message))
        finally:
            if self._slots is not None:
                self._slots.release()


# ---------------------------------------------------------------------- HTTP plumbing
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "gan-serving"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on keep-alive connections
    timeout = 120  # per-read socket timeout, a backstop: the deadlines below bound slow clients

    server: "ServingHTTPServer"

    # Deadlines that a slow client cannot stretch (a per-read socket timeout restarts with every
    # byte, so a client sending one byte a second would hold its thread for ever): a watchdog
    # shuts the connection down when the request line and headers, or the body, take too long.
    def setup(self):
        super().setup()
        self._watchdog: threading.Timer | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._watchdog = threading.Timer(seconds, self._expire, args=(what,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _expire(self, what: str) -> None:
        LOG.info("closing the connection from %s: %s took too long", self.address_string(), what)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_one_request(self):
        self._arm(self.server.header_timeout_s, "the request line and headers")
        try:
            super().handle_one_request()
        finally:
            self._disarm()

    def parse_request(self):
        ok = super().parse_request()
        self._disarm()  # headers are in; the body has its own deadline
        return ok

    def finish(self):
        self._disarm()
        super().finish()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if self.server.access_log:
            LOG.info("%s %s", self.address_string(), fmt % args)

    def send_error(self, code, message=None, explain=None):  # JSON instead of the stdlib's HTML
        if code == HTTPStatus.NOT_IMPLEMENTED:  # the stdlib's answer to an unknown method
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command!r} not allowed"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._respond(error(code, message or phrase, close=True))

    def handle_expect_100(self):
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.server.app.max_body_bytes:
            self._respond(self._too_large(int(length)))
            return False
        return super().handle_expect_100()

    def _too_large(self, length: int) -> Response:
        limit = self.server.app.max_body_bytes
        return error(413, f"request body of {length} bytes exceeds the limit of {limit} bytes", close=True)

    def do_GET(self):  # noqa: N802
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_PUT(self):  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._handle("PATCH")

    def do_HEAD(self):  # noqa: N802
        self._handle("HEAD")

    def do_OPTIONS(self):  # noqa: N802
        self._handle("OPTIONS")

    def _handle(self, method: str) -> None:
        app = self.server.app
        try:
            route = app.route(method, self.path)
            if isinstance(route, Response):
                self._discard_body()
                response = route
            elif route.kind == "predict":
                body = self._read_body()
                if isinstance(body, Response) or body is None:
                    response = body
                else:
                    response = app.predict(route, body)
            else:
                self._discard_body()
                response = app.status(route) if route.kind == "status" else app.metadata(route)
        except Exception as exc:  # a bug must not kill the connection silently
            LOG.exception("internal error handling %s %s", method, self.path)
            response = error(500, f"internal error: {type(exc).__name__}: {exc}")
        if response is not None:
            self._respond(response)

    def _content_length(self) -> int | Response:
        if self.headers.get("Transfer-Encoding"):
            return error(411, "chunked request bodies are not supported; send Content-Length", close=True)
        length = self.headers.get("Content-Length")
        if length is None:
            return error(411, "Content-Length required", close=True)
        if not length.strip().isdigit():
            return error(400, f"invalid Content-Length {length[:40]!r}", close=True)
        length = int(length)
        if length > self.server.app.max_body_bytes:
            return self._too_large(length)
        return length

    def _read_body(self) -> bytes | Response | None:
        length = self._content_length()
        if isinstance(length, Response):
            return length
        self._arm(self.server.body_timeout_s, "the request body")
        try:
            body = self.rfile.read(length)
        except OSError:
            body = b""
        finally:
            self._disarm()
        if len(body) < length:  # client went away (or was too slow) mid-body
            self.close_connection = True
            return None
        return body

    def _discard_body(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return
        length = self.headers.get("Content-Length")
        if not length or length.strip() == "0":
            return
        if length.strip().isdigit() and int(length) <= self.server.app.max_body_bytes:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _respond(self, response: Response) -> None:
        """Status line, headers and body in one write: one wake-up for the client, not two."""
        body = response.encoded()
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        headers = {
            "Server": self.server_version,
            "Date": self.date_time_string(),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
            **response.headers,
        }
        if response.close:
            headers["Connection"] = "close"
            self.close_connection = True
        head = f"{self.protocol_version} {int(response.status)} {phrase}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        ) + "\r\n"
        self.log_request(response.status, len(body))
        try:
            self.wfile.write(head.encode("latin-1") + (body if self.command != "HEAD" else b""))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class ServingHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` of them: a connection over the cap
    gets an immediate 503 and is closed, so idle or slow clients cannot exhaust the threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: ServingApp, access_log: bool = False,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                 body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        if max_connections < 1 or header_timeout_s <= 0 or body_timeout_s <= 0:
            raise ValueError("max_connections, header_timeout_s and body_timeout_s must be positive")
        self.app = app
        self.access_log = access_log
        self.header_timeout_s = float(header_timeout_s)
        self.body_timeout_s = float(body_timeout_s)
        self._connection_slots = threading.BoundedSemaphore(max_connections)
        self.max_connections = int(max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        if not self._connection_slots.acquire(blocking=False):
            body = error(503, f"too many connections (limit {self.max_connections}); retry later").encoded()
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
            try:
                request.settimeout(1.0)
                request.sendall(head.encode("latin-1") + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connection_slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connection_slots.release()


class RunningServer:
    """A server running in background threads (tests, benchmarks, notebooks)."""

    def __init__(self, app: ServingApp, httpd: ServingHTTPServer):
        self.app = app
        self.httpd = httpd
        self.host, self.port = httpd.server_address[:2]
        self.url = f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        app.start()

    def close(self) -> None:
        self.app.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_server(
    models: dict[str, str], host: str = "127.0.0.1", port: int = 0, access_log: bool = False,
    max_connections: int = DEFAULT_MAX_CONNECTIONS, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S, **app_kwargs
) -> RunningServer:
    """Loads ``models`` (name -> push directory), then serves them on host:port in the background."""
    app = ServingApp(models, **app_kwargs)
    app.load_initial()
    return RunningServer(app, ServingHTTPServer((host, port), app, access_log=access_log, max_connections=max_connections,
                                                header_timeout_s=header_timeout_s, body_timeout_s=body_timeout_s))


# ---------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the `serve` command (names follow tensorflow_model_server where it has one)."""
    parser.add_argument("--model_base_path", help="push directory: <path>/<integer version>/saved_model.pb")
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME, help="name in /v1/models/NAME (default: %(default)s)")
    parser.add_argument(
        "--model_config",
        help="file mapping names to push directories: JSON {\"name\": \"path\"} or TF Serving's "
        "model_config_list text format; instead of --model_base_path",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument(
        "--port", "--rest_api_port", dest="port", type=int, default=DEFAULT_PORT,
        help="REST port (default: %(default)s; 0 picks a free port and prints it)",
    )
    parser.add_argument(
        "--poll_interval_s", "--file_system_poll_wait_seconds", dest="poll_interval_s", type=float, default=1.0,
        help="seconds between checks for newly pushed versions; 0 disables hot reload (default: %(default)s)",
    )
    parser.add_argument(
        "--settle_s", type=float, default=1.0,
        help="a version is loaded only once none of its files changed for this long (default: %(default)s)",
    )
    parser.add_argument(
        "--max_images", type=int, default=DEFAULT_MAX_IMAGES,
        help="most images per request: batch size of serving_default, num_images of generate_png (default: %(default)s)",
    )
    parser.add_argument(
        "--max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body accepted; larger ones get 413 (default: %(default)s)",
    )
    parser.add_argument(
        "--max_concurrent", type=int, default=0,
        help="most model calls running at once; 0 = one per connection (default: %(default)s)",
    )
    parser.add_argument(
        "--max_connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
        help="most open connections (one thread each); more get 503 at once (default: %(default)s)",
    )
    parser.add_argument(
        "--header_timeout_s", type=float, default=DEFAULT_HEADER_TIMEOUT_S,
        help="seconds a connection may take to send a request's headers, idle keep-alive included (default: %(default)s)",
    )
    parser.add_argument(
        "--body_timeout_s", type=float, default=DEFAULT_BODY_TIMEOUT_S,
        help="seconds a request's body may take to arrive (default: %(default)s)",
    )
    parser.add_argument("--access_log", action="store_true", help="log every request")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def models_from_args(args) -> dict[str, str]:
    """name -> push directory from --model_config or --model_base_path/--model_name."""
    if bool(args.model_config) == bool(args.model_base_path):
        raise ValueError("give exactly one of --model_base_path or --model_config")
    if args.model_config:
        return parse_model_config(args.model_config)
    return {validate_model_name(args.model_name): args.model_base_path}


class _Terminate(Exception):
    pass


def _raise_terminate(signum, frame):
    raise _Terminate()


def run(args, on_ready=None) -> int:
    """Serves until interrupted (Ctrl-C or SIGTERM). Returns a process exit status.

    ``on_ready(httpd)``, if given, is called once the socket listens (tests use it to stop the
    server with ``httpd.shutdown()`` from another thread)."""
    logging.basicConfig(level=getattr(logging, args.log_level, logging.INFO), format="%(asctime)s %(levelname)s %(message)s")
    try:
        models = models_from_args(args)
        app = ServingApp(
            models,
            max_images=args.max_images,
            max_body_bytes=args.max_body_bytes,
            poll_interval_s=args.poll_interval_s,
            settle_s=args.settle_s,
            max_concurrent=args.max_concurrent,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app.load_initial()
    try:
        httpd = ServingHTTPServer((args.host, args.port), app, access_log=args.access_log,
                                  max_connections=args.max_connections, header_timeout_s=args.header_timeout_s,
                                  body_timeout_s=args.body_timeout_s)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    host, port = httpd.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving {sorted(models)} on http://{shown}:{port}", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminate)
    app.start()
    if on_ready is not None:
        on_ready(httpd)
    try:
        httpd.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Terminate):
        pass
    finally:
        app.stop()
        httpd.server_close()
    print("server stopped", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.serving.server", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

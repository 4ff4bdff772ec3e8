"""The serving application: routes TF Serving's REST API paths to the model stores and answers
them, independent of the HTTP plumbing (server/http_server.py).

Endpoints (TF Serving's REST API, https://www.tensorflow.org/tfx/serving/api_rest; V = a version
number, L = a version label from the model config file):
  GET  /v1/models/NAME[/versions/V | /labels/L]             model_version_status
  GET  /v1/models/NAME[/versions/V | /labels/L]/metadata    model_spec + signature_def (proto3 JSON)
  POST /v1/models/NAME[/versions/V | /labels/L]:predict     {"signature_name"?, "instances" | "inputs"}
KServe's Open Inference Protocol (V2, server/v2_format.py):
  GET  /v2/health/live, /v2/health/ready, /v2                 liveness, readiness, server metadata
  GET  /v2/models/NAME[/versions/V][/ready]                   model metadata, model readiness
  POST /v2/models/NAME[/versions/V]/infer                     {"inputs": [{"name", "shape", "datatype", "data"}]}
Prometheus (server/metrics.py):
  GET  /monitoring/prometheus/metrics
As in TF Serving, the words of a path (v1, models, versions, labels, metadata, predict) match in
any case; model names and labels are case-sensitive.

Differences from TF Serving, on purpose:
  * every DT_STRING output (the generator's PNGs) is returned as {"b64": ...}; TF Serving does
    that only for outputs whose name ends in "_bytes";
  * the metadata answer also carries the exported gan_metadata.json under metadata.gan_metadata
    (image shape, num_classes, class_names, lineage);
  * a label outside the model's classes is a 400 naming it, the valid labels and the class names,
    checked before the model runs;
  * limits: images per request (max_images, batch dimension and num_images) and body size
    (max_body_bytes, 413 before the body is read); unknown top-level request keys are a 400;
  * inputs with NaN or infinite values are a 400, and outputs with them a 500 (standard JSON has
    no NaN, and a generator fed NaN returns NaN images);
  * a version must have been unchanged for settle_s seconds before it is loaded;
  * a version label may name a version that is not loaded yet (TF Serving refuses that at start
    unless --allow_version_labels_for_unavailable_models): requests by that label get 404 until it is.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from tfx_gan.server import json_codec, predict_format, v2_format
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import LoadedModel, ModelNotFound, SignatureInfo
from tfx_gan.server.metrics import DEFAULT_PATH as DEFAULT_METRICS_PATH
from tfx_gan.server.metrics import ServingMetrics, status_name
from tfx_gan.server.model_config import ModelSource, validate_model_name
from tfx_gan.server.model_store import ModelStore, Poller

LOG = logging.getLogger("tfx_gan.server")

DEFAULT_MAX_IMAGES = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_V1_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]*)(?:/versions/(?P<version>[^/:]*)|/labels/(?P<label>[^/:]*))?"
    r"(?P<suffix>/metadata|:[A-Za-z_]+)?/?$",
    re.IGNORECASE,
)
_V2_ROUTE = re.compile(r"^/v2/models/(?P<name>[^/:]*)(?:/versions/(?P<version>[^/:]*))?(?P<suffix>/ready|/infer)?/?$",
                       re.IGNORECASE)
_V2_SERVER_ROUTES = {"/v2/health/live": "v2_live", "/v2/health/ready": "v2_ready", "/v2": "v2_server"}
_METRICS_API = {"status": "status", "metadata": "metadata", "predict": "predict",
                "v2_model": "metadata", "v2_model_ready": "ready", "v2_infer": "infer"}
SERVER_NAME = "tfx_gan"


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
    kind: str  # status, metadata, predict | v2_live, v2_ready, v2_server, v2_model, v2_model_ready, v2_infer | metrics
    store: ModelStore | None = None
    version: int | None = None
    label: str | None = None

    @property
    def has_body(self) -> bool:
        return self.kind in ("predict", "v2_infer")


def unknown_model_message(name: str, version: int | None) -> str:
    """TF Serving's words for a model name it does not serve (REST 404, gRPC NOT_FOUND)."""
    spec = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
    return f"Servable not found for request: {spec}: unknown model name"


def _clean_tf_message(message: str) -> str:
    message = message.split("\n\t [[", 1)[0]
    message = re.sub(r"\s*\[Op:[^\]]*\]", "", message).strip()
    return message[:500]


class ServingApp:
    """Routing and request handling, independent of the HTTP plumbing."""

    def __init__(
        self,
        models: dict[str, str | ModelSource],
        *,
        max_images: int = DEFAULT_MAX_IMAGES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_interval_s: float = 1.0,
        settle_s: float = 1.0,
        max_concurrent: int = 0,
        warmup: bool = True,
        metrics_path: str | None = DEFAULT_METRICS_PATH,
    ):
        if not models:
            raise ValueError("no models to serve")
        if max_images < 1 or max_body_bytes < 1:
            raise ValueError("max_images and max_body_bytes must be positive")
        sources = {name: ModelSource(s) if isinstance(s, str) else s for name, s in models.items()}
        self.stores = {
            name: ModelStore(name, source.base_path, settle_s=settle_s, warmup=warmup, policy=source.policy,
                             labels=dict(source.labels))
            for name, source in sources.items()
        }
        self.max_images = int(max_images)
        self.max_body_bytes = int(max_body_bytes)
        self.poller = Poller(list(self.stores.values()), interval_s=poll_interval_s)
        self._slots = threading.BoundedSemaphore(max_concurrent) if max_concurrent > 0 else None
        self.metrics = ServingMetrics(metrics_path) if metrics_path else None

    # ------------------------------------------------------------------ lifecycle
    def load_initial(self) -> None:
        self.poller.poll_all()
        for store in self.stores.values():
            if store.current() is None:
                LOG.warning("model %s: nothing to serve yet under %s (%s); polling", store.name, store.base_path, store.last_problem)
            for label, version in sorted(store.labels.items()):
                if version not in store.loaded_versions():
                    LOG.warning("model %s: label %r names version %d, which is not loaded (serving %s)",
                                store.name, label, version, store.loaded_versions())

    def start(self) -> None:
        self.poller.start()

    def stop(self) -> None:
        self.poller.stop()

    # ------------------------------------------------------------------ routing
    def route(self, method: str, raw_path: str) -> Route | Response:
        path = raw_path.split("?", 1)[0].split("#", 1)[0]
        lowered = path.lower()
        if self.metrics is not None and path.rstrip("/") == self.metrics.path.rstrip("/"):
            return self._method_not_allowed(method, "GET") or Route("metrics")
        if lowered.rstrip("/") in _V2_SERVER_ROUTES:
            return self._method_not_allowed(method, "GET") or Route(_V2_SERVER_ROUTES[lowered.rstrip("/")])
        if lowered.startswith("/v2/"):
            return self._route_v2(method, path)
        match = _V1_ROUTE.match(path)
        if not match:
            return error(404, f"unknown path {path[:200]!r}; the API is /v1/models/NAME[/versions/V | /labels/L]"
                              "[/metadata | :predict], /v2/... (KServe V2) and /v2/health/{live,ready}")
        suffix = (match["suffix"] or "").lower()
        if suffix == "":
            kind, allowed = "status", "GET"
        elif suffix == "/metadata":
            kind, allowed = "metadata", "GET"
        elif suffix == ":predict":
            kind, allowed = "predict", "POST"
        elif suffix in (":classify", ":regress"):
            return error(404, f"{suffix[1:]} is not supported: the generator's signatures take tensors, use :predict")
        else:
            return error(404, f"unknown method {match['suffix']!r}; use :predict")
        return (self._method_not_allowed(method, allowed)
                or self._model_route(kind, match["name"], match["version"], match["label"]))

    def _route_v2(self, method: str, path: str) -> Route | Response:
        match = _V2_ROUTE.match(path)
        if not match:
            return error(404, f"unknown path {path[:200]!r}; KServe V2 paths are /v2/health/{{live,ready}}, /v2, "
                              "/v2/models/NAME[/versions/V][/ready | /infer]")
        suffix = (match["suffix"] or "").lower()
        kind, allowed = {"": ("v2_model", "GET"), "/ready": ("v2_model_ready", "GET"), "/infer": ("v2_infer", "POST")}[suffix]
        return self._method_not_allowed(method, allowed) or self._model_route(kind, match["name"], match["version"], None)

    @staticmethod
    def _method_not_allowed(method: str, allowed: str) -> Response | None:
        """The 405 for a method the path does not take (HEAD goes wherever GET does), else None."""
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            return error(405, f"{method} not allowed here; use {allowed}", headers={"Allow": allowed})
        return None

    def _model_route(self, kind: str, name: str, version: str | None, label: str | None) -> Route | Response:
        try:
            name = validate_model_name(name)
        except ValueError as exc:
            return error(400, str(exc))
        number = None
        if version is not None:
            if not re.fullmatch(r"[0-9]{1,19}", version):
                return error(400, f"invalid version {version[:40]!r}: versions are integers")
            number = int(version)
        if label is not None and not label:
            return error(400, "empty version label")
        store = self.stores.get(name)
        if store is None:
            return error(404, unknown_model_message(name, number))
        return Route(kind, store, number, label)

    # ------------------------------------------------------------------ answering
    def answer(self, route: Route, body: bytes = b"", headers=None) -> Response:
        """The response to a routed request (``body``: the request body of predict and infer;
        ``headers``: the request's, a mapping, which V2's binary data extension reads)."""
        started = time.perf_counter()
        handlers = {
            "status": self.status, "metadata": self.metadata, "predict": self.predict,
            "v2_live": self.v2_live, "v2_ready": self.v2_ready, "v2_server": self.v2_server,
            "v2_model": self.v2_model, "v2_model_ready": self.v2_model_ready, "v2_infer": self.v2_infer,
            "metrics": self.metrics_exposition,
        }
        if route.kind == "v2_infer":
            response = self.v2_infer(route, body, headers)
        else:
            response = handlers[route.kind](route, body) if route.has_body else handlers[route.kind](route)
        if self.metrics is not None and route.store is not None:
            self.metrics.observe(route.store.name, _METRICS_API[route.kind], "V2" if route.kind.startswith("v2_") else "REST",
                                 status_name(response.status), time.perf_counter() - started)
        return response

    # ------------------------------------------------------------------ GET
    def status(self, route: Route) -> Response:
        try:
            return Response(200, {"model_version_status": route.store.status(route.version, route.label)})
        except ModelNotFound as exc:
            return error(404, str(exc))

    def metadata(self, route: Route) -> Response:
        try:
            model = route.store.get(route.version, route.label)
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

    def metrics_exposition(self, route: Route) -> Response:
        return Response(200, headers={"Content-Type": self.metrics.content_type}, body=self.metrics.exposition())

    # ------------------------------------------------------------------ POST :predict
    def predict(self, route: Route, body: bytes) -> Response:
        try:
            request = predict_format.parse_body(body)
        except RequestError as exc:
            return error(400, str(exc))
        called = self._checked_call(route, request.signature_name,
                                    lambda signature: predict_format.build_feed(signature, request, self.max_images))
        if isinstance(called, Response):
            return called
        model, outputs = called
        try:
            payload = predict_format.response_payload(outputs, request.columnar)
        except RequestError as exc:
            return error(400, str(exc))
        return Response(200, payload, headers={"X-Model-Version": str(model.version)})

    # ------------------------------------------------------------------ KServe V2
    def v2_live(self, route: Route) -> Response:
        return Response(200, {"live": True})

    def v2_ready(self, route: Route) -> Response:
        """Ready when every configured model has a version loaded (503 and the missing ones otherwise)."""
        waiting = sorted(name for name, store in self.stores.items() if store.current() is None)
        if waiting:
            return Response(503, {"ready": False, "error": f"no version loaded yet for model(s) {waiting}"})
        return Response(200, {"ready": True})

    def v2_server(self, route: Route) -> Response:
        return Response(200, {"name": SERVER_NAME, "version": _package_version(), "extensions": []})

    def v2_model(self, route: Route) -> Response:
        try:
            model = route.store.get(route.version)
        except ModelNotFound as exc:
            return error(404, str(exc))
        return Response(200, v2_format.model_metadata(model, route.store.loaded_versions()))

    def v2_model_ready(self, route: Route) -> Response:
        try:
            model = route.store.get(route.version)
        except ModelNotFound as exc:
            return Response(503, {"name": route.store.name, "ready": False, "error": str(exc)})
        return Response(200, {"name": model.name, "version": str(model.version), "ready": True})

    def v2_infer(self, route: Route, body: bytes, headers=None) -> Response:
        try:
            header_length = v2_format.json_length((headers or {}).get("Inference-Header-Content-Length"))
            request = v2_format.parse_infer(body, header_length)
        except RequestError as exc:
            return error(400, str(exc))
        called = self.v2_call(route, request)
        if isinstance(called, Response):
            return called
        model, outputs = called
        try:
            payload, binary = v2_format.infer_response(model, request, outputs)
        except RequestError as exc:
            return error(400, str(exc))
        if binary is None:
            return Response(200, payload)
        head = json_codec.encode(payload)
        return Response(200, body=head + binary, headers={"Inference-Header-Content-Length": str(len(head)),
                                                          "Content-Type": "application/octet-stream"})

    def v2_call(self, route: Route, request: v2_format.InferRequest) -> tuple | Response:
        """(model, outputs) for a V2 infer request (REST or gRPC), or its error Response."""
        def feed(signature):
            v2_format.check_inputs(signature, request)
            columns = predict_format.PredictRequest(signature.name, True, request.inputs)
            return predict_format.build_feed(signature, columns, self.max_images)

        return self._checked_call(route, request.signature_name, feed)

    # ------------------------------------------------------------------ the model call
    def _checked_call(self, route: Route, signature_name: str, make_feed) -> tuple | Response:
        """(model, outputs) for a predict or infer request, or its error Response: 404 for the model,
        version, label or signature, 400 for inputs ``make_feed(signature)`` refuses (RequestError)
        or the model's classes refuse, the model call's own errors."""
        try:
            model = route.store.get(route.version, route.label)
            signature = model.signature(signature_name)
        except ModelNotFound as exc:
            return error(404, str(exc))
        try:
            feed = make_feed(signature)
            predict_format.check_labels(feed, model.gan_metadata)
        except RequestError as exc:
            return error(400, str(exc))
        outputs = self.call_model(model, signature, feed)
        return outputs if isinstance(outputs, Response) else (model, outputs)

    def call_model(self, model: LoadedModel, signature: SignatureInfo, feed: dict) -> dict | Response:
        """Runs one signature on checked inputs (REST, V2 and gRPC share it): output name -> array,
        or the error Response (400 for inputs the graph refuses, 500 for a failing model)."""
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


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tfx-gan")
    except metadata.PackageNotFoundError:
        return "0+checkout"

"""The serving application: routes TF Serving's REST API paths to the model stores and answers
them, independent of the HTTP plumbing (server/http_server.py).

Endpoints (TF Serving's REST API, https://www.tensorflow.org/tfx/serving/api_rest):
  GET  /v1/models/NAME[/versions/V]             model_version_status
  GET  /v1/models/NAME[/versions/V]/metadata    model_spec + signature_def (proto3 JSON)
  POST /v1/models/NAME[/versions/V]:predict     {"signature_name"?, "instances" | "inputs"}

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
  * only the newest complete version is served (TF Serving's default policy), and a version must
    have been unchanged for settle_s seconds before it is loaded.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from tfx_gan.server import json_codec, predict_format
from tfx_gan.server.json_codec import RequestError
from tfx_gan.server.loaded_model import LoadedModel, ModelNotFound, SignatureInfo
from tfx_gan.server.model_config import validate_model_name
from tfx_gan.server.model_store import ModelStore, Poller

LOG = logging.getLogger("tfx_gan.server")

DEFAULT_MAX_IMAGES = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]*)(?:/versions/(?P<version>[^/:]*))?(?P<suffix>/metadata|:[A-Za-z_]+)?/?$"
)


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
            return error(404, unknown_model_message(name, version))
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
            request = predict_format.parse_body(body)
        except RequestError as exc:
            return error(400, str(exc))
        try:
            model = route.store.get(route.version)
            signature = model.signature(request.signature_name)
        except ModelNotFound as exc:
            return error(404, str(exc))
        try:
            feed = predict_format.build_feed(signature, request, self.max_images)
            predict_format.check_labels(feed, model.gan_metadata)
        except RequestError as exc:
            return error(400, str(exc))
        outputs = self._call(model, signature, feed)
        if isinstance(outputs, Response):
            return outputs
        try:
            payload = predict_format.response_payload(outputs, request.columnar)
        except RequestError as exc:
            return error(400, str(exc))
        return Response(200, payload, headers={"X-Model-Version": str(model.version)})

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


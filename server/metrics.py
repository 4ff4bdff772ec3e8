"""Prometheus metrics of the model server, under the names TF Serving exports, so that dashboards
and alerts made for TF Serving read this server too:

  :tensorflow:serving:request_count_total{model_name, status}   requests answered, by outcome
  :tensorflow:serving:request_latency{model_name, API, entrypoint} histogram, microseconds

``status`` is the gRPC status name of the answer (OK, NOT_FOUND, INVALID_ARGUMENT, ...; a REST
answer's HTTP status is mapped the way TF Serving maps it), ``API`` the call (predict, metadata,
status, infer, ready), ``entrypoint`` the protocol (REST, GRPC, V2). TF Serving names the counter
``:tensorflow:serving:request_count``; prometheus_client, which writes the exposition format
here, adds the ``_total`` suffix the Prometheus naming rules give counters.

Served at ``/monitoring/prometheus/metrics`` on the REST port (TF Serving's path once its
``--monitoring_config_file`` enables Prometheus; here it is on unless that file turns it off).
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tfx_gan.common.compat import message_class

DEFAULT_PATH = "/monitoring/prometheus/metrics"
# 1 ms .. 100 s: a generator call on a CPU takes 10 ms to a few seconds
_LATENCY_BUCKETS_US = (1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 1e8)

# HTTP status -> the gRPC status name TF Serving reports for the same outcome
_HTTP_STATUS_NAMES = {200: "OK", 400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "UNIMPLEMENTED",
                      411: "INVALID_ARGUMENT", 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def status_name(http_status: int) -> str:
    return _HTTP_STATUS_NAMES.get(http_status, "INTERNAL" if http_status >= 500 else "UNKNOWN")


class ServingMetrics:
    """Request counters and latency histograms of one server (its own registry, so that two
    servers in one process, as in the tests, count apart)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, path: str = DEFAULT_PATH):
        self.path = path
        self.registry = CollectorRegistry()
        self.requests = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                ["model_name", "status"], registry=self.registry)
        self.latency = Histogram(":tensorflow:serving:request_latency",
                                 "Distribution of wall time (in microseconds) for TensorFlow Serving request.",
                                 ["model_name", "API", "entrypoint"], buckets=_LATENCY_BUCKETS_US,
                                 registry=self.registry)

    def observe(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        self.requests.labels(model_name=model_name, status=status).inc()
        self.latency.labels(model_name=model_name, API=api, entrypoint=entrypoint).observe(seconds * 1e6)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def parse_monitoring_config(path: str) -> str | None:
    """The metrics path a TF Serving ``--monitoring_config_file`` sets
    (``prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }``), or None when
    it turns Prometheus off. Raises ValueError for a file that is not such a config."""
    from google.protobuf import text_format

    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        config = text_format.Parse(text, _monitoring_config_class()())
    except text_format.ParseError as exc:
        raise ValueError(f"{path}: not a TF Serving monitoring config "
                         f"(prometheus_config {{ enable: true path: \"{DEFAULT_PATH}\" }}): {exc}") from None
    if not config.prometheus_config.enable:
        return None
    metrics_path = config.prometheus_config.path or DEFAULT_PATH
    if not metrics_path.startswith("/") or metrics_path.lower().rstrip("/") in ("/v1", "/v2") or \
            metrics_path.lower().startswith(("/v1/", "/v2/")):
        raise ValueError(f"{path}: prometheus_config path {metrics_path!r} must start with '/' and not be under /v1 or /v2")
    return metrics_path


def _monitoring_config_class():
    """TF Serving's MonitoringConfig message (tensorflow_serving/config/monitoring_config.proto),
    built from its two-message definition: the tensorflow-serving-api wheel does not ship it."""
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto(name="monitoring_config.proto", package="tensorflow.serving",
                                               syntax="proto3")
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(name="prometheus_config", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                         type_name=".tensorflow.serving.PrometheusConfig",
                         label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool.Add(proto)
    return message_class(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))

"""The `serve` command: a local model server speaking TensorFlow Serving's REST and gRPC APIs, with
hot reload. The ports mean what tensorflow_model_server's do: --port is gRPC (default 8500),
--rest_api_port is REST (default 8501 here; TF Serving's default 0 turns REST off there).

    python -m tfx_gan.server.server --model_base_path serving/gan --model_name gan
    curl localhost:8501/v1/models/gan
    curl localhost:8501/v1/models/gan/metadata
    curl -d '{"signature_name": "generate_png", "inputs": {"num_images": 4, "seed": 0}}' \\
        localhost:8501/v1/models/gan:predict

The REST endpoints (TF Serving's, KServe V2's, Prometheus metrics) and where they differ from TF
Serving: server/app.py; gRPC: server/grpc_service.py; version policies and labels come from
TF Serving's --model_config_file (server/model_config.py). Connection cap
and deadlines: server/http_server.py. The server binds 127.0.0.1 unless --host says
otherwise. It has no authentication.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import sys
import threading
import time

from tfx_gan.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IMAGES, ServingApp, _package_version
from tfx_gan.server.http_server import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    ServingHTTPServer,
)
from tfx_gan.server.metrics import DEFAULT_PATH as DEFAULT_METRICS_PATH
from tfx_gan.server.metrics import parse_monitoring_config
from tfx_gan.server.model_config import ModelSource, parse_model_config, validate_model_name

LOG = logging.getLogger("tfx_gan.server")

DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
DEFAULT_MODEL_NAME = "gan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of the `serve` command (names follow tensorflow_model_server where it has one)."""
    parser.add_argument("--model_base_path", "--push_dir", dest="model_base_path",
                        help="push directory: <path>/<integer version>/saved_model.pb (TF Serving's flag)")
    parser.add_argument("--model_name", default=DEFAULT_MODEL_NAME, help="name in /v1/models/NAME (default: %(default)s)")
    parser.add_argument(
        "--model_config_file", "--model_config", dest="model_config",
        help="several models: TF Serving's model config file (model_config_list { config { name: 'gan' "
        "base_path: 'serving/gan' model_platform: 'tensorflow' } ... }) or JSON {\"name\": \"path\"}; "
        "instead of --model_base_path",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, loopback only)")
    parser.add_argument(
        "--rest_api_port", dest="port", type=int, default=DEFAULT_REST_PORT,
        help="REST port (default: %(default)s; 0 picks a free port and prints it)",
    )
    parser.add_argument(
        "--port", "--grpc_port", dest="grpc_port", type=int, default=DEFAULT_GRPC_PORT,
        help="gRPC port, as in TF Serving: PredictionService and ModelService (default: %(default)s; "
        "0 picks a free port and prints it)",
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
    parser.add_argument(
        "--monitoring_config_file",
        help="TF Serving's monitoring config: prometheus_config { enable: true path: \"/metrics\" } moves the "
        "Prometheus metrics (default path /monitoring/prometheus/metrics, on), enable: false turns them off",
    )
    parser.add_argument("--enable_model_warmup", type=_flag_bool, nargs="?", const=True, default=True,
                        help="one small call per signature before a version serves (TF Serving's flag; default: true)")
    parser.add_argument("--allow_version_labels_for_unavailable_models", type=_flag_bool, nargs="?", const=True,
                        default=True, help="accepted for TF Serving's command lines; labels may always name versions "
                        "not loaded yet here (requests by such a label get 404 until it loads)")
    parser.add_argument("--version", action="store_true", help="print the server's version and exit")
    parser.add_argument("--access_log", action="store_true", help="log every request")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="least severe log records shown (default: %(default)s)")
    add_tf_serving_flags(parser)


# tensorflow_model_server flags this server does not implement: accepted (a TF Serving command
# line, e.g. kubeflow/serving/'s manifests, starts unchanged), named in one warning, and ignored.
UNIMPLEMENTED_TF_SERVING_FLAGS = (
    "grpc_socket_path", "grpc_channel_arguments", "grpc_max_threads", "rest_api_num_threads",
    "rest_api_timeout_in_ms", "rest_api_enable_cors_support", "enable_batching",
    "enable_per_model_batching_parameters", "batching_parameters_file", "model_config_file_poll_wait_seconds",
    "force_allow_any_version_labels_for_unavailable_models", "num_load_threads", "num_unload_threads",
    "max_num_load_retries", "load_retry_interval_micros", "flush_filesystem_caches",
    "tensorflow_session_parallelism", "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "tensorflow_session_config_file", "use_alts_credentials", "ssl_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "num_request_iterations_for_warmup",
    "enforce_session_run_timeout", "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model",
    "num_tflite_pools", "num_tflite_interpreters_per_pool", "thread_pool_factory_config_file",
    "enable_signature_method_name_check", "xla_cpu_compilation_enabled", "enable_profiler", "mixed_precision",
    "skip_initialize_tpu", "enable_grpc_healthcheck_service",
)


def _flag_bool(value: str) -> bool:
    lowered = str(value).lower()
    if lowered not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return lowered in ("true", "1")


def add_tf_serving_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TF Serving flags accepted and ignored (with a warning naming them)")
    for name in UNIMPLEMENTED_TF_SERVING_FLAGS:
        group.add_argument(f"--{name}", dest=f"unimplemented_{name}", nargs="?", const="true", metavar="V",
                           help=argparse.SUPPRESS)
    group.description = ", ".join(f"--{n}" for n in UNIMPLEMENTED_TF_SERVING_FLAGS)


def ignored_flags(args) -> list[str]:
    """The TF Serving flags given that this server does not implement, as given."""
    given = [(n, getattr(args, f"unimplemented_{n}", None)) for n in UNIMPLEMENTED_TF_SERVING_FLAGS]
    if not getattr(args, "allow_version_labels_for_unavailable_models", True):
        given.append(("allow_version_labels_for_unavailable_models", "false"))  # here they always may
    return [f"--{n}={v}" for n, v in given if v is not None]


def models_from_args(args) -> dict[str, ModelSource]:
    """name -> push directory (and version policy, labels) from --model_config_file or
    --model_base_path/--model_name."""
    if bool(args.model_config) == bool(args.model_base_path):
        raise ValueError("give exactly one of --model_base_path or --model_config_file")
    if args.model_config:
        return parse_model_config(args.model_config)
    return {validate_model_name(args.model_name): ModelSource(args.model_base_path)}


class _Terminate(Exception):
    """SIGTERM, raised in the main thread so that serve_forever returns and the server shuts down."""


def _raise_terminate(signum, frame):
    raise _Terminate()


TRIM_INTERVAL_S = 1.0


def return_freed_memory_to_the_os(interval_s: float = TRIM_INTERVAL_S) -> threading.Thread | None:
    """Starts a thread that calls glibc's ``malloc_trim(0)`` every ``interval_s`` seconds.

    Why: glibc's malloc keeps freed heap pages, and raises its mmap threshold (up to 32 MB) each
    time a large mapped buffer is freed, so later large buffers come from the heap too: a burst of
    large request and response bodies of varying sizes left the server tens of MB larger for good.
    malloc_trim gives free pages back (anywhere in the heap, not only at its top). Fixing the mmap
    threshold instead (mallopt) cost 6-12% of the serving throughput: the model's multi-MB
    activations were then mapped and zeroed on every call. benchmarks/serve_hostile.py measures
    the RSS. None where the C library is not glibc."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None

    def loop():
        while True:
            time.sleep(interval_s)
            trim(0)
    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.start()
    return thread


def run(args, on_ready=None) -> int:
    """Serves until interrupted (Ctrl-C or SIGTERM). Returns a process exit status.

    ``on_ready(httpd)``, if given, is called once the socket listens (tests use it to stop the
    server with ``httpd.shutdown()`` from another thread)."""
    logging.basicConfig(level=getattr(logging, args.log_level, logging.INFO), format="%(asctime)s %(levelname)s %(message)s")
    if getattr(args, "version", False):

        print(f"tfx_gan model server {_package_version()} (TF Serving's REST and gRPC APIs, KServe V2)")
        return 0
    ignored = ignored_flags(args)
    if ignored:
        print(f"warning: ignoring TF Serving flag(s) this server does not implement: {' '.join(ignored)}",
              file=sys.stderr, flush=True)
    for flag, value in (("--rest_api_port", args.port), ("--port", args.grpc_port)):
        if not 0 <= value <= 65535:
            print(f"error: {flag} {value} is not a TCP port: give 1-65535, or 0 for a free one", file=sys.stderr)
            return 2
    try:
        models = models_from_args(args)
        metrics_path = parse_monitoring_config(args.monitoring_config_file) if args.monitoring_config_file \
            else DEFAULT_METRICS_PATH
        app = ServingApp(
            models,
            max_images=args.max_images,
            max_body_bytes=args.max_body_bytes,
            poll_interval_s=args.poll_interval_s,
            settle_s=args.settle_s,
            max_concurrent=args.max_concurrent,
            warmup=args.enable_model_warmup,
            metrics_path=metrics_path,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return_freed_memory_to_the_os()
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
    from tfx_gan.server.grpc_service import start_grpc_server  # TF Serving's protos import TensorFlow: not for --help

    try:
        grpc_server, grpc_port = start_grpc_server(app, args.host, args.grpc_port)
    except (OSError, RuntimeError) as exc:
        httpd.server_close()
        print(f"error: cannot listen on {args.host}:{args.grpc_port} for gRPC (--port): {exc}", file=sys.stderr)
        return 2
    host, port = httpd.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    if app.metrics is not None:
        LOG.info("Prometheus metrics on http://%s:%d%s", shown, port, app.metrics.path)
    print(f"serving {sorted(models)} on http://{shown}:{port} (REST) and {shown}:{grpc_port} (gRPC)", flush=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminate)
    app.start()
    if on_ready is not None:
        on_ready(httpd)
    why = "shut down"  # serve_forever returns only when httpd.shutdown() is called (the tests do)
    try:
        httpd.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, _Terminate) as stop:  # an ordinary stop, cleaned up below
        why = "SIGTERM" if isinstance(stop, _Terminate) else "Ctrl-C"
    finally:
        app.stop()
        grpc_server.stop(None)
        httpd.server_close()
    print(f"server stopped ({why})", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfx_gan.server.server", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""The server's memory under a barrage of hostile requests: its RSS (VmRSS) and peak RSS (VmHWM,
from /proc/PID/status) before and after, and every answer's status.

    python -m benchmarks.serve_hostile                     # builds a DCGAN-sized generator itself
    python -m benchmarks.serve_hostile --push_dir serving/gan-digits --model_name gan

The server runs as its own process (``python -m tfx_gan.server.server``, as in serve_load) on
127.0.0.1. After one normal request of the largest batch the server allows (--max_images, 256:
TensorFlow keeps the working memory of its largest call, ~100 MB for a DCGAN at 256 images,
which a legitimate client can ask for too, so it belongs to "before"), it gets, over REST,
KServe V2 and gRPC:
  - predicts at 32 batch sizes (8, 16, ... 256 images): each a new output shape, so a new JSON
    template (a count-bounded cache of these grew by hundreds of MB);
  - gRPC Predicts of ~40 bytes that declare a [3000, 100000] float tensor (1.2 GB if allocated),
    and tensors of an unsupported dtype;
  - V2 infers declaring a shape of 2^40 x 2^40 x 100 elements, or a datatype that is a list;
  - REST bodies declared 10^12 bytes long, nested 100,000 deep, or not JSON at all.
Goal: RSS grows by less than 50 MB (measured 2 s after the barrage), the peak stays within 200 MB
of where it was, and no answer is a 5xx or gRPC UNKNOWN/INTERNAL.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import time

import numpy as np

from benchmarks.serve_load import ServerProcess, build_dcgan_push_dir

DEFAULT_OUT = os.path.join("outputs", "benchmarks", "serve_hostile.json")
GOAL_MB = 50
PEAK_GOAL_MB = 200


def memory_mb(pid: int) -> dict:
    """VmRSS (now) and VmHWM (peak) of process ``pid``, in MB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return {name: int(fields[key].split()[0]) / 1024 for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))}


def _http(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _declared_only(port: int, head: bytes) -> int:
    """Sends headers that declare a body, and no body; returns the status the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        reply = s.recv(4096)
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


def barrage(port: int, grpc_port: int, model_name: str, latent_dim: int, max_images: int = 256) -> dict:
    """Every hostile request of the module docstring; returns {kind: {status: count}}."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    answers: dict[str, dict[str, int]] = {}

    def count(kind: str, status) -> None:
        answers.setdefault(kind, {}).setdefault(str(status), 0)
        answers[kind][str(status)] += 1

    rng = np.random.default_rng(0)
    for batch in range(8, max_images + 1, 8):
        body = json.dumps({"instances": rng.standard_normal((batch, latent_dim)).round(3).tolist()}).encode()
        count("rest predict, a new batch size each", _http(port, "POST", f"/v1/models/{model_name}:predict", body))
    for depth in (100_000,) * 10:
        count("rest body nested 100,000 deep", _http(port, "POST", f"/v1/models/{model_name}:predict",
                                                     b"[" * depth + b"]" * depth))
    for _ in range(10):
        count("rest body not JSON", _http(port, "POST", f"/v1/models/{model_name}:predict", b"{not json"))
        count("rest body declared 10^12 bytes", _declared_only(
            port, f"POST /v1/models/{model_name}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n".encode()))
        huge = {"inputs": [{"name": "latent", "shape": [2**40, 2**40, latent_dim], "datatype": "FP32", "data": [0.0]}]}
        count("v2 shape of 2^80 elements", _http(port, "POST", f"/v2/models/{model_name}/infer", json.dumps(huge).encode()))
        listed = {"inputs": [{"name": "latent", "shape": [1, latent_dim], "datatype": ["FP32"], "data": [0.0] * latent_dim}]}
        count("v2 datatype a list", _http(port, "POST", f"/v2/models/{model_name}/infer", json.dumps(listed).encode()))
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for kind, tensor in (("grpc 40 bytes declaring 1.2 GB", tf.make_tensor_proto(1.0, tf.float32, [3000, 100000])),
                             ("grpc complex64 tensor", tf.make_tensor_proto(np.zeros((2, latent_dim), np.complex64)))):
            for _ in range(10):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = model_name
                request.inputs["latent"].CopyFrom(tensor)
                try:
                    stub.Predict(request, timeout=60)
                    count(kind, "OK")
                except grpc.RpcError as exc:
                    count(kind, exc.code().name)
    return answers


def measure(push_dir: str, model_name: str, latent_dim: int) -> dict:
    server = ServerProcess(push_dir, model_name, [])
    try:
        pid = server.process.pid
        # one normal request of the largest allowed batch first: its working memory belongs to "before"
        warm = json.dumps({"instances": np.zeros((256, latent_dim)).tolist()}).encode()
        assert _http(server.port, "POST", f"/v1/models/{model_name}:predict", warm) == 200
        before = memory_mb(pid)
        started = time.monotonic()
        answers = barrage(server.port, server.grpc_port, model_name, latent_dim)
        seconds = time.monotonic() - started
        time.sleep(2.0)  # the server gives freed memory back every second (server/server.py)
        after = memory_mb(pid)
    finally:
        server.stop()
    failures = {kind: statuses for kind, statuses in answers.items()
                if any(s.startswith("5") or s in ("UNKNOWN", "INTERNAL", "0") for s in statuses)}
    return {"before_mb": before, "after_mb": after, "rss_growth_mb": after["rss"] - before["rss"],
            "peak_growth_mb": after["peak"] - before["peak"], "seconds": round(seconds, 1), "answers": answers,
            "server_errors": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--push_dir", help="a push directory (default: a DCGAN-sized generator, random weights)")
    parser.add_argument("--model_name", default="gan")
    parser.add_argument("--latent_dim", type=int, default=100)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        push_dir = args.push_dir or build_dcgan_push_dir(tmp, args.latent_dim)
        result = measure(push_dir, args.model_name, args.latent_dim)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    for kind, statuses in result["answers"].items():
        print(f"  {kind:<40} {statuses}")
    print(f"RSS {result['before_mb']['rss']:.0f} -> {result['after_mb']['rss']:.0f} MB "
          f"(growth {result['rss_growth_mb']:+.1f} MB), peak {result['before_mb']['peak']:.0f} -> "
          f"{result['after_mb']['peak']:.0f} MB (growth {result['peak_growth_mb']:+.1f} MB); goals < {GOAL_MB} / "
          f"{PEAK_GOAL_MB} MB; "
          f"server errors: {result['server_errors'] or 'none'}; {result['seconds']} s; written to {args.out}")
    ok = result["rss_growth_mb"] < GOAL_MB and result["peak_growth_mb"] < PEAK_GOAL_MB and not result["server_errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Load benchmark: the local TF-Serving-compatible server (REST and gRPC) against calling the
SavedModel in-process.

    python -m benchmarks.serve_load                       # builds a DCGAN-sized generator itself
    python -m benchmarks.serve_load --push_dir serving/gan

The server runs as its own process (``python -m tfx_gan.server.server``) on 127.0.0.1; 16
client threads (stdlib http.client, one keep-alive connection each) send --requests requests of
16 images each to ``serving_default`` in row format. The same number of calls of the same
signature, with the same batch and the same 16 threads, go to the SavedModel loaded in this
process, and to the server's gRPC port (TF Serving's generated PredictionService client, one
channel per thread, tensors as TensorProto). The runs are interleaved in --rounds blocks so that load from other work on a shared
machine hits both alike. Results: errors, p50/p99 latency, images/s, and the ratio of server p50
to in-process p50 (goal <= 1.3), plus a breakdown of the server's per-request work. Everything is
bounded: --requests per path and --max_seconds overall, loopback only.

Clients read every response body and check status and the X-Model-Version header; every
--decode_every-th response is parsed in full and its shape checked (parsing all 200 KB answers
would spend this machine's 2 cores on the client, which a real client does on its own machine).
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT_DIM = 100
DEFAULT_OUT = os.path.join("outputs", "benchmarks", "serve_load.json")


def build_dcgan_push_dir(root: str, latent_dim: int = LATENT_DIM) -> str:
    """Exports TF's DCGAN tutorial generator (random weights) to <root>/push/1 and returns <root>/push."""
    import keras
    from keras import layers

    from tfx_gan.training.export import export_generator

    generator = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            layers.Dense(7 * 7 * 256, use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Reshape((7, 7, 256)),
            layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False, activation="tanh"),
        ]
    )
    push_dir = os.path.join(root, "push")
    export_generator(generator, os.path.join(push_dir, "1"), latent_dim)
    return push_dir


# --------------------------------------------------------------------------- server process
class ServerProcess:
    def __init__(self, push_dir: str, model_name: str, extra_args: list[str], start_timeout_s: float = 300):
        env = dict(
            os.environ,
            PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
            TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        )
        command = [
            sys.executable, "-m", "tfx_gan.server.server",
            "--model_base_path", push_dir, "--model_name", model_name,
            "--host", "127.0.0.1", "--rest_api_port", "0", "--port", "0", "--settle_s", "0", "--log_level", "WARNING",
            *extra_args,
        ]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        self.stderr_tail: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        deadline = time.time() + start_timeout_s
        self.port = self.grpc_port = None
        while time.time() < deadline and self.process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if " on http://" in line:
                self.port = int(line.split(" on http://", 1)[1].split()[0].rsplit(":", 1)[1])
                self.grpc_port = int(line.split("(REST) and ", 1)[1].split()[0].rsplit(":", 1)[1])
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.stderr_tail[-20:]))

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.stderr_tail = (self.stderr_tail + [line])[-50:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --------------------------------------------------------------------------- load generation
def process_cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), from /proc on Linux."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def run_load(make_worker, total: int, concurrency: int, deadline: float, server_pid: int | None = None) -> dict:
    """Runs ``total`` calls over ``concurrency`` threads; make_worker() -> call(i) -> error|None.
    Also records the CPU time this process (and the server process, if given) used meanwhile."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def loop():
        call = make_worker()
        local_lat, local_err = [], []
        while True:
            with lock:
                i = next(counter)
            if i >= total or time.time() > deadline:
                break
            t0 = time.perf_counter()
            try:
                problem = call(i)
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                problem = repr(exc)
            elapsed = time.perf_counter() - t0
            if problem:
                local_err.append(problem)
            else:
                local_lat.append(elapsed)
        with lock:
            latencies.extend(local_lat)
            errors.extend(local_err)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    cpu0, server_cpu0 = process_cpu_s(), process_cpu_s(server_pid) if server_pid else 0.0
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "latencies": latencies,
        "errors": errors,
        "wall_s": wall,
        "cpu_s": process_cpu_s() - cpu0,
        "server_cpu_s": (process_cpu_s(server_pid) - server_cpu0) if server_pid else 0.0,
    }


def summarize(blocks: list[dict], batch: int, concurrency: int) -> dict:
    lat = np.array([x for b in blocks for x in b["latencies"]]) * 1e3
    errors = [e for b in blocks for e in b["errors"]]
    wall = sum(b["wall_s"] for b in blocks)
    ok = int(lat.size)
    calls = max(ok + len(errors), 1)
    own_cpu = sum(b["cpu_s"] for b in blocks) / calls * 1e3
    server_cpu = sum(b["server_cpu_s"] for b in blocks) / calls * 1e3
    return {
        "concurrency": concurrency,
        "requests": ok + len(errors),
        "ok": ok,
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "p50_ms": float(np.percentile(lat, 50)) if ok else None,
        "p90_ms": float(np.percentile(lat, 90)) if ok else None,
        "p99_ms": float(np.percentile(lat, 99)) if ok else None,
        "mean_ms": float(lat.mean()) if ok else None,
        "max_ms": float(lat.max()) if ok else None,
        "wall_s": wall,
        "images_per_s": ok * batch / wall if wall else None,
        # CPU time per request: of this process (clients, or the in-process calls) and of the
        # server process. On a shared machine this is steadier than wall-clock latency.
        "cpu_ms_per_request_this_process": own_cpu,
        "cpu_ms_per_request_server_process": server_cpu,
        "cpu_ms_per_request_total": own_cpu + server_cpu,
    }


def server_worker_factory(port: int, model_name: str, bodies: list[bytes], batch: int, decode_every: int):
    path = f"/v1/models/{model_name}:predict"
    headers = {"Content-Type": "application/json"}

    def make():
        state = {"conn": http.client.HTTPConnection("127.0.0.1", port, timeout=120)}

        def call(i):
            conn = state["conn"]
            try:
                conn.request("POST", path, bodies[i % len(bodies)], headers)
                response = conn.getresponse()
                data = response.read()
            except Exception:
                conn.close()
                state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                raise
            if response.status != 200:
                return f"HTTP {response.status}: {data[:120]!r}"
            if not response.getheader("X-Model-Version") or not data.startswith(b'{"predictions":'):
                return "malformed answer"
            if decode_every and i % decode_every == 0:
                images = np.asarray(json.loads(data)["predictions"], dtype=np.float32)
                if images.shape != (batch, 28, 28, 1) or not np.isfinite(images).all():
                    return f"bad shape {images.shape}"
            return None

        return call

    return make


def grpc_worker_factory(port: int, model_name: str, latents: list[np.ndarray], batch: int, decode_every: int):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests = []
    for z in latents:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.inputs["latent"].CopyFrom(tf.make_tensor_proto(z))
        requests.append(request)

    def make():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

        def call(i):
            response = stub.Predict(requests[i % len(requests)], timeout=120)
            if not response.model_spec.version.value or "images" not in response.outputs:
                return "malformed answer"
            if decode_every and i % decode_every == 0:
                images = tf.make_ndarray(response.outputs["images"])
                if images.shape != (batch, 28, 28, 1) or not np.isfinite(images).all():
                    return f"bad shape {images.shape}"
            return None

        return call

    return make


def direct_worker_factory(function, latents: list[np.ndarray], batch: int):
    import tensorflow as tf

    def make():
        def call(i):
            images = function(latent=tf.constant(latents[i % len(latents)]))["images"].numpy()
            return None if images.shape[0] == batch else f"bad shape {images.shape}"

        return call

    return make


def profile_server_work(model, bodies: list[bytes], repeats: int = 50) -> dict:
    """Median milliseconds of each step the server does for one request, run sequentially here."""
    import tensorflow as tf

    from tfx_gan.server import json_codec

    function = model.signatures["serving_default"].function
    body = bodies[0]

    def timed(fn):
        fn()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples) * 1e3

    request = json.loads(body)
    array = json_codec.to_array(request["instances"], np.float32, "latent")
    images = function(latent=tf.constant(array))["images"].numpy()
    fast = json_codec.encode({"predictions": images})
    slow = json.dumps({"predictions": images.tolist()}).encode()
    return {
        "request_bytes": len(body),
        "response_bytes": len(fast),
        "response_bytes_json_dumps": len(slow),
        "parse_request_json_ms": timed(lambda: json.loads(body)),
        "request_to_numpy_ms": timed(lambda: json_codec.to_array(request["instances"], np.float32, "latent")),
        "model_call_ms": timed(lambda: function(latent=tf.constant(array))["images"].numpy()),
        "encode_response_fast_ms": timed(lambda: json_codec.encode({"predictions": images})),
        "encode_response_json_dumps_ms": timed(lambda: json.dumps({"predictions": images.tolist()}).encode()),
        "client_parse_response_ms": timed(lambda: np.asarray(json.loads(fast)["predictions"], dtype=np.float32)),
    }


# --------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--push_dir", help="push directory to serve (default: build a DCGAN-sized generator in a temp dir)")
    parser.add_argument("--model_name", default="gan")
    parser.add_argument("--requests", type=int, default=2000, help="requests per path (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="images per request (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved server/direct blocks (default: %(default)s)")
    parser.add_argument("--sequential", type=int, default=200, help="extra calls per path at concurrency 1 (also interleaved); 0 skips")
    parser.add_argument("--decode_every", type=int, default=50, help="fully parse every Nth response; 1 = all, 0 = none")
    parser.add_argument("--max_seconds", type=float, default=900, help="overall time bound (default: %(default)s)")
    parser.add_argument("--server_args", default="", help="extra flags for the server, e.g. '--max_concurrent 4'")
    parser.add_argument("--out", default=DEFAULT_OUT, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.batch, args.rounds) < 1:
        parser.error("--requests, --concurrency, --batch and --rounds must be positive")
    return args


def measure_rounds(server_make, grpc_make, direct_make, pid: int, args, deadline: float, started: float) -> dict:
    """Interleaved blocks of REST, gRPC and direct calls (at --concurrency, then at 1), rotating which
    path goes first so that drifting load from other work hits all alike."""
    blocks = {name: [] for name in ("server", "grpc", "direct", "server_c1", "grpc_c1", "direct_c1")}
    per_round = [args.requests // args.rounds + (1 if r < args.requests % args.rounds else 0) for r in range(args.rounds)]
    per_round_c1 = [args.sequential // args.rounds + (1 if r < args.sequential % args.rounds else 0) for r in range(args.rounds)]
    for r, (count, count_c1) in enumerate(zip(per_round, per_round_c1)):
        paths = [("server", server_make, pid), ("grpc", grpc_make, pid), ("direct", direct_make, None)]
        order = paths[r % 3:] + paths[:r % 3]
        for name, make, server_pid in order:
            blocks[name].append(run_load(make, count, args.concurrency, deadline, server_pid))
        for name, make, server_pid in order[::-1]:
            if count_c1:
                blocks[name + "_c1"].append(run_load(make, count_c1, 1, deadline, server_pid))
        print(f"round {r + 1}/{args.rounds} done ({time.time() - started:.0f}s)", flush=True)
    return blocks


def summarize_results(blocks: dict, args, machine: dict, model_version, profile: dict, started: float) -> dict:
    """The results JSON: each path's latency and throughput, and server p50 over direct p50."""
    results = {
        "config": {
            "push_dir": args.push_dir or "(built: DCGAN tutorial generator, random weights, latent 100)",
            "model_version": model_version,
            "requests_per_path": args.requests,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "rounds": args.rounds,
            "decode_every": args.decode_every,
            "server_args": args.server_args,
            "signature": "serving_default, row format (instances)",
        },
        "machine": machine,
        "server": summarize(blocks["server"], args.batch, args.concurrency),
        "grpc": summarize(blocks["grpc"], args.batch, args.concurrency),
        "direct": summarize(blocks["direct"], args.batch, args.concurrency),
        "server_c1": summarize(blocks["server_c1"], args.batch, 1) if args.sequential else None,
        "grpc_c1": summarize(blocks["grpc_c1"], args.batch, 1) if args.sequential else None,
        "direct_c1": summarize(blocks["direct_c1"], args.batch, 1) if args.sequential else None,
        "server_work_ms": profile,
        "elapsed_s": time.time() - started,
    }
    s, d = results["server"], results["direct"]
    results["ratio_p50"] = s["p50_ms"] / d["p50_ms"] if s["p50_ms"] and d["p50_ms"] else None
    g = results["grpc"]
    results["grpc_over_rest_p50"] = g["p50_ms"] / s["p50_ms"] if g["p50_ms"] and s["p50_ms"] else None
    results["ratio_goal"] = 1.3
    results["goal_met"] = bool(results["ratio_p50"] is not None and results["ratio_p50"] <= 1.3 and s["errors"] == 0)
    if args.sequential:
        sc, dc = results["server_c1"], results["direct_c1"]
        results["ratio_p50_c1"] = sc["p50_ms"] / dc["p50_ms"] if sc["p50_ms"] and dc["p50_ms"] else None
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    from benchmarks.machine import print_machine

    machine = print_machine()
    started = time.time()
    deadline = started + args.max_seconds
    tmp = tempfile.TemporaryDirectory(prefix="serve_load_")
    push_dir = args.push_dir or build_dcgan_push_dir(tmp.name)

    from tfx_gan.server.model_store import load_latest

    model = load_latest(push_dir, name=args.model_name, settle_s=0, warmup=True)
    latent_dim = model.signatures["serving_default"].inputs["latent"].shape[1]
    if "labels" in model.signatures["serving_default"].inputs:
        print("error: the load benchmark drives unconditional generators (serving_default takes only latent)", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    latents = [rng.standard_normal((args.batch, latent_dim)).astype(np.float32) for _ in range(32)]
    bodies = [json.dumps({"instances": z.tolist()}).encode() for z in latents]
    function = model.signatures["serving_default"].function

    load_before = os.getloadavg()
    server = ServerProcess(push_dir, args.model_name, args.server_args.split())
    try:
        server_make = server_worker_factory(server.port, args.model_name, bodies, args.batch, args.decode_every)
        grpc_make = grpc_worker_factory(server.grpc_port, args.model_name, latents, args.batch, args.decode_every)
        direct_make = direct_worker_factory(function, latents, args.batch)
        # warm-up, not measured
        for make in (server_make, grpc_make, direct_make):
            run_load(make, 2 * args.concurrency, args.concurrency, deadline)
        blocks = measure_rounds(server_make, grpc_make, direct_make, server.process.pid, args, deadline, started)
    finally:
        server.stop()
    machine = {**machine, "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    results = summarize_results(blocks, args, machine, model.version, profile_server_work(model, bodies), started)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print_table(results)
    print(f"results written to {args.out}")
    tmp.cleanup()
    return 0 if results["server"]["errors"] == 0 and results["grpc"]["errors"] == 0 else 1


def print_table(results: dict) -> None:
    rows = [("server (HTTP, JSON)", results["server"]), ("server (gRPC)", results["grpc"]),
            ("in-process signature", results["direct"])]
    if results.get("server_c1"):
        rows += [("server, 1 client", results["server_c1"]), ("gRPC, 1 client", results["grpc_c1"]),
                 ("in-process, 1 thread", results["direct_c1"])]
    print()
    print(f"{'path':<22} {'conc':>4} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'images/s':>9}")
    for name, r in rows:
        print(
            f"{name:<22} {r['concurrency']:>4} {r['requests']:>8} {r['errors']:>6} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['images_per_s']:>9.0f}"
        )
    ratio = results["ratio_p50"]
    print(f"server p50 / in-process p50 at concurrency {results['server']['concurrency']}: {ratio:.2f}x (goal <= 1.3x)")
    if results.get("ratio_p50_c1"):
        print(f"same ratio with one client: {results['ratio_p50_c1']:.2f}x")
    if results.get("grpc_over_rest_p50"):
        g = results["grpc"]
        print(f"gRPC p50 / REST p50 at concurrency {g['concurrency']}: {results['grpc_over_rest_p50']:.2f}x; "
              f"gRPC p50 / in-process p50: {g['p50_ms'] / results['direct']['p50_ms']:.2f}x")
    s, d = results["server"], results["direct"]
    print(
        "CPU per request at concurrency {}: server process {:.1f} ms + clients {:.1f} ms = {:.1f} ms; "
        "in-process {:.1f} ms ({:.2f}x)".format(
            s["concurrency"], s["cpu_ms_per_request_server_process"], s["cpu_ms_per_request_this_process"],
            s["cpu_ms_per_request_total"], d["cpu_ms_per_request_total"],
            s["cpu_ms_per_request_total"] / d["cpu_ms_per_request_total"],
        )
    )
    p = results["server_work_ms"]
    print(
        "server work per request (ms, sequential): parse JSON {:.2f}, to numpy {:.2f}, model {:.2f}, "
        "encode {:.2f} (json.dumps would take {:.2f}); response {} KB".format(
            p["parse_request_json_ms"], p["request_to_numpy_ms"], p["model_call_ms"],
            p["encode_response_fast_ms"], p["encode_response_json_dumps_ms"], p["response_bytes"] // 1024,
        )
    )
    print(f"load average before/after: {results['machine']['loadavg_before'][0]:.1f} / {results['machine']['loadavg_after'][0]:.1f} on {results['machine']['cores']} cores")


if __name__ == "__main__":
    sys.exit(main())

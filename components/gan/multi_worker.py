"""Training on several local worker processes with MultiWorkerMirroredStrategy, as a cluster would.

``training.num_workers: N`` (N > 1) on a machine with no TF_CONFIG: ``train_on_local_workers``
starts N processes of this module on loopback ports, each with the TF_CONFIG a cluster manager
(Kubeflow's TFJob, Vertex AI's worker pools) would give it: ``{"cluster": {"worker": [...]},
"task": {"type": "worker", "index": i}}``. Worker 0 is the chief (TF's rule when the cluster
has no "chief" task): it alone writes the run's logs, samples and the serving model; the others
train their share of every global batch and write their checkpoints to private folders
(``devices.worker_dirs``; tf.distribute needs every worker to save). Every process is a fresh
interpreter because MultiWorkerMirroredStrategy must exist before other TensorFlow work in its
process, and the pipeline's own process has done plenty by then.

Gradients are all-reduced over gRPC between the processes (TF's collective ops); the train step
scales losses by the global batch (components/gan/step.py), each replica draws its own latents
(the tf.random.Generator is created in the strategy's scope), and tf.data shards every batch
by element (AutoShardPolicy.DATA). If a worker dies the others would wait in a collective for
ever: the parent watches every process, stops the rest, and raises one line naming the worker;
the rerun resumes every worker from the last checkpoint (all save at the same steps).

    python -m tfx_gan.components.gan.multi_worker SPEC.json TASK_INDEX   # what the parent runs
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class WorkerFailed(RuntimeError):
    """A training worker process exited with an error; the others were stopped."""


@dataclass
class WorkersResult:
    """What GanTrainer records of a multi-worker run (the chief's figures)."""
    steps: int
    seconds: float
    resumed_from_step: int
    warm_started_from: str | None
    strategy: str
    num_workers: int


def local_cluster(num_workers: int, host: str = "127.0.0.1") -> dict:
    """A TF cluster spec of ``num_workers`` free loopback ports."""
    sockets = []
    try:
        for _ in range(num_workers):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return {"worker": [f"{host}:{s.getsockname()[1]}" for s in sockets]}
    finally:
        for s in sockets:
            s.close()


def _python_path() -> str:
    """PYTHONPATH for the workers: where this process imports tfx_gan from (a checkout or site-packages)."""
    import tfx_gan

    root = os.path.dirname(os.path.dirname(os.path.abspath(tfx_gan.__file__)))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


def train_on_local_workers(config, train_files, image_shape, num_classes, *, run_dir: str, checkpoint_dir: str,
                           serving_dir: str, config_path: str, warm_start_dir: str | None = None,
                           class_names: list[str] | None = None, log=logger.info,
                           cpus_per_worker: list[list[int]] | None = None) -> WorkersResult:
    """Trains with ``config.num_workers`` local processes; the chief exports to ``serving_dir``.
    ``cpus_per_worker``: pin worker i to those CPUs (the scaling benchmark); default: no pinning,
    and each worker's TensorFlow gets an equal share of the cores as its thread pools."""
    n = config.num_workers
    cluster = local_cluster(n)
    os.makedirs(run_dir, exist_ok=True)
    spec_dir = tempfile.mkdtemp(prefix="workers-", dir=run_dir)
    spec = {"config": {**config.to_dict(), "distribution": "multi_worker"}, "train_files": list(train_files),
            "image_shape": [int(d) for d in image_shape], "num_classes": num_classes, "run_dir": run_dir,
            "checkpoint_dir": checkpoint_dir, "serving_dir": serving_dir, "config_path": config_path,
            "warm_start_dir": warm_start_dir, "class_names": class_names,
            "threads": max(1, (os.cpu_count() or 1) // n), "result_path": os.path.join(spec_dir, "result.json")}
    spec_path = os.path.join(spec_dir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    log(f"multi-worker training: MultiWorkerMirroredStrategy over {n} local worker processes "
        f"({', '.join(cluster['worker'])}); worker 0 is the chief")
    processes, logs, chief_lines, reader = [], [], [], None
    try:
        for index in range(n):
            env = {**os.environ, "PYTHONPATH": _python_path(), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            command = [sys.executable, "-m", "tfx_gan.components.gan.multi_worker", spec_path, str(index)]
            if cpus_per_worker:
                command = ["taskset", "-c", ",".join(str(c) for c in cpus_per_worker[index]), *command]
            if index:
                logs.append(open(os.path.join(spec_dir, f"worker-{index}.log"), "w"))
            processes.append(subprocess.Popen(command, env=env, stdout=logs[-1] if index else subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True))
            if index == 0:
                reader = threading.Thread(target=_forward, args=(processes[0].stdout, log, chief_lines), daemon=True)
                reader.start()
        _wait_all(processes, spec_dir, chief_lines)
    finally:  # never leave a worker behind, whatever went wrong
        for p in processes:
            if p.poll() is None:
                p.kill()
        if reader is not None:
            reader.join(timeout=10)
        for f in logs:
            f.close()
    with open(spec["result_path"]) as f:
        return WorkersResult(**json.load(f))


def _forward(stream, log, lines: list[str]) -> None:
    """The chief's output, line by line, to the component's log (and kept for an error message)."""
    for line in stream:
        line = line.rstrip("\n")
        lines.append(line)
        if line.startswith("[worker] "):
            log(line[len("[worker] "):])


def _wait_all(processes, spec_dir: str, chief_lines: list[str]) -> None:
    """Until every worker exits 0; the first that fails stops the others and is named."""
    while True:
        codes = [p.poll() for p in processes]
        # a worker killed by a signal is the cause; the others' errors (a lost peer) follow from it
        failed = sorted(((c >= 0, i, c) for i, c in enumerate(codes) if c not in (None, 0)))
        if failed:
            _, index, code = failed[0]
            for p in processes:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            while any(p.poll() is None for p in processes) and time.time() < deadline:
                time.sleep(0.1)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise WorkerFailed(f"training worker {index} of {len(processes)} (pid {processes[index].pid}) {how}; "
                               f"the other workers were stopped; a rerun resumes from the last checkpoint"
                               f"{_last_error(index, spec_dir, chief_lines)}")
        if all(c == 0 for c in codes):
            return
        time.sleep(0.2)


def _last_error(index: int, spec_dir: str, chief_lines: list[str]) -> str:
    """The failed worker's last line of output, when it said something."""
    lines = chief_lines
    if index:
        try:
            with open(os.path.join(spec_dir, f"worker-{index}.log")) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
    lines = [line for line in lines if line.strip()]
    return f" (its last words: {lines[-1][:300]})" if lines else ""


def _worker_main(spec_path: str, index: int) -> int:
    """One worker: the strategy first (TF's rule), then train_gan; the chief exports and reports."""
    with open(spec_path) as f:
        spec = json.load(f)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(2)
    from tfx_gan.components.gan.config import TrainConfig
    from tfx_gan.components.gan.train import save_trained_models, train_gan

    config = TrainConfig.from_dict(spec["config"])
    chief = index == 0
    result = train_gan(config, spec["train_files"], tuple(spec["image_shape"]), spec["num_classes"], spec["run_dir"],
                       spec["checkpoint_dir"], warm_start_dir=spec["warm_start_dir"], class_names=spec["class_names"],
                       log=(lambda line: print(f"[worker] {line}", flush=True)) if chief else print)
    if chief:
        save_trained_models(result, config, spec["serving_dir"], spec["config_path"], tuple(spec["image_shape"]),
                            spec["num_classes"])
        summary = {"steps": int(result.steps), "seconds": float(result.seconds),
                   "resumed_from_step": int(result.resumed_from_step), "warm_started_from": result.warm_started_from,
                   "strategy": result.strategy, "num_workers": config.num_workers}
        with open(spec["result_path"] + ".tmp", "w") as f:
            json.dump(summary, f)
        os.replace(spec["result_path"] + ".tmp", spec["result_path"])
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1], int(sys.argv[2])))

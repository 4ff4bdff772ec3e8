"""Training on several worker processes with MultiWorkerMirroredStrategy, as a cluster would.

``training.num_workers: N`` (N > 1) with no TF_CONFIG: ``train_on_workers`` starts N processes
of this module, each with the TF_CONFIG a cluster manager (Kubeflow's TFJob, Vertex AI's worker
pools) would give it: ``{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}``.
Worker 0 is the chief (TF's rule when the cluster has no "chief" task): it alone writes the run's
logs, samples and the serving model; the others train their share of every global batch and
write their checkpoints to private folders (``devices.worker_dirs``; tf.distribute needs every
worker to save). Every process is a fresh interpreter because MultiWorkerMirroredStrategy must
exist before other TensorFlow work in its process, and the caller's process has done plenty.

Where the workers run: all on this machine, on loopback ports (the default); or, given ``pods``
(training/worker_pods.py, for a compiled spec's ``kubeflow.trainer_workers``), the chief here
and workers 1..N-1 in worker pods that read the same spec from their environment.

Gradients are all-reduced over gRPC between the processes (TF's collective ops); the train step
scales losses by the global batch (training/step.py), each replica draws its own latents
(the tf.random.Generator is created in the strategy's scope), and tf.data shards every batch
by element (AutoShardPolicy.DATA). If a worker dies the others would wait in a collective for
ever: the caller watches every worker, stops the rest, and raises one line naming the worker;
the rerun resumes every worker from the last checkpoint (all save at the same steps).

    python -m tfx_gan.training.multi_worker SPEC.json TASK_INDEX   # a local worker
    python -m tfx_gan.training.multi_worker --from_env             # a worker pod
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

import tfx_gan
from tfx_gan.common.errors import UserError

logger = logging.getLogger(__name__)

# A worker pod's spec (the JSON a local worker reads from SPEC.json) and its index in the Job.
SPEC_ENV = "TFX_GAN_WORKER_SPEC"
POD_INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job


class WorkerFailed(UserError, RuntimeError):
    """A training worker exited with an error; the others were stopped."""


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


def python_path() -> str:
    """PYTHONPATH for the workers: where this process imports tfx_gan from (a checkout or site-packages)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfx_gan.__file__)))
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


class LocalWorker:
    """One worker process on this machine; ``poll`` is Popen's (a negative code: killed by that signal)."""

    def __init__(self, command: list[str], env: dict, log_path: str | None, name: str = ""):
        self.log_path = log_path
        self._log = open(log_path, "w") if log_path else None
        self.process = subprocess.Popen(command, env=env, stdout=self._log or subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.name = f"{name}, pid {self.process.pid}" if name else f"pid {self.process.pid}"

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        if self._log:
            self._log.close()

    def last_words(self) -> list[str]:
        try:
            with open(self.log_path) as f:
                return f.read().splitlines()
        except (OSError, TypeError):
            return []


def train_on_workers(config, train_files, image_shape, num_classes, *, run_dir: str, checkpoint_dir: str,
                     serving_dir: str, config_path: str, warm_start_dir: str | None = None,
                     class_names: list[str] | None = None, log=logger.info,
                     cpus_per_worker: list[list[int]] | None = None, pods=None) -> WorkersResult:
    """Trains with ``config.num_workers`` workers; the chief (worker 0, a process here) exports to
    ``serving_dir``. ``pods``: where workers 1..N-1 run (training/worker_pods.py); default: processes
    here. ``cpus_per_worker``: pin local worker i to those CPUs (the scaling benchmark); default: no
    pinning, and each local worker's TensorFlow gets an equal share of the cores as its thread pools."""
    n = config.num_workers
    cluster = pods.cluster(n) if pods else local_cluster(n)
    local_run_dir = "://" not in run_dir  # a bucket on a cluster: the spec and logs stay in this pod
    if local_run_dir:
        os.makedirs(run_dir, exist_ok=True)
    spec_dir = tempfile.mkdtemp(prefix="workers-", dir=run_dir if local_run_dir else None)
    spec = {"config": config.replace(distribution="multi_worker").to_json(), "train_files": list(train_files),
            "image_shape": [int(d) for d in image_shape], "num_classes": num_classes, "run_dir": run_dir,
            "checkpoint_dir": checkpoint_dir, "serving_dir": serving_dir, "config_path": config_path,
            "warm_start_dir": warm_start_dir, "class_names": class_names, "cluster": cluster,
            "threads": pods.threads_per_worker(n) if pods else max(1, (os.cpu_count() or 1) // n),
            "result_path": os.path.join(spec_dir, "result.json")}
    spec_path = os.path.join(spec_dir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    where = pods.describe(n) if pods else f"{n} local worker processes ({', '.join(cluster['worker'])})"
    log(f"multi-worker training: MultiWorkerMirroredStrategy over {where}; worker 0 is the chief")
    local, chief_lines, reader = [], [], None  # the processes started here
    workers = local
    try:
        for index in range(n if pods is None else 1):
            env = {**os.environ, "PYTHONPATH": python_path(), "TF_CPP_MIN_LOG_LEVEL": "2",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            command = [sys.executable, "-m", "tfx_gan.training.multi_worker", spec_path, str(index)]
            if cpus_per_worker:
                command = ["taskset", "-c", ",".join(str(c) for c in cpus_per_worker[index]), *command]
            local.append(LocalWorker(command, env, os.path.join(spec_dir, f"worker-{index}.log") if index else None))
            if index == 0:
                reader = threading.Thread(target=_forward, args=(local[0].process.stdout, log, chief_lines),
                                          daemon=True)
                reader.start()
        if pods is not None:
            workers = local + pods.start(spec)
        _wait_all(workers, chief_lines)
    finally:  # never leave a worker behind, whatever went wrong
        for worker in local:
            worker.kill()
        if pods is not None:
            pods.delete()
        if reader is not None:
            reader.join(timeout=10)
    with open(spec["result_path"]) as f:
        return WorkersResult(**json.load(f))


def _forward(stream, log, lines: list[str]) -> None:
    """The chief's output, line by line, to the component's log (and kept for an error message)."""
    for line in stream:
        line = line.rstrip("\n")
        lines.append(line)
        if line.startswith("[worker] "):
            log(line[len("[worker] "):])


def _wait_all(workers, chief_lines: list[str]) -> None:
    """Until every worker exits 0; the first that fails stops the others and is named."""
    while True:
        codes = [w.poll() for w in workers]
        # a worker killed by a signal is the cause; the others' errors (a lost peer) follow from it
        failed = sorted(((c >= 0, i, c) for i, c in enumerate(codes) if c not in (None, 0)))
        if failed:
            _, index, code = failed[0]
            for w in workers:
                w.stop()
            deadline = time.time() + 10
            while any(w.poll() is None for w in workers) and time.time() < deadline:
                time.sleep(0.1)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            lines = [line for line in (workers[index].last_words() if index else chief_lines) if line.strip()]
            last = f" (its last words: {lines[-1][:300]})" if lines else ""
            raise WorkerFailed(f"training worker {index} of {len(workers)} ({workers[index].name}) {how}; "
                               f"the other workers were stopped; a rerun resumes from the last checkpoint{last}")
        if all(c == 0 for c in codes):
            return
        time.sleep(0.2)


def _worker_main(spec: dict, index: int) -> int:
    """One worker: the strategy first (TF's rule), then train_gan; the chief exports and reports."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(2)
    # imported after the thread settings, which must precede any other TensorFlow work in the process
    from tfx_gan.training.config import TrainConfig
    from tfx_gan.training.train import save_trained_models, train_gan

    config = TrainConfig.from_json(spec["config"])
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


def _pod_main() -> int:
    """A worker pod: the spec from its environment, its TF worker index from its index in the Job
    (pod i of the Job is worker i + 1: the chief is worker 0), TF_CONFIG set before TF starts."""
    spec = json.loads(os.environ[SPEC_ENV])
    index = int(os.environ[POD_INDEX_ENV]) + 1
    os.environ["TF_CONFIG"] = json.dumps({"cluster": spec["cluster"], "task": {"type": "worker", "index": index}})
    print(f"worker pod {os.environ.get('HOSTNAME', '?')}: training worker {index} of "
          f"{len(spec['cluster']['worker'])}", flush=True)
    return _worker_main(spec, index)


if __name__ == "__main__":
    if sys.argv[1:] == ["--from_env"]:
        sys.exit(_pod_main())
    with open(sys.argv[1]) as f:
        sys.exit(_worker_main(json.load(f), int(sys.argv[2])))

"""Worker pods for a multi-worker GanTrainer on Kubernetes (``kubeflow.trainer_workers: N``).

The compiled spec runs GanTrainer as one KFP task, so one pod; with N > 1 that pod is the chief
(TF worker 0) and creates the other N - 1 workers itself, through the Kubernetes API:

- a headless Service ``<name>`` (``clusterIP: None``, not-ready addresses published, so every
  worker's DNS name exists as soon as its pod does) selecting the worker pods;
- an Indexed Job ``<name>`` of N - 1 pods (``completionMode: Indexed``, ``subdomain: <name>``):
  pod i is ``<name>-i.<name>.<namespace>.svc`` in DNS and gets ``JOB_COMPLETION_INDEX=i`` from
  Kubernetes, so its TF_CONFIG index, i + 1, comes from the pod index (``multi_worker --from_env``);
  each runs the task's image with the task's resources (what ``kubeflow.resources.GanTrainer``
  asks for, GPUs included: resources are per worker), the chief's service account, and the
  training spec in its environment; ``backoffLimit: 0`` (a failed worker fails the run, which a
  rerun resumes from the last checkpoint) and the chief pod as owner (deleting the chief, or the
  KFP run, deletes the workers).

Why not a Training Operator TFJob: open-source KFP has no op that runs a component as a TFJob, the
operator is not part of a standalone KFP install, and Kubeflow Trainer v2 no longer runs TensorFlow
jobs; a headless Service and an Indexed Job are core Kubernetes, and KFP's ``pipeline-runner``
service account may already create both (its Role grants pods, services and batch jobs).

On this machine ``./gan launch-kfp`` (kubeflow/emulator/launcher.py) stands in for the cluster:
``LocalPods`` runs each pod of the same Job manifest as a local process (its command, args and env,
``JOB_COMPLETION_INDEX`` set as Kubernetes sets it) with loopback ports for the Service's DNS names.
"""
from __future__ import annotations

import json
import os
import time
import uuid

from tfx_gan.training.multi_worker import POD_INDEX_ENV, SPEC_ENV, LocalWorker, local_cluster, python_path

WORKER_PODS_ENV = "TFX_GAN_WORKER_PODS"        # GanTrainer's container env in the compiled spec (compile.py)
LOCAL_PODS_ENV = "TFX_GAN_WORKER_PODS_LOCAL"   # set by the local launcher: a folder for the pods' logs
PORT = 2222                                    # the collective's gRPC port in every pod (TFJob's default)
WORKER_COMMAND = ["python", "-m", "tfx_gan.training.multi_worker", "--from_env"]
LABEL = "tfx-gan/workers"
PENDING_TIMEOUT_S = 900  # a worker pod not running by then (no node with room, image not pulled) fails the run
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def pool_settings(image: str, resources: dict, port: int = PORT) -> str:
    """The WORKER_PODS_ENV value compile.py writes: what every worker pod runs and requests."""
    return json.dumps({"image": image, "resources": resources, "port": port}, sort_keys=True)


def worker_manifests(name: str, namespace: str, settings: dict, spec: dict, num_pods: int,
                     owner: dict | None = None, service_account: str | None = None) -> tuple[dict, dict]:
    """The headless Service and the Indexed Job of ``num_pods`` worker pods, as Kubernetes API objects."""
    labels = {"app.kubernetes.io/part-of": "tfx-gan", LABEL: name}
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": owner["name"],
                                        "uid": owner["uid"], "blockOwnerDeletion": False}]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
               "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {LABEL: name},
                        "ports": [{"name": "grpc", "port": settings["port"], "targetPort": settings["port"]}]}}
    pod_spec = {"subdomain": name, "restartPolicy": "Never",
                "containers": [{"name": "worker", "image": settings["image"], "command": list(WORKER_COMMAND),
                                "env": [{"name": SPEC_ENV, "value": json.dumps(spec, sort_keys=True)}],
                                "ports": [{"name": "grpc", "containerPort": settings["port"]}],
                                "resources": settings["resources"]}]}
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
           "spec": {"completionMode": "Indexed", "completions": num_pods, "parallelism": num_pods,
                    "backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": pod_spec}}}
    return service, job


def from_environment():
    """The worker pods GanTrainer's container env asks for (None: workers are local processes)."""
    raw = os.environ.get(WORKER_PODS_ENV)
    if not raw:
        return None
    settings = json.loads(raw)
    if os.environ.get(LOCAL_PODS_ENV):
        return LocalPods(settings, os.environ[LOCAL_PODS_ENV])
    return KubernetesPods(settings)


def _job_name() -> str:
    return f"tfx-gan-workers-{uuid.uuid4().hex[:8]}"  # pod hostnames <name>-<i> stay far below 63 characters


class KubernetesPods:
    """Workers 1..N-1 as an Indexed Job and a headless Service in the chief pod's namespace."""

    def __init__(self, settings: dict, api_client=None, namespace: str | None = None, chief_pod: str | None = None,
                 pending_timeout_s: float = PENDING_TIMEOUT_S):
        from kubernetes import client, config

        if api_client is None:
            config.load_config()  # a kubeconfig if there is one, else the pod's service account
            api_client = client.ApiClient()
        self.core, self.batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
        self.settings, self.name = settings, _job_name()
        self.namespace = namespace or _pod_namespace()
        pod_name = chief_pod or os.environ.get("KFP_POD_NAME") or os.environ.get("HOSTNAME", "")
        self.chief = self.core.read_namespaced_pod(pod_name, self.namespace)
        self.created: list[str] = []
        self._states: dict[int, int | None] = {}
        self._pods: dict[int, str] = {}
        self._why: dict[int, str] = {}  # what a pod that never ran says instead of a log
        self._checked = self._started = 0.0
        self.pending_timeout_s = pending_timeout_s

    def threads_per_worker(self, n: int) -> int:
        """TF's thread pools in each pod: its CPU request (os.cpu_count() there is the node's)."""
        try:
            return max(1, int(float(self.settings["resources"]["requests"]["cpu"])))
        except (KeyError, TypeError, ValueError):
            return 1

    def cluster(self, n: int) -> dict:
        port = self.settings["port"]
        return {"worker": [f"{self.chief.status.pod_ip}:{port}"] +
                [f"{self.name}-{i}.{self.name}.{self.namespace}.svc:{port}" for i in range(n - 1)]}

    def describe(self, n: int) -> str:
        return (f"{n} workers: the chief in this pod ({self.chief.metadata.name}), {n - 1} worker pod(s) of "
                f"Job {self.namespace}/{self.name} behind the headless Service {self.name}")

    def start(self, spec: dict) -> list:
        n = len(spec["cluster"]["worker"]) - 1
        service, job = worker_manifests(self.name, self.namespace, self.settings, spec, n,
                                        owner={"name": self.chief.metadata.name, "uid": self.chief.metadata.uid},
                                        service_account=self.chief.spec.service_account_name)
        self.core.create_namespaced_service(self.namespace, service)
        self.created.append("service")
        self.batch.create_namespaced_job(self.namespace, job)
        self.created.append("job")
        self._started = time.time()
        return [_PodWorker(self, i) for i in range(n)]

    def state(self, index: int) -> int | None:
        """Pod ``index``'s exit code (negative: killed by that signal), None while it runs or waits;
        1 once it has waited to start for ``pending_timeout_s`` (no node has room for it: the chief
        would wait in the collective for ever). The pods are listed at most every 2 s."""
        if time.time() - self._checked > 2:
            self._checked = time.time()
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{LABEL}={self.name}").items
            for pod in pods:
                i = int((pod.metadata.annotations or {}).get("batch.kubernetes.io/job-completion-index", -1))
                self._pods[i] = pod.metadata.name
                self._states[i] = _exit_code(pod)
                if pod.status.phase in (None, "Pending") and self._checked - self._started > self.pending_timeout_s:
                    self._states[i] = 1
                    self._why[i] = f"not running after {self.pending_timeout_s:.0f} s: {_waiting_reason(pod)}"
        if index not in self._pods and self._checked - self._started > self.pending_timeout_s:
            self._states[index], self._why[index] = 1, f"no pod after {self.pending_timeout_s:.0f} s"
        return self._states.get(index)

    def pod_name(self, index: int) -> str:
        return self._pods.get(index, f"{self.name}-{index}-*")

    def last_words(self, index: int) -> list[str]:
        """Why pod ``index`` never ran, or the end of its log."""
        if index in self._why:
            return [self._why[index]]
        try:
            return self.core.read_namespaced_pod_log(self.pod_name(index), self.namespace, tail_lines=20).splitlines()
        except Exception:  # noqa: BLE001  a pod gone or never scheduled has no log; the error says the rest
            return []

    def stop(self, index: int) -> None:
        """Deletes pod ``index`` (its container gets SIGTERM); the Job's other pods go with delete()."""
        from kubernetes.client.exceptions import ApiException

        if index not in self._pods:
            return
        try:
            self.core.delete_namespaced_pod(self._pods[index], self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise

    def delete(self) -> None:
        from kubernetes.client.exceptions import ApiException

        for kind in reversed(self.created):
            try:
                if kind == "job":  # Background: the Job's pods go with it
                    self.batch.delete_namespaced_job(self.name, self.namespace, propagation_policy="Background")
                else:
                    self.core.delete_namespaced_service(self.name, self.namespace)
            except ApiException as e:
                if e.status != 404:
                    raise
        self.created.clear()


def _exit_code(pod) -> int | None:
    statuses = pod.status.container_statuses or []
    terminated = statuses[0].state.terminated if statuses and statuses[0].state else None
    if terminated is not None:
        code = terminated.exit_code
        return -(code - 128) if code > 128 else code  # 137: killed by signal 9 (OOM kills included)
    if pod.status.phase == "Failed":  # evicted before its container ran
        return 1
    return None


def _waiting_reason(pod) -> str:
    """Why a pod is not running: its PodScheduled condition's message, else its container's wait reason."""
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status != "True":
            return condition.message or condition.reason or "not scheduled"
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting:
            return " ".join(filter(None, (status.state.waiting.reason, status.state.waiting.message)))
    return "Pending"


def _pod_namespace() -> str:
    try:
        with open(os.path.join(SERVICE_ACCOUNT_DIR, "namespace")) as f:
            return f.read().strip()
    except OSError:
        return os.environ.get("POD_NAMESPACE", "default")


class _PodWorker:
    """One worker pod, as the chief's watch loop sees it (poll, stop, last_words, name: LocalWorker's)."""

    def __init__(self, pods: KubernetesPods, index: int):
        self.pods, self.index = pods, index

    @property
    def name(self) -> str:
        return f"pod {self.pods.namespace}/{self.pods.pod_name(self.index)}"

    def poll(self) -> int | None:
        return self.pods.state(self.index)

    def stop(self) -> None:
        self.pods.stop(self.index)

    def last_words(self) -> list[str]:
        return self.pods.last_words(self.index)


class LocalPods:
    """The local launcher's stand-in for Kubernetes: the Job's pods run as processes here, from the
    same manifests; the Service's DNS names are loopback ports."""

    def __init__(self, settings: dict, log_dir: str):
        self.settings, self.log_dir, self.name = settings, log_dir, _job_name()
        self.workers: list[LocalWorker] = []

    def threads_per_worker(self, n: int) -> int:
        return max(1, (os.cpu_count() or 1) // n)  # the pods share this machine

    def cluster(self, n: int) -> dict:
        return local_cluster(n)

    def describe(self, n: int) -> str:
        return (f"{n} workers: the chief in this task, {n - 1} worker pod(s) of Job {self.name} run as local "
                "processes (the local launcher stands in for Kubernetes)")

    def start(self, spec: dict) -> list:
        n = len(spec["cluster"]["worker"]) - 1
        service, job = worker_manifests(self.name, "local", self.settings, spec, n)
        os.makedirs(self.log_dir, exist_ok=True)
        for manifest in (service, job):
            with open(os.path.join(self.log_dir, f"{self.name}-{manifest['kind'].lower()}.json"), "w") as f:
                json.dump(manifest, f, indent=1)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        for index in range(job["spec"]["completions"]):
            pod = f"{self.name}-{index}"
            env = {**os.environ, "PYTHONPATH": python_path(), POD_INDEX_ENV: str(index), "HOSTNAME": pod,
                   **{e["name"]: e["value"] for e in container["env"]}}
            self.workers.append(LocalWorker(container["command"] + container.get("args", []), env,
                                            os.path.join(self.log_dir, f"{pod}.log"), name=f"pod {pod}"))
        return list(self.workers)

    def delete(self) -> None:
        """What deleting the Job does on a cluster: its pods' processes end."""
        for worker in self.workers:
            worker.kill()

"""Worker pods of a multi-worker GanTrainer on Kubernetes (training/worker_pods.py).

The manifests are checked by the Kubernetes client's own models; the chief's side runs for real
(a real chief training process, Kubernetes' Python client) against a fake Kubernetes API server
on loopback, the one thing that cannot run here: it records what the chief creates and deletes and
reports the worker pods' states. The pods themselves run for real in tests/test_kubeflow_launch.py,
where the local launcher runs them as processes.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from tfx_gan.training.config import TrainConfig
from tfx_gan.training.multi_worker import WorkerFailed, local_cluster, train_on_workers
from tfx_gan.training import worker_pods

RESOURCES = {"requests": {"cpu": "4", "memory": "8G"}, "limits": {"cpu": "8", "memory": "16G", "nvidia.com/gpu": "1"}}
SETTINGS = {"image": "registry/tfx-gan:test", "resources": RESOURCES, "port": 2222}


def deserialize(manifest: dict, kind: str):
    """The manifest read by the Kubernetes client's model classes (what the API server would get)."""
    return client.ApiClient().deserialize(SimpleNamespace(data=json.dumps(manifest)), kind)


def test_manifests_are_a_headless_service_and_an_indexed_job():
    spec = {"cluster": {"worker": ["10.0.0.5:2222", "w-0.w.ns.svc:2222", "w-1.w.ns.svc:2222"]}, "threads": 4}
    service, job = worker_pods.worker_manifests("w", "ns", SETTINGS, spec, 2, owner={"name": "chief", "uid": "u-1"},
                                                service_account="pipeline-runner")
    service, job = deserialize(service, "V1Service"), deserialize(job, "V1Job")
    assert service.spec.cluster_ip == "None" and service.spec.publish_not_ready_addresses
    assert service.spec.ports[0].port == 2222
    pod = job.spec.template
    assert service.spec.selector.items() <= pod.metadata.labels.items()  # the Service finds the Job's pods
    assert pod.spec.subdomain == service.metadata.name  # so pod i is w-i.w.ns.svc in DNS
    assert (job.spec.completion_mode, job.spec.completions, job.spec.parallelism, job.spec.backoff_limit) == (
        "Indexed", 2, 2, 0)
    assert pod.spec.restart_policy == "Never" and pod.spec.service_account_name == "pipeline-runner"
    (container,) = pod.spec.containers
    assert container.image == SETTINGS["image"] and container.command == worker_pods.WORKER_COMMAND
    assert container.resources.requests == RESOURCES["requests"] and container.resources.limits == RESOURCES["limits"]
    (env,) = container.env
    assert json.loads(env.value) == spec
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == ("Pod", "chief", "u-1")


class FakeKubernetes(ThreadingHTTPServer):
    """A Kubernetes API server's few endpoints the chief uses; ``pod_exit`` sets the worker pods' state."""

    def __init__(self, chief_ip: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.chief_ip, self.created, self.deleted, self.pod_exit = chief_ip, {}, [], {}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        """Quiet: http.server would print every request to stderr."""

    def _send(self, body, status=200, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url, server = urlparse(self.path), self.server
        if url.path == "/api/v1/namespaces/ns/pods/chief":
            return self._send({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "chief", "uid": "uid-chief"},
                               "spec": {"serviceAccountName": "pipeline-runner", "containers": [{"name": "main"}]},
                               "status": {"podIP": server.chief_ip}})
        if url.path == "/api/v1/namespaces/ns/pods":
            job = server.created["job"]
            assert parse_qs(url.query)["labelSelector"] == [f"{worker_pods.LABEL}={job['metadata']['name']}"]
            items = []
            for i in range(job["spec"]["completions"]):
                code = server.pod_exit.get(i)
                metadata = {"name": f"{job['metadata']['name']}-{i}-abcde",
                            "annotations": {"batch.kubernetes.io/job-completion-index": str(i)}}
                if code == "unschedulable":
                    items.append({"metadata": metadata, "status": {"phase": "Pending", "conditions": [
                        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}})
                    continue
                state = {"terminated": {"exitCode": code}} if code is not None else {"running": {}}
                items.append({"metadata": metadata,
                              "status": {"phase": "Running" if code is None else "Failed", "containerStatuses": [
                                  {"name": "worker", "image": "x", "imageID": "x", "ready": code is None,
                                   "restartCount": 0, "state": state}]}})
            return self._send({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if url.path.endswith("/log"):
            return self._send("step 3/400\nResourceExhausted: out of memory\n", content_type="text/plain")
        self._send({"kind": "Status", "code": 404}, 404)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        kinds = {"/api/v1/namespaces/ns/services": "service", "/apis/batch/v1/namespaces/ns/jobs": "job"}
        self.server.created[kinds[self.path]] = body
        self._send(body, 201)

    def do_DELETE(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        url = urlparse(self.path)  # the policy may come as a query parameter or in DeleteOptions
        policy = parse_qs(url.query).get("propagationPolicy", [body.get("propagationPolicy")])[0]
        self.server.deleted.append((url.path, policy))
        self._send({"kind": "Status", "apiVersion": "v1", "status": "Success"})


@pytest.fixture
def kubernetes_api():
    # the chief's pod IP and collective port: a free loopback port, as one pod's would be
    host, port = local_cluster(1)["worker"][0].rsplit(":", 1)
    server = FakeKubernetes(host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = server.url
    yield server, client.ApiClient(configuration), int(port)
    server.shutdown()


def test_the_chief_creates_its_worker_pods_names_a_dead_one_and_deletes_them(kubernetes_api, tmp_path):
    server, api_client, port = kubernetes_api
    pods = worker_pods.KubernetesPods({**SETTINGS, "port": port}, api_client=api_client, namespace="ns",
                                      chief_pod="chief")
    name = pods.name
    assert pods.cluster(3) == {"worker": [f"{server.chief_ip}:{port}", f"{name}-0.{name}.ns.svc:{port}",
                                          f"{name}-1.{name}.ns.svc:{port}"]}
    assert pods.threads_per_worker(3) == 4  # the pod's CPU request, not the node's cores

    def kill_pod_1_once_created():  # the second worker pod dies (exit code 137: SIGKILL, e.g. an OOM kill)
        while "job" not in server.created:
            threading.Event().wait(0.1)
        server.pod_exit[1] = 137

    threading.Thread(target=kill_pod_1_once_created, daemon=True).start()
    config = TrainConfig.from_dict({"architecture": "dcgan", "train_steps": 4, "batch_size": 8, "num_workers": 3,
                                    "mixed_precision": "off"})
    logs = []
    with pytest.raises(WorkerFailed) as failed:
        train_on_workers(config, [str(tmp_path / "none.tfrecord.gz")], (28, 28, 1), 0, run_dir=str(tmp_path / "run"),
                         checkpoint_dir=str(tmp_path / "ckpt"), serving_dir=str(tmp_path / "serving"),
                         config_path=str(tmp_path / "c.json"), log=logs.append, pods=pods)
    message = str(failed.value)
    assert f"training worker 2 of 3 (pod ns/{name}-1-abcde) was killed by signal 9" in message, message
    assert "(its last words: ResourceExhausted: out of memory)" in message
    assert f"Job ns/{name} behind the headless Service {name}" in logs[0]

    service, job = worker_pods.worker_manifests(name, "ns", {**SETTINGS, "port": port},
                                                json.loads(job_spec_env(server.created["job"])), 2,
                                                owner={"name": "chief", "uid": "uid-chief"},
                                                service_account="pipeline-runner")
    assert server.created == {"service": service, "job": job}
    worker_spec = json.loads(job_spec_env(job))
    assert worker_spec["cluster"] == pods.cluster(3) and json.loads(worker_spec["config"])["num_workers"] == 3
    # the workers stopped (their pods deleted), then the Job, the rest of its pods with it, and the Service
    assert server.deleted == [(f"/api/v1/namespaces/ns/pods/{name}-0-abcde", None),
                              (f"/api/v1/namespaces/ns/pods/{name}-1-abcde", None),
                              (f"/apis/batch/v1/namespaces/ns/jobs/{name}", "Background"),
                              (f"/api/v1/namespaces/ns/services/{name}", None)]


def test_a_worker_pod_that_never_starts_fails_the_run_with_the_schedulers_reason(kubernetes_api):
    server, api_client, port = kubernetes_api
    pods = worker_pods.KubernetesPods({**SETTINGS, "port": port}, api_client=api_client, namespace="ns",
                                      chief_pod="chief", pending_timeout_s=0)
    server.pod_exit[0] = "unschedulable"
    (worker,) = pods.start({"cluster": pods.cluster(2), "threads": 4})
    assert worker.poll() == 1
    assert worker.last_words() == ["not running after 0 s: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."]
    assert worker.name == f"pod ns/{pods.name}-0-abcde"
    pods.delete()
    assert [path for path, _ in server.deleted] == [f"/apis/batch/v1/namespaces/ns/jobs/{pods.name}",
                                                    f"/api/v1/namespaces/ns/services/{pods.name}"]


def job_spec_env(job: dict) -> str:
    (env,) = job["spec"]["template"]["spec"]["containers"][0]["env"]
    return env["value"]


def test_without_the_compiled_env_there_are_no_pods(monkeypatch):
    monkeypatch.delenv(worker_pods.WORKER_PODS_ENV, raising=False)
    assert worker_pods.from_environment() is None
    monkeypatch.setenv(worker_pods.WORKER_PODS_ENV, worker_pods.pool_settings("img", RESOURCES))
    monkeypatch.setenv(worker_pods.LOCAL_PODS_ENV, "/tmp/pods")
    assert isinstance(worker_pods.from_environment(), worker_pods.LocalPods)

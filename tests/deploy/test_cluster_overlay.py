"""deploy/overlays/cluster: the scaled-out topology renders, validates and is wired as documented.

The overlay is rendered once with ``kubectl kustomize`` (offline); core kinds validate
strictly against Kubernetes' schemas, the custom ones (KEDA's ScaledObject, the RabbitMQ
operator's RabbitmqCluster) get focused checks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from relaygraph.workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "deploy" / "overlays" / "cluster"
K8S_VERSION = "1.30.0"
NOT_RESOURCES = {"redis-cluster-values.yaml"}  # the Redis Cluster chart's values


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not on PATH")
    done = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _one(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_every_file_is_used_by_the_kustomization() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    used = {r for r in kustomization["resources"] if not r.startswith("..")}
    used |= {p["path"] for p in kustomization["patches"]}
    assert used == {p.name for p in OVERLAY.glob("*.yaml")} - {"kustomization.yaml"} - NOT_RESOURCES


def test_core_resources_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    core = [d for d in rendered if "." not in d["apiVersion"].split("/")[0]
            or d["apiVersion"].startswith(("apps/", "policy/"))]  # fmt: skip
    assert {d["kind"] for d in core} >= {"Deployment", "ConfigMap", "Secret", "Service"}
    for doc in core:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_workers_use_the_cluster_and_rabbitmq(rendered: list[dict[str, Any]]) -> None:
    secret = _one(rendered, "Secret", "relaygraph-secrets")["stringData"]
    assert secret["RELAYGRAPH_REDIS_URL"].startswith("redis://")
    assert "redis-cluster" in secret["RELAYGRAPH_REDIS_URL"]
    broker = secret["RELAYGRAPH_BROKER_URL"]
    rabbitmq = _one(rendered, "RabbitmqCluster", "relaygraph-rabbitmq")
    assert broker.startswith("amqp://") and f"@{rabbitmq['metadata']['name']}:5672/" in broker
    config = _one(rendered, "ConfigMap", "relaygraph-config")["data"]
    assert int(config["RELAYGRAPH_INDEX_BUCKETS"]) >= 3  # spread over at least 3 primaries
    assert int(config["RELAYGRAPH_COMMIT_REPLICAS"]) >= 1
    fields = {f"RELAYGRAPH_{name.upper()}" for name in WorkerSettings.model_fields}
    named = {k for k in (*config, *secret) if k.startswith("RELAYGRAPH_")}
    assert named - {"RELAYGRAPH_REDIS_HOST_PORT", "RELAYGRAPH_API_KEY"} <= fields
    for name in ("relaygraph-worker", "relaygraph-api", "relaygraph-flower"):
        (container,) = _one(rendered, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        sources = {next(iter(v.values()))["name"] for v in container["envFrom"]}
        assert sources == {"relaygraph-config", "relaygraph-secrets"}, name


def test_keda_scales_on_the_rabbitmq_queue(rendered: list[dict[str, Any]]) -> None:
    scaled = _one(rendered, "ScaledObject", "relaygraph-worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == WorkerSettings().default_queue
    assert trigger["metadata"]["hostFromEnv"] == "RELAYGRAPH_BROKER_URL"
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_rabbitmq_waits_for_the_longest_node(rendered: list[dict[str, Any]]) -> None:
    """A consumer holding an unacked (late-ack) message past consumer_timeout loses its
    channel: the timeout must exceed the broker visibility timeout the workers assume."""
    rabbitmq = _one(rendered, "RabbitmqCluster", "relaygraph-rabbitmq")
    assert rabbitmq["apiVersion"] == "rabbitmq.com/v1beta1"
    assert rabbitmq["spec"]["replicas"] >= 3
    config = rabbitmq["spec"]["rabbitmq"]["additionalConfig"].splitlines()
    settings = {k.strip(): v.strip() for k, v in (line.split("=", 1) for line in config)}
    visibility = int(_one(rendered, "ConfigMap", "relaygraph-config")["data"][
        "RELAYGRAPH_VISIBILITY_TIMEOUT"])  # fmt: skip
    assert int(settings["consumer_timeout"]) >= visibility * 1000


def test_the_redis_cluster_values_give_every_primary_a_replica() -> None:
    values = yaml.safe_load((OVERLAY / "redis-cluster-values.yaml").read_text())
    nodes, replicas = values["cluster"]["nodes"], values["cluster"]["replicas"]
    assert replicas >= 1 and nodes // (replicas + 1) >= 3
    assert "appendonly yes" in values["redis"]["configmap"]

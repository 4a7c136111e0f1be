"""deploy/: the kustomize base validates offline against Kubernetes' schemas.

Core kinds go through kubernetes-validate's bundled schemas (strict: unknown fields are
errors); KEDA's ScaledObject (a CRD, no bundled schema) gets a focused structural check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

BASE = Path(__file__).resolve().parents[2] / "deploy" / "base"
K8S_VERSION = "1.30.0"


def resources() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((BASE / name).read_text()):
            found.append((name, doc))
    return found


def by_kind(kind: str) -> dict[str, Any]:
    return next(
        doc for _, doc in resources() if doc["kind"] == kind and "worker" in doc["metadata"]["name"]
    )


def test_every_file_is_listed_in_the_kustomization() -> None:
    listed = {name for name, _ in resources()}
    assert listed == {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize(
    ("name", "doc"),
    [r for r in resources() if r[1]["apiVersion"] != "keda.sh/v1alpha1"],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_core_resources_validate_strictly(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    doc = by_kind("Deployment")
    broken = {**doc, "spec": {**doc["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_scaled_object_targets_the_worker_queue() -> None:
    scaled = next(doc for _, doc in resources() if doc["kind"] == "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == by_kind("Deployment")["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == "relaygraph"  # the default Celery queue
    assert int(trigger["metadata"]["listLength"]) > 0
    secret = next(doc for _, doc in resources() if doc["kind"] == "Secret")
    assert trigger["metadata"]["addressFromEnv"] in secret["stringData"]


def test_workers_shut_down_gracefully_and_disruptions_are_bounded() -> None:
    worker = by_kind("Deployment")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= 120
    assert worker["securityContext"]["runAsNonRoot"] is True
    pdb = by_kind("PodDisruptionBudget")
    assert (
        pdb["spec"]["selector"]["matchLabels"]
        == by_kind("Deployment")["spec"]["selector"]["matchLabels"]
    )


def test_api_deployment_probes_ok_and_service_targets_it() -> None:
    docs = {doc["metadata"]["name"] + "/" + doc["kind"]: doc for _, doc in resources()}
    api = docs["relaygraph-api/Deployment"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["relaygraph", "serve"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ok", "port": "http"}
    service = docs["relaygraph-api/Service"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]

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


def _flower_container() -> dict[str, Any]:
    flower = next(
        doc for _, doc in resources() if doc["metadata"]["name"] == "relaygraph-flower"
        and doc["kind"] == "Deployment"
    )  # fmt: skip
    (container,) = flower["spec"]["template"]["spec"]["containers"]
    return container


def _start_flower(tmp_path: Path, basic_auth: str | None) -> Any:
    """Run the Flower container's start command with a stand-in ``celery`` on PATH."""
    import os
    import subprocess

    fake = tmp_path / "celery"
    fake.write_text('#!/bin/sh\necho "celery $*"\n')
    fake.chmod(0o755)
    container = _flower_container()
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    if basic_auth is not None:
        env["FLOWER_BASIC_AUTH"] = basic_auth
    return subprocess.run(
        [*container["command"], *container["args"]], env=env, capture_output=True, text=True
    )


def _shipped_basic_auth() -> str:
    secret = next(doc for _, doc in resources() if doc["kind"] == "Secret")
    return secret["stringData"]["FLOWER_BASIC_AUTH"]


@pytest.mark.parametrize("value", ["shipped", None, "", "admin:", "change-me:change-me"])
def test_flower_refuses_to_start_with_the_placeholder_password(
    tmp_path: Path, value: str | None
) -> None:
    started = _start_flower(tmp_path, _shipped_basic_auth() if value == "shipped" else value)
    assert started.returncode == 64, started
    assert "FLOWER_BASIC_AUTH" in started.stderr and "refusing" in started.stderr
    assert "celery" not in started.stdout


def test_flower_starts_with_a_real_password(tmp_path: Path) -> None:
    started = _start_flower(tmp_path, "admin:0123456789abcdef")
    assert started.returncode == 0, started
    assert started.stdout.strip() == "celery -A relaygraph.workers.app flower --port=5555"


def test_api_deployment_probes_ok_and_service_targets_it() -> None:
    docs = {doc["metadata"]["name"] + "/" + doc["kind"]: doc for _, doc in resources()}
    api = docs["relaygraph-api/Deployment"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["relaygraph", "serve"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ok", "port": "http"}
    service = docs["relaygraph-api/Service"]
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]

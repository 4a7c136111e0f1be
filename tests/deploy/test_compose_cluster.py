"""docker-compose.yml's ``cluster`` profile: the scaled-out topology, wired as documented.

Checked statically, as the rest of the file (tests/deploy/test_compose.py validates the
whole file against the compose specification): a 6-node Redis Cluster formed by an init
job, RabbitMQ as the broker, workers and an API pointed at them, nothing of it started
without the profile.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relaygraph.workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
NODES = [f"redis-node-{n}" for n in range(1, 7)]
CLUSTER = {*NODES, "redis-cluster-init", "rabbitmq", "cluster-worker", "cluster-api"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_cluster_services_start_only_with_the_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {name for name, s in services.items() if s.get("profiles") == ["cluster"]} == CLUSTER
    for name in ("redis", "worker", "api", "flower"):
        assert "profiles" not in services[name]  # `docker compose up` is unchanged


def test_every_node_is_a_durable_cluster_node_announcing_its_name(compose: dict[str, Any]) -> None:
    for name in NODES:
        node = compose["services"][name]
        command = node["command"]
        option = {command[i]: command[i + 1] for i in range(1, len(command) - 1, 2)}
        assert option["--cluster-enabled"] == "yes" and option["--appendonly"] == "yes"
        # clients are redirected by name (MOVED), which resolves on the compose network
        assert option["--cluster-announce-hostname"] == name
        assert option["--cluster-preferred-endpoint-type"] == "hostname"
        assert option["--lazyfree-lazy-user-flush"] == "no"
        assert f"{name}:/data" in node["volumes"] and name in compose["volumes"]
        assert "healthcheck" in node


def test_the_init_job_forms_three_primaries_with_a_replica_each(compose: dict[str, Any]) -> None:
    init = compose["services"]["redis-cluster-init"]
    script = " ".join(init["command"])
    assert "--cluster-replicas 1" in script and "--cluster-yes" in script
    assert "for n in 1 2 3 4 5 6" in script and "cluster_state:ok" in script  # once
    assert "$$" in script and not re.search(r"(?<!\$)\$(?![$({])", script)  # compose escapes
    assert {n: d["condition"] for n, d in init["depends_on"].items()} == dict.fromkeys(
        NODES, "service_healthy"
    )
    assert init["restart"] == "no"


def test_workers_use_the_cluster_and_rabbitmq(compose: dict[str, Any]) -> None:
    env = compose["x-relaygraph-cluster-env"]
    assert env["RELAYGRAPH_REDIS_URL"] == "redis://redis-node-1:6379/0"
    assert env["RELAYGRAPH_BROKER_URL"].startswith("amqp://relaygraph:")
    assert env["RELAYGRAPH_BROKER_URL"].endswith("@rabbitmq:5672/")
    assert env["RELAYGRAPH_STORE_URL"] == "redis://redis:6379/0"  # search: the single Redis
    fields = {f"RELAYGRAPH_{name.upper()}" for name in WorkerSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    assert {"RELAYGRAPH_INDEX_BUCKETS", "RELAYGRAPH_COMMIT_REPLICAS"} <= set(env)
    for name in ("cluster-worker", "cluster-api"):
        service = compose["services"][name]
        for key in ("RELAYGRAPH_REDIS_URL", "RELAYGRAPH_BROKER_URL", "RELAYGRAPH_INDEX_BUCKETS"):
            assert service["environment"][key] == env[key], (name, key)
        depends = service["depends_on"]
        assert depends["redis-cluster-init"]["condition"] == "service_completed_successfully"
        assert depends["rabbitmq"]["condition"] == "service_healthy"
    assert compose["services"]["cluster-worker"]["stop_signal"] == "SIGTERM"


def test_rabbitmq_waits_for_the_longest_node(compose: dict[str, Any]) -> None:
    rabbitmq = compose["services"]["rabbitmq"]
    env = rabbitmq["environment"]
    timeout = int(env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"].split("consumer_timeout")[1])
    assert timeout >= WorkerSettings().visibility_timeout * 1000
    assert env["RABBITMQ_DEFAULT_PASS"] in compose["x-relaygraph-cluster-env"][
        "RELAYGRAPH_BROKER_URL"]  # fmt: skip
    assert "healthcheck" in rabbitmq and "rabbitmq-data" in compose["volumes"]

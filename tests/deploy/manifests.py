"""Read the deployment files the way their tools do: docker-compose.yml with its variables
interpolated from .env.example, the Kubernetes overlays rendered by `kubectl kustomize`, and
from both, each cozeplus container as (service, command, environment)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod", "prod-monitoring")

Doc = dict[str, Any]


# ---- compose --------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default} and ${VAR:?error}, recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"compose needs {name}: {arg}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def load_compose(env: dict[str, str] | None = None) -> Doc:
    """docker-compose.yml as `docker compose config` sees it before its own normalisation:
    variables interpolated, then numeric strings where the spec wants numbers made numbers
    (compose casts after interpolation; the schema checks the cast result)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    doc: Doc = interpolate(raw, read_env_file(ENV_EXAMPLE) if env is None else env)
    for service in doc["services"].values():
        replicas = service.get("deploy", {}).get("replicas")
        if isinstance(replicas, str):
            service["deploy"]["replicas"] = int(replicas)
    return doc


# ---- kustomize ------------------------------------------------------------------------------


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed: the overlays cannot be rendered with kustomize")
    return found


def render_overlay(name: str) -> list[Doc]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


_GENERATED_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def base_name(doc: Doc) -> str:
    """A generated ConfigMap's or Secret's name without kustomize's content-hash suffix."""
    name: str = doc["metadata"]["name"]
    if doc["kind"] in ("ConfigMap", "Secret"):
        return _GENERATED_SUFFIX.sub("", name)
    return name


def by_kind(docs: list[Doc], kind: str, *, raw: bool = False) -> dict[str, Doc]:
    """Documents of one kind by name; generated names without their hash unless `raw`."""
    return {(d["metadata"]["name"] if raw else base_name(d)): d for d in docs if d["kind"] == kind}


def workloads(docs: list[Doc]) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")}


# ---- containers -----------------------------------------------------------------------------


@dataclass
class Container:
    """One cozeplus container as it would run: `cozeplus <args>` with this environment."""

    source: str
    service: str
    args: list[str]
    env: dict[str, str]
    # Kubernetes only: the probes, by kind (startupProbe, readinessProbe, livenessProbe).
    probes: dict[str, Doc] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    # Compose only: the healthcheck command.
    healthcheck: list[str] = field(default_factory=list)
    # Mounted ConfigMap files: mount path -> content.
    files: dict[str, str] = field(default_factory=dict)


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def image_env() -> dict[str, str]:
    """The image's COZEPLUS_* ENV: the settings every container starts with (PATH and the
    Python switches are the image's own business, not the test machine's)."""
    return {k: v for k, v in dockerfile().envs.items() if k.startswith("COZEPLUS_")}


def compose_containers(doc: Doc) -> list[Container]:
    entrypoint = dockerfile_json("ENTRYPOINT")
    containers = []
    for name, service in doc["services"].items():
        if "build" not in service:
            continue  # nats, postgres: their own images
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        env = {**image_env(), **{k: "" if v is None else str(v) for k, v in environment.items()}}
        containers.append(
            Container(
                source="compose",
                service=name,
                args=[*entrypoint[1:], *service["command"]],
                env=env,
                healthcheck=service["healthcheck"]["test"],
            )
        )
    return containers


def dockerfile_json(instruction: str) -> list[str]:
    for item in dockerfile().structure:
        if item["instruction"] == instruction:
            value: list[str] = json.loads(item["value"])
            return value
    raise AssertionError(f"Dockerfile has no {instruction}")


def k8s_containers(docs: list[Doc], source: str) -> list[Container]:
    config_maps = by_kind(docs, "ConfigMap", raw=True)
    secrets = by_kind(docs, "Secret", raw=True)
    entrypoint = dockerfile_json("ENTRYPOINT")
    containers = []
    for workload in workloads(docs).values():
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for spec in pod["containers"]:
            if not spec["image"].rsplit("/", 1)[-1].startswith("cozeplus"):
                continue
            env = dict(image_env())
            for source_ref in spec.get("envFrom", []):
                if "configMapRef" in source_ref:
                    env.update(config_maps[source_ref["configMapRef"]["name"]]["data"])
                elif "secretRef" in source_ref:
                    secret = secrets.get(source_ref["secretRef"]["name"])
                    assert secret or source_ref["secretRef"].get("optional"), source_ref
            for var in spec.get("env", []):
                env[var["name"]] = resolve_env_var(var, config_maps, secrets)
            files = {}
            for mount in spec.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if "configMap" in volume:
                    data = config_maps[volume["configMap"]["name"]]["data"]
                    for key, content in data.items():
                        files[f"{mount['mountPath']}/{key}"] = content
            containers.append(
                Container(
                    source=source,
                    service=spec["name"],
                    args=[*(spec.get("command") or entrypoint)[1:], *spec.get("args", [])],
                    env=env,
                    probes={
                        kind: spec[kind]
                        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
                        if kind in spec
                    },
                    ports={p["name"]: p["containerPort"] for p in spec.get("ports", [])},
                    files=files,
                )
            )
    return containers


def resolve_env_var(var: Doc, config_maps: dict[str, Doc], secrets: dict[str, Doc]) -> str:
    if "value" in var:
        return str(var["value"])
    source = var["valueFrom"]
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        return str(config_maps[ref["name"]]["data"][ref["key"]])
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        secret = secrets.get(ref["name"])
        if secret is None:
            # prod: created out of band (docs/deploy.md); stand in a value of the right kind.
            return f"test-stand-in-for-{ref['name']}-{ref['key']}"
        if "stringData" in secret:
            return str(secret["stringData"][ref["key"]])
        return base64.b64decode(secret["data"][ref["key"]]).decode()
    raise AssertionError(f"unsupported env source {source}")

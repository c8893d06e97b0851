"""Each container the deployment files describe, run here as the process it would be.

For docker-compose.yml and every overlay, each cozeplus container's command (the image's
ENTRYPOINT plus its command/args) and environment (the image's ENV, then the ConfigMaps,
Secrets and literals the manifest gives it) start `cozeplus <service>`. Only what names the
cluster is moved onto this machine: NATS URLs go to the test's own NATS, `registry:50051`
and every listening port to free loopback ports, the database to SQLite, mounted files to a
temporary folder. Every other setting reaches the service as written, so a bad value in a
manifest fails here. Each service must then pass its own health checks as the manifest
states them (compose's healthcheck command; Kubernetes' startup, readiness and liveness
probes), and the system so started must answer a chat end to end.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet

from cozeplus.embedded_nats import nats_server_binary
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel
from services.cli.services import service_main
from services.cli.system import ServiceProcess, free_port, grpc_serving
from services.edge.settings import EdgeSettings
from tests.deploy.manifests import (
    COMPOSE_FILE,
    OVERLAYS,
    Container,
    by_kind,
    compose_containers,
    k8s_containers,
    load_compose,
    render_overlay,
)

SOURCES = ("compose", *OVERLAYS[:2])  # prod-monitoring runs the same containers as prod
START_ORDER = ("registry", "edge", "runner", "knowledge")


def containers_of(source: str) -> dict[str, Container]:
    if source == "compose":
        doc = load_compose()
        found = compose_containers(doc)
        raw = yaml.safe_load(COMPOSE_FILE.read_text())
        for container in found:
            # Compose configs are files mounted at their target.
            for config in raw["services"][container.service].get("configs", []):
                source_file = doc["configs"][config["source"]]["file"]
                container.files[config["target"]] = (COMPOSE_FILE.parent / source_file).read_text()
    else:
        found = k8s_containers(render_overlay(source), source)
    return {c.service: c for c in found}


@dataclass
class Loopback:
    """Where the cluster's names land on this machine."""

    nats_url: str
    folder: Path
    registry_port: int
    # container port -> the free port the test process listens on instead
    ports: dict[int, int]

    @classmethod
    def make(cls, nats_url: str, folder: Path) -> Loopback:
        registry_port = free_port()
        ports = {50051: registry_port, **{p: free_port() for p in (8080, 50061, 9100, 9101)}}
        return cls(nats_url, folder, registry_port, ports)

    def localize(self, container: Container) -> dict[str, str]:
        env = dict(container.env)
        # The shared settings ConfigMap gives every pod every service's keys; each service
        # reads only its own prefix, so only those are moved (the rest stay as written).
        own = f"COZEPLUS_{container.service.upper()}_"
        for key, value in container.env.items():
            if not key.startswith(own):
                continue
            if key.endswith("_NATS_URL"):
                # A list (prod) becomes our single server; the reliability tests own lists.
                assert all(u.startswith("nats://") for u in value.split(",")), (key, value)
                env[key] = self.nats_url
            elif key.endswith("_NATS_REPLICAS"):
                assert int(value) >= 1
                env[key] = "1"  # the test's NATS is one server
            elif key.endswith("_REGISTRY_ADDR"):
                assert value == "registry:50051", (key, value)
                env[key] = f"127.0.0.1:{self.registry_port}"
            elif key == "COZEPLUS_REGISTRY_LISTEN":
                host, port = value.rsplit(":", 1)
                assert host == "0.0.0.0", "the registry must listen beyond its pod"
                env[key] = f"127.0.0.1:{self.ports[int(port)]}"
            elif key.endswith("_HOST"):
                assert value == "0.0.0.0", f"{key}: probes come from outside the container"
                env[key] = "127.0.0.1"
            elif key.endswith(("_PORT", "_HEALTH_PORT")) and int(value) in self.ports:
                env[key] = str(self.ports[int(value)])
            elif key == "COZEPLUS_REGISTRY_DATABASE_URL":
                assert value.startswith(("postgresql://", "test-stand-in-for-")), value
                env[key] = f"sqlite:///{self.folder / 'registry.db'}"
            elif key == "COZEPLUS_REGISTRY_DATA_DIR":
                env[key] = str(self.folder)
            elif key == "COZEPLUS_REGISTRY_SECRET_KEY" and value.startswith("test-stand-in-for-"):
                # prod's Secret is the operator's: a Fernet key of our own stands in.
                env[key] = Fernet.generate_key().decode()
            elif value.startswith("/etc/cozeplus/"):
                assert value in container.files, f"{key}={value} is not mounted"
                local = self.folder / container.service / Path(value).name
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_text(container.files[value])
                env[key] = str(local)
        return env

    def probe(self, container: Container, probe: dict[str, object]) -> bool:
        if "grpc" in probe:
            spec = probe["grpc"]
            assert isinstance(spec, dict)
            return grpc_serving(f"127.0.0.1:{self.ports[int(spec['port'])]}")()
        spec = probe["httpGet"]
        assert isinstance(spec, dict)
        port = spec["port"]
        container_port = container.ports[port] if isinstance(port, str) else int(port)
        url = f"http://127.0.0.1:{self.ports[container_port]}{spec['path']}"
        try:
            return httpx.get(url, timeout=2.0).status_code < 400
        except httpx.HTTPError:
            return False


def health_command(container: Container, env: dict[str, str]) -> int:
    """The container's own health check command, run as the container would run it."""
    test = container.healthcheck
    assert test[:2] == ["CMD", "cozeplus"], test
    return subprocess.run(
        [sys.executable, "-m", "services", *test[2:]],
        env={**os.environ, **env},
        capture_output=True,
        timeout=30,
        check=False,
    ).returncode


def start(container: Container, loopback: Loopback, log_dir: Path) -> ServiceProcess:
    env = loopback.localize(container)
    if container.healthcheck:
        ready = lambda: health_command(container, env) == 0  # noqa: E731
    else:
        ready_probe = container.probes.get("readinessProbe") or container.probes["livenessProbe"]
        ready = lambda: loopback.probe(container, ready_probe)  # noqa: E731
    process = ServiceProcess(
        f"{container.source}-{container.service}",
        "services",
        env,
        log_dir / f"{container.source}-{container.service}.log",
        ready,
        args=container.args,
    )
    process.start()
    try:
        process.wait_ready(timeout=60)
    except BaseException:
        process.stop()
        raise
    return process


@dataclass
class MonitoredNats:
    url: str
    monitor_port: int

    def consumer_lag(self, stream: str, consumer: str) -> int | None:
        """What KEDA's nats-jetstream scaler reads: the consumer's pending plus unacked
        messages from /jsz, or None when no such stream and consumer exist."""
        jsz = httpx.get(
            f"http://127.0.0.1:{self.monitor_port}/jsz",
            params={"acc": "$G", "consumers": "true", "config": "true"},
            timeout=5,
        ).json()
        for account in jsz.get("account_details", []):
            for found in account.get("stream_detail", []):
                if found["name"] != stream:
                    continue
                for info in found.get("consumer_detail", []):
                    if info["name"] == consumer:
                        return int(info["num_pending"]) + int(info["num_ack_pending"])
        return None


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredNats]:
    """A NATS of the tests' own, with monitoring on, as the deployment runs it (KEDA reads it)."""
    folder = tmp_path_factory.mktemp("nats")
    port, monitor_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            str(nats_server_binary()),
            "--addr",
            "127.0.0.1",
            "--port",
            str(port),
            "--http_port",
            str(monitor_port),
            "--jetstream",
            "--store_dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _monitor_up(monitor_port):
            assert process.poll() is None, "nats-server exited"
            assert time.monotonic() < deadline, "nats-server did not come up"
            time.sleep(0.05)
        yield MonitoredNats(f"nats://127.0.0.1:{port}", monitor_port)
    finally:
        process.terminate()
        process.wait(10)


def _monitor_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def loopback(nats: MonitoredNats, tmp_path: Path) -> Loopback:
    return Loopback.make(nats.url, tmp_path)


@pytest.fixture
def started() -> Iterator[list[ServiceProcess]]:
    processes: list[ServiceProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("source", SOURCES)
def test_containers_start_their_services_and_serve_a_chat(
    source: str,
    loopback: Loopback,
    nats: MonitoredNats,
    started: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    containers = containers_of(source)
    assert set(containers) == set(START_ORDER)
    for name in START_ORDER:
        container = containers[name]
        assert container.args == [name], "each container runs `cozeplus <its service>`"
        if service_main(name) is None:
            continue  # not on this branch yet: test_knowledge_container_starts skips
        if container.healthcheck:
            env = loopback.localize(container)
            assert health_command(container, env) == 1, "unhealthy before it starts"
        process = start(container, loopback, tmp_path / "logs")
        started.append(process)
        for kind, probe in container.probes.items():
            assert loopback.probe(container, probe), f"{source} {name} {kind} fails"
        if name == "edge" and "grpc_port" in EdgeSettings.model_fields:
            # The public gRPC API listens where the Service's and compose's grpc port point.
            grpc_addr = f"127.0.0.1:{loopback.ports[50061]}"
            assert grpc_serving(grpc_addr)(), f"{source}: edge gRPC not serving at {grpc_addr}"

    chat_through(
        f"http://127.0.0.1:{loopback.ports[8080]}",
        loopback.registry_port,
        containers["registry"].env.get("COZEPLUS_SERVICE_TOKEN", ""),
    )
    if source != "compose":
        # The runner ScaledObject names a stream and consumer that exist, and KEDA's lag
        # is back to nothing once the chat has ended.
        stream, consumer = scaler_queue(source, "runner")
        assert nats.consumer_lag(stream, consumer) == 0


@pytest.mark.parametrize("source", SOURCES)
def test_knowledge_container_starts(
    source: str,
    loopback: Loopback,
    nats: MonitoredNats,
    started: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    if service_main("knowledge") is None:
        pytest.skip("services.knowledge is not on this branch yet (the knowledge helper's)")
    containers = containers_of(source)
    for name in ("registry", "knowledge"):
        started.append(start(containers[name], loopback, tmp_path / "logs"))
    for kind, probe in containers["knowledge"].probes.items():
        assert loopback.probe(containers["knowledge"], probe), kind
    if source != "compose":
        stream, consumer = scaler_queue(source, "knowledge")
        assert nats.consumer_lag(stream, consumer) == 0, "the ScaledObject's queue exists"


def scaler_queue(source: str, name: str) -> tuple[str, str]:
    triggers = by_kind(render_overlay(source), "ScaledObject")[name]["spec"]["triggers"]
    (queue,) = [t for t in triggers if t["type"] == "nats-jetstream"]
    return queue["metadata"]["stream"], queue["metadata"]["consumer"]


def chat_through(edge_url: str, registry_port: int, service_token: str) -> None:
    """A user (made as the operator CLI would, with the deployment's service credential), a
    published bot and a streamed chat answered by the runner."""
    with service_channel(f"127.0.0.1:{registry_port}", service_token) as channel:
        accounts = AccountsStub(channel)
        user = accounts.CreateUser(
            pb.CreateUserRequest(username=f"deploy_{secrets.token_hex(4)}", password="p" * 12)
        )
        token = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="t")).token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=edge_url, headers=headers, timeout=30) as http:
        created = http.post("/api/draftbot/create", json={"name": "deploy", "prompt": "hi"})
        bot_id = created.json()["data"]["bot_id"]
        published = http.post("/api/draftbot/publish", json={"bot_id": bot_id})
        assert published.json()["code"] == 0, published.text
        body = {
            "bot_id": str(bot_id),
            "user_id": "u1",
            "stream": True,
            "additional_messages": [{"role": "user", "content": "ping", "content_type": "text"}],
        }
        events = []
        with http.stream("POST", "/v3/chat", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
    completed = [e for e in events if e.get("event") == "conversation.message.completed"]
    assert any(e["content"] == "Echo: ping" for e in completed), events
    assert [e["event"] for e in events[-2:]] == ["conversation.stream.done", "done"]


def test_a_bad_setting_in_a_manifest_keeps_the_service_from_starting(
    loopback: Loopback, tmp_path: Path
) -> None:
    """Settings reach the service as written: a wrong one fails here, not in a cluster."""
    runner = containers_of("dev")["runner"]
    runner.env["COZEPLUS_RUNNER_CONCURRENCY"] = "lots"
    with pytest.raises(RuntimeError, match="exited early"):
        start(runner, loopback, tmp_path / "logs")

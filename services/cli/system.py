"""Start the services as child processes and wait until each is healthy.

`cozeplus up` composes these into the whole system; the test suite uses the same
pieces, so tests run the very processes users run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cozeplus.parent_death import stop_with_parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grpc_serving(addr: str) -> Callable[[], bool]:
    def probe() -> bool:
        with grpc.insecure_channel(addr) as channel:
            try:
                # The typeshed stub declares no methods on HealthStub.
                reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(service=""), timeout=1.0
                )
            except grpc.RpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


@dataclass
class ServiceProcess:
    """One service as a child process, its output appended to a log file."""

    name: str
    module: str
    env: Mapping[str, str]
    log_path: Path
    ready: Callable[[], bool]
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: Ctrl-C in a terminal reaches only the supervisor,
                # which then stops the children in order.
                start_new_session=True,
                # And a supervisor killed outright takes them with it.
                preexec_fn=stop_with_parent(),
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """Die without any cleanup, as a crashed machine would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def registry_process(
    *,
    data_dir: Path,
    port: int,
    nats_url: str,
    database_url: str = "",
    log_dir: Path,
    name: str = "registry",
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    addr = f"127.0.0.1:{port}"
    env = {
        "COZEPLUS_REGISTRY_LISTEN": addr,
        "COZEPLUS_REGISTRY_DATA_DIR": str(data_dir),
        "COZEPLUS_REGISTRY_DATABASE_URL": database_url,
        "COZEPLUS_REGISTRY_NATS_URL": nats_url,
        **(extra_env or {}),
    }
    return ServiceProcess(
        name, "services.registry", env, log_dir / f"{name}.log", grpc_serving(addr)
    )


def edge_process(
    *,
    host: str = "127.0.0.1",
    port: int,
    registry_addr: str,
    nats_url: str,
    log_dir: Path,
    name: str = "edge",
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        "COZEPLUS_EDGE_HOST": host,
        "COZEPLUS_EDGE_PORT": str(port),
        "COZEPLUS_EDGE_REGISTRY_ADDR": registry_addr,
        "COZEPLUS_EDGE_NATS_URL": nats_url,
        **(extra_env or {}),
    }
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return ServiceProcess(
        name,
        "services.edge",
        env,
        log_dir / f"{name}.log",
        http_ok(f"http://{probe_host}:{port}/healthz"),
    )


def runner_process(
    *,
    health_port: int,
    registry_addr: str,
    nats_url: str,
    log_dir: Path,
    name: str = "runner",
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        "COZEPLUS_RUNNER_HEALTH_PORT": str(health_port),
        "COZEPLUS_RUNNER_REGISTRY_ADDR": registry_addr,
        "COZEPLUS_RUNNER_NATS_URL": nats_url,
        **(extra_env or {}),
    }
    return ServiceProcess(
        name,
        "services.runner",
        env,
        log_dir / f"{name}.log",
        http_ok(f"http://127.0.0.1:{health_port}/healthz"),
    )


def knowledge_process(
    *,
    health_port: int,
    registry_addr: str,
    nats_url: str,
    log_dir: Path,
    name: str = "knowledge",
    extra_env: Mapping[str, str] | None = None,
) -> ServiceProcess:
    env = {
        "COZEPLUS_KNOWLEDGE_HEALTH_PORT": str(health_port),
        "COZEPLUS_KNOWLEDGE_REGISTRY_ADDR": registry_addr,
        "COZEPLUS_KNOWLEDGE_NATS_URL": nats_url,
        **(extra_env or {}),
    }
    return ServiceProcess(
        name,
        "services.knowledge",
        env,
        log_dir / f"{name}.log",
        http_ok(f"http://127.0.0.1:{health_port}/healthz"),
    )

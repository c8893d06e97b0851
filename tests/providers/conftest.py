"""Mock LLM servers for provider tests, each a real subprocess on a free port."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import httpx
import pytest

READY_PREFIX = "mock-llm listening on "
START_TIMEOUT_S = 30.0


class MockServer:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: TextIO) -> None:
        self.proc = proc
        self.url = url
        self._log = log

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = httpx.get(f"{self.url}/mock/stats").json()
        return stats

    def requests(self, *, detail: bool = False) -> list[dict[str, object]]:
        params = {"detail": "true"} if detail else {}
        items: list[dict[str, object]] = httpx.get(
            f"{self.url}/mock/requests", params=params
        ).json()
        return items

    def last_body(self) -> dict[str, object]:
        return self.requests()[-1]

    def reset(self) -> None:
        httpx.post(f"{self.url}/mock/reset").raise_for_status()


def _start(log_path: Path, args: list[str]) -> MockServer:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COZEPLUS_MOCK_LLM_")}
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.mock_llm", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    server = MockServer(proc, "", log)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=START_TIMEOUT_S)
    except queue.Empty:
        server.stop()
        raise RuntimeError(f"mock LLM did not start; see {log_path}") from None
    if not line.startswith(READY_PREFIX):
        server.stop()
        raise RuntimeError(f"mock LLM said {line!r}; see {log_path}")
    server.url = line[len(READY_PREFIX) :].strip()
    return server


@pytest.fixture(scope="session")
def start_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., MockServer]]:
    servers: list[MockServer] = []
    log_dir = tmp_path_factory.mktemp("mock-llm")

    def start(*args: str) -> MockServer:
        server = _start(log_dir / f"mock-{len(servers)}.log", list(args))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def session_mock(start_mock: Callable[..., MockServer]) -> MockServer:
    return start_mock()


@pytest.fixture
def mock_server(session_mock: MockServer) -> MockServer:
    """The shared mock with its request log and stats cleared."""
    session_mock.reset()
    return session_mock

"""A whole system of our own for reliability tests: its own NATS (one server or a cluster),
registry, edge and runners as real processes, so a test may kill and restart any of them
without disturbing the session's shared services."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cozeplus.embedded_nats import nats_server_binary
from cozeplus.rpc.v1 import conversations_pb2 as cpb
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.conversations_pb2_grpc import ConversationsStub
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel
from services.cli.system import (
    ServiceProcess,
    edge_process,
    free_port,
    registry_process,
    runner_process,
)
from tests.chat.conftest import user_message
from tests.chat.sse import Event, parse_stream

TERMINAL = ("completed", "failed", "canceled")

# The stacks the running test made: a failing test's report carries their logs (conftest).
STACKS_OF_THE_TEST: list[Stack] = []


@dataclass
class StackAccount:
    user_id: int
    headers: dict[str, str]


class Stack:
    def __init__(
        self,
        root: Path,
        nats_urls: str,
        *,
        database_url: str = "",
        models_file: Path | None = None,
        registry_env: Mapping[str, str] | None = None,
        edge_env: Mapping[str, str] | None = None,
        runner_env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.logs = root / "logs"
        self.nats_urls = nats_urls
        models = {"COZEPLUS_REGISTRY_MODELS_FILE": str(models_file)} if models_file else {}
        self.registry = registry_process(
            data_dir=root / "registry",
            port=free_port(),
            nats_url=nats_urls,
            database_url=database_url,
            log_dir=self.logs,
            extra_env={**models, **(registry_env or {})},
        )
        self.registry_addr = self.registry.env["COZEPLUS_REGISTRY_LISTEN"]
        self.edge = edge_process(
            port=free_port(),
            registry_addr=self.registry_addr,
            nats_url=nats_urls,
            log_dir=self.logs,
            extra_env=dict(edge_env or {}),
        )
        self._runner_env = {
            **({"COZEPLUS_RUNNER_MODELS_FILE": str(models_file)} if models_file else {}),
            **(runner_env or {}),
        }
        self.runners: list[ServiceProcess] = []
        self.url = f"http://127.0.0.1:{self.edge.env['COZEPLUS_EDGE_PORT']}"
        STACKS_OF_THE_TEST.append(self)

    def start(self, runners: int = 1) -> Stack:
        for service in (self.registry, self.edge):
            service.start()
            service.wait_ready(60)
        for _ in range(runners):
            self.add_runner()
        return self

    def add_runner(self) -> ServiceProcess:
        runner = runner_process(
            health_port=free_port(),
            registry_addr=self.registry_addr,
            nats_url=self.nats_urls,
            log_dir=self.logs,
            name=f"runner-{len(self.runners)}",
            extra_env=self._runner_env,
        )
        runner.start()
        runner.wait_ready(60)
        self.runners.append(runner)
        return runner

    def restart_registry(self) -> None:
        self.registry.start()
        self.registry.wait_ready(60)

    def services(self) -> list[ServiceProcess]:
        return [self.registry, self.edge, *self.runners]

    def stop(self) -> None:
        for service in (*self.runners, self.edge, self.registry):
            service.stop()

    # ------------------------------------------------------------------- clients

    def account(self) -> StackAccount:
        with service_channel(self.registry_addr) as channel:
            accounts = AccountsStub(channel)
            user = accounts.CreateUser(
                pb.CreateUserRequest(
                    username=f"user_{secrets.token_hex(6)}", password=secrets.token_urlsafe(12)
                )
            )
            key = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="t"))
        return StackAccount(user.id, {"Authorization": f"Bearer {key.token}"})

    def bot(self, account: StackAccount, model: str) -> str:
        with httpx.Client(base_url=self.url, headers=account.headers, timeout=30) as http:
            created = http.post("/api/draftbot/create", json={"name": "r", "model": model})
            assert created.status_code == 200, created.text
            bot_id = created.json()["data"]["bot_id"]
            published = http.post("/api/draftbot/publish", json={"bot_id": bot_id})
            assert published.status_code == 200, published.text
        return str(bot_id)

    def chats(self, account: StackAccount, chat_ids: list[int]) -> dict[int, cpb.ChatRun]:
        with service_channel(self.registry_addr) as channel:
            conversations = ConversationsStub(channel)
            return {
                chat_id: conversations.GetChat(
                    cpb.ChatRef(owner_id=account.user_id, chat_id=chat_id), timeout=10
                )
                for chat_id in chat_ids
            }

    def stored_answer(self, account: StackAccount, chat_id: int) -> str:
        with service_channel(self.registry_addr) as channel:
            reply = ConversationsStub(channel).ListChatMessages(
                cpb.ChatRef(owner_id=account.user_id, chat_id=chat_id), timeout=10
            )
        return "".join(m.content for m in reply.messages if m.type == "answer")

    def wait_all_terminal(
        self, account: StackAccount, chat_ids: list[int], within_s: float
    ) -> dict[int, cpb.ChatRun]:
        """Polls until every chat has ended; fails naming those that have not by then."""
        deadline = time.monotonic() + within_s
        while True:
            runs = self.chats(account, chat_ids)
            open_runs = {i: r.status for i, r in runs.items() if r.status not in TERMINAL}
            if not open_runs:
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"runs still unfinished after {within_s}s: {open_runs}")
            time.sleep(0.25)


@dataclass
class StreamResult:
    status: int
    events: list[Event] = field(default_factory=list)
    error: str = ""

    @property
    def chat_id(self) -> int:
        for event in self.events:
            if event.name.startswith("conversation.chat."):
                return int(event.data["id"])
        return 0

    @property
    def terminal(self) -> str:
        names = [e.name for e in self.events if e.name.startswith("conversation.chat.")]
        return names[-1].rsplit(".", 1)[1] if names else ""

    @property
    def streamed_answer(self) -> str:
        return "".join(
            e.data["content"]
            for e in self.events
            if e.name == "conversation.message.delta" and e.data.get("type") == "answer"
        )


def stream_chat(base_url: str, account: StackAccount, bot_id: str, text: str) -> StreamResult:
    try:
        with httpx.Client(base_url=base_url, headers=account.headers, timeout=120) as http:
            response = http.post(
                "/v3/chat",
                json={
                    "bot_id": bot_id,
                    "user_id": "u",
                    "stream": True,
                    "additional_messages": [user_message(text)],
                },
            )
    except httpx.HTTPError as exc:
        return StreamResult(0, error=repr(exc))
    if response.status_code != 200 or not response.headers["content-type"].startswith(
        "text/event-stream"
    ):
        return StreamResult(response.status_code, error=response.text[:300])
    return StreamResult(200, parse_stream(response.content))


def in_threads(count: int, work: Callable[[int], Any]) -> Callable[[], list[Any]]:
    """Starts `work(i)` for i in range(count) on threads; returns a join giving the results."""
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()

    def join() -> list[Any]:
        for thread in threads:
            thread.join(180)
            assert not thread.is_alive(), "a client hung"
        return results

    return join


# ----------------------------------------------------------------- a NATS cluster


class NatsNode:
    def __init__(self, root: Path, name: str, client_port: int, cluster_port: int) -> None:
        self.name = name
        self.root = root / name
        self.client_port = client_port
        self.cluster_port = cluster_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def start(self, routes: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "nats.conf"
        config.write_text(
            json.dumps(
                {
                    "server_name": self.name,
                    "host": "127.0.0.1",
                    "port": self.client_port,
                    "jetstream": {"store_dir": str(self.root / "store")},
                    "cluster": {
                        "name": "cozeplus-test",
                        "host": "127.0.0.1",
                        "port": self.cluster_port,
                        "routes": routes,
                    },
                }
            )
        )
        self.process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(config), "--log", str(self.root / "log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class NatsCluster:
    """Three JetStream nodes routed to each other on loopback."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.nodes = [NatsNode(root, f"n{i}", free_port(), free_port()) for i in range(size)]

    @property
    def urls(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> NatsCluster:
        routes = [f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes]
        for node in self.nodes:
            node.start(routes)
        return self

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def temp_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))

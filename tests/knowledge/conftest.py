"""A system with knowledge workers: NATS, registry and edge from tests/conftest.py, plus
worker processes this package can kill and replace."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cozepy import Coze, TokenAuth

from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.service_auth import service_channel
from services.cli.system import ServiceProcess, free_port, knowledge_process
from tests.conftest import Account

# Small enough that a killed worker's job comes back within seconds; the documents that
# exceed the size limit are made small too.
WORKER_ENV = {
    "COZEPLUS_KNOWLEDGE_ACK_WAIT_S": "3",
    "COZEPLUS_KNOWLEDGE_WEB_ALLOWED_NETWORKS": "127.0.0.0/8",
    "COZEPLUS_KNOWLEDGE_WEB_TIMEOUT_S": "60",
    "COZEPLUS_KNOWLEDGE_MAX_DOCUMENT_BYTES": "100000",
}
MAX_DOCUMENT_BYTES = 100_000
# How long a test waits for documents to leave `processing` before it fails.
PROCESSING_DEADLINE_S = 60.0


@dataclass
class Workers:
    """The knowledge workers of the test session; tests may kill them all and start more."""

    start_process: Callable[[str], ServiceProcess]
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self) -> ServiceProcess:
        process = self.start_process(f"knowledge-{len(self.processes) + 1}")
        self.processes.append(process)
        return process

    def ensure_one(self) -> None:
        if not any(p.alive for p in self.processes):
            self.start()

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture(scope="session")
def workers(work_dir: Path, nats_url: str, registry_addr: str) -> Iterator[Workers]:
    def start(name: str) -> ServiceProcess:
        process = knowledge_process(
            health_port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name=name,
            extra_env=WORKER_ENV,
        )
        process.start()
        process.wait_ready()
        return process

    pool = Workers(start)
    yield pool
    pool.stop_all()


@pytest.fixture
def knowledge_system(edge_url: str, workers: Workers) -> str:
    workers.ensure_one()
    return edge_url


@pytest.fixture
def coze(knowledge_system: str, account: Account) -> Coze:
    return Coze(auth=TokenAuth(account.token), base_url=knowledge_system)


@pytest.fixture(scope="session")
def knowledge_rpc(registry_addr: str) -> Iterator[KnowledgeStub]:
    with service_channel(registry_addr) as channel:
        yield KnowledgeStub(channel)


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def wait_processed(coze: Coze, dataset_id: str, document_ids: list[str]) -> dict[str, Any]:
    """Poll /process until no document is processing; returns the progress by id."""
    deadline = time.monotonic() + PROCESSING_DEADLINE_S
    while True:
        progress = coze.datasets.process(dataset_id=dataset_id, document_ids=document_ids)
        by_id = {p.document_id: p for p in progress}
        if all(p.status != 0 for p in progress):
            return by_id
        if time.monotonic() > deadline:
            raise AssertionError(f"documents still processing: {by_id}")
        time.sleep(0.1)


def search(
    rpc: KnowledgeStub, owner_id: int, dataset_ids: list[str], query: str, **kwargs: Any
) -> kpb.SearchResponse:
    return rpc.Search(  # type: ignore[no-any-return]
        kpb.SearchRequest(
            owner_id=owner_id, dataset_ids=[int(i) for i in dataset_ids], query=query, **kwargs
        )
    )

"""Semantic and hybrid retrieval with an embedding model from the models file.

Its own NATS, registry and worker (the ingestion queue is per NATS, so sharing the session's
would hand these jobs to a worker of another registry), and a small OpenAI-compatible
/v1/embeddings server whose vectors put synonyms together: "feline" is near "cat" although
no word is shared, which full-text search cannot see.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
import pytest

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.file_store import files_bucket
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.service_auth import find_token, service_aio_channel
from services.cli.system import ServiceProcess, free_port, knowledge_process, registry_process
from tests.knowledge.pgvector_support import pgvector_missing
from tests.registry.conftest import POSTGRES_URL, database_for_backend, new_account_id

DIMENSIONS = 16
CONCEPTS = {
    "cat": 0, "cats": 0, "feline": 0, "kitten": 0,
    "car": 1, "cars": 1, "automobile": 1, "vehicle": 1,
}  # fmt: skip


def embed(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in text.lower().replace(".", " ").replace("?", " ").split():
        if word in CONCEPTS:
            vector[CONCEPTS[word]] += 1.0
        else:
            vector[2 + hashlib.sha256(word.encode()).digest()[0] % (DIMENSIONS - 2)] += 0.2
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class EmbeddingsHandler(BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        EmbeddingsHandler.calls += 1
        data = [
            {"object": "embedding", "index": i, "embedding": embed(text)}
            for i, text in enumerate(body["input"])
        ]
        payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class VectorSystem:
    nats_url: str
    registry_addr: str
    backend: str
    registry_log: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def vector_system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorSystem]:
    """SQLite (brute force) and PostgreSQL (pgvector where the extension exists)."""
    backend: str = request.param
    with database_for_backend(backend) as database_url:
        yield from _vector_system(tmp_path_factory, backend, database_url)


def _vector_system(
    tmp_path_factory: pytest.TempPathFactory, backend: str, database_url: str
) -> Iterator[VectorSystem]:
    root = tmp_path_factory.mktemp("vectors")
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    models = root / "models.toml"
    models.write_text(
        f'[embeddings.toy]\nbase_url = "http://127.0.0.1:{server.server_address[1]}/v1"\n'
        'model = "toy-embeddings"\n'
    )
    started: list[ServiceProcess] = []
    with EmbeddedNats(root / "nats") as broker:
        try:
            registry = registry_process(
                data_dir=root / "registry",
                port=free_port(),
                nats_url=broker.url,
                database_url=database_url,
                log_dir=root / "logs",
                extra_env={"COZEPLUS_REGISTRY_MODELS_FILE": str(models)},
            )
            registry.start()
            started.append(registry)
            registry.wait_ready()
            addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
            worker = knowledge_process(
                health_port=free_port(),
                registry_addr=addr,
                nats_url=broker.url,
                log_dir=root / "logs",
                extra_env={"COZEPLUS_KNOWLEDGE_MODELS_FILE": str(models)},
            )
            worker.start()
            started.append(worker)
            worker.wait_ready()
            yield VectorSystem(broker.url, addr, backend, registry.log_path)
        finally:
            for process in reversed(started):
                process.stop()
            server.shutdown()


async def ingest_texts(system: VectorSystem, owner_id: int, texts: dict[str, str]) -> int:
    """A dataset holding one document per text, ingested by the worker; returns its id."""
    nc = await nats.connect(system.nats_url)
    try:
        bucket = await files_bucket(nc.jetstream())
        async with service_aio_channel(system.registry_addr, find_token()) as channel:
            rpc = KnowledgeStub(channel)
            dataset = await rpc.CreateDataset(
                kpb.CreateDatasetRequest(owner_id=owner_id, name="vectors")
            )
            documents = []
            for name, text in texts.items():
                await bucket.put(f"test/{owner_id}/{name}", text.encode())
                file = await rpc.CreateFile(
                    kpb.CreateFileRequest(
                        owner_id=owner_id,
                        file_name=f"{name}.txt",
                        bytes=len(text.encode()),
                        object_name=f"test/{owner_id}/{name}",
                    )
                )
                documents.append(
                    kpb.NewDocument(
                        name=name, source_type=5, file_type="txt", source_file_id=file.id
                    )
                )
            created = await rpc.CreateDocuments(
                kpb.CreateDocumentsRequest(
                    owner_id=owner_id, dataset_id=dataset.id, documents=documents
                )
            )
            ids = [d.id for d in created.documents]
            for _ in range(600):
                progress = await rpc.DocumentProgress(
                    kpb.DocumentProgressRequest(
                        owner_id=owner_id, dataset_id=dataset.id, document_ids=ids
                    )
                )
                if all(d.status == 1 for d in progress.documents):
                    return dataset.id
                assert all(d.status != 9 for d in progress.documents), progress
                await asyncio.sleep(0.1)
            raise AssertionError("documents not ingested")
    finally:
        await nc.close()


async def test_semantic_finds_synonyms_full_text_does_not_and_hybrid_fuses(
    vector_system: VectorSystem, tmp_path: Path
) -> None:
    owner_id = new_account_id()
    dataset_id = await ingest_texts(
        vector_system,
        owner_id,
        {
            "pets": "Cats sleep sixteen hours a day.",
            "garage": "The automobile needs new tyres.",
        },
    )
    async with service_aio_channel(vector_system.registry_addr, find_token()) as channel:
        rpc = KnowledgeStub(channel)

        async def top(query: str, strategy: int) -> tuple[int, list[str]]:
            reply = await rpc.Search(
                kpb.SearchRequest(
                    owner_id=owner_id, dataset_ids=[dataset_id], query=query, strategy=strategy
                )
            )
            assert all(0 <= c.score <= 1 for c in reply.chunks)
            return reply.strategy, [c.document_name for c in reply.chunks]

        assert await top("feline", 20) == (20, [])
        strategy, semantic = await top("feline", 0)
        assert strategy == 0 and semantic[0] == "pets"
        strategy, semantic = await top("vehicle", 0)
        assert semantic[0] == "garage"
        strategy, hybrid = await top("tyres for my vehicle", 1)
        assert strategy == 1 and hybrid[0] == "garage"
        # Another account's search embeds the query but sees nothing.
        foreign = await rpc.Search(
            kpb.SearchRequest(owner_id=1, dataset_ids=[dataset_id], query="feline", strategy=0)
        )
        assert list(foreign.chunks) == []
    # Which path ranked them: the registry says so once, at start-up.
    log = vector_system.registry_log.read_text()
    if vector_system.backend == "postgresql" and not pgvector_missing(POSTGRES_URL):
        assert "semantic search: pgvector" in log
    else:
        assert "semantic search: brute force" in log

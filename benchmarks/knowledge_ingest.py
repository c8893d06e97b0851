"""Knowledge benchmark: document ingestion with one and two workers, and retrieval latency.

Starts its own NATS, registry (SQLite) and knowledge workers on loopback, then:
1. ingestion: N documents of ~1 KB of English and Chinese text (default 500) are
   put in the object store and created in one dataset; the clock runs from the first
   CreateDocuments call until every document is completed. Once with one worker, once with
   two (a fresh dataset each time).
2. retrieval: a dataset of C chunks (default 20,000), stored directly through
   CompleteIngestion in documents of 1,000 chunks), then Q full-text searches (default 200,
   one at a time, English and Chinese queries) through the Search RPC: p50/p99.

The defaults keep a run near a minute. The figures in docs/knowledge.md are the full run:
.venv/bin/python benchmarks/knowledge_ingest.py --documents 1000 --chunks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import nats

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.file_store import files_bucket
from cozeplus.rpc.v1 import knowledge_pb2 as kpb
from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from cozeplus.service_auth import (
    SERVICE_TOKEN_ENV,
    find_token,
    generate_token,
    service_aio_channel,
)
from services.cli.system import ServiceProcess, free_port, knowledge_process, registry_process

BATCH = 100


def _vocabulary() -> tuple[list[str], list[str]]:
    """Pseudo-words with natural-language selectivity: 20,000 English-like words and 3,000
    two-character Chinese words, drawn with Zipf-like weights (a few common, most rare)."""
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyz"
    english = sorted({"".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(20_000)})
    hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
    chinese = sorted({"".join(rng.choices(hanzi, k=2)) for _ in range(3_000)})
    rng.shuffle(english)
    rng.shuffle(chinese)
    return english, chinese


ENGLISH, CHINESE = _vocabulary()
_EN_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(ENGLISH))]
_ZH_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(CHINESE))]


def paragraph(rng: random.Random, words: int) -> str:
    zh = sum(1 for _ in range(words) if rng.random() < 0.2)
    parts = rng.choices(ENGLISH, _EN_WEIGHTS, k=words - zh) + rng.choices(
        CHINESE, _ZH_WEIGHTS, k=zh
    )
    rng.shuffle(parts)
    return " ".join(parts) + "."


def document_text(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    while sum(len(line) for line in lines) < size:
        lines.append(paragraph(rng, 12))
    return "\n".join(lines)


async def wait_completed(rpc: KnowledgeStub, owner: int, dataset_id: int, total: int) -> None:
    while True:
        page = await rpc.DocumentProgress(
            kpb.DocumentProgressRequest(owner_id=owner, dataset_id=dataset_id)
        )
        done = sum(1 for d in page.documents if d.status != 0)
        failed = [d for d in page.documents if d.status == 9]
        if failed:
            raise SystemExit(f"{len(failed)} documents failed: {failed[0].status_descript}")
        if done == total:
            return
        await asyncio.sleep(0.2)


async def ingest_run(
    nats_url: str, registry_addr: str, owner: int, documents: int, doc_bytes: int
) -> tuple[float, int]:
    rng = random.Random(documents)
    nc = await nats.connect(nats_url)
    bucket = await files_bucket(nc.jetstream())
    async with service_aio_channel(registry_addr, find_token()) as channel:
        rpc = KnowledgeStub(channel)
        dataset = await rpc.CreateDataset(kpb.CreateDatasetRequest(owner_id=owner, name="bench"))
        texts = [document_text(rng, doc_bytes).encode() for _ in range(documents)]
        total_bytes = sum(map(len, texts))

        async def upload(i: int) -> kpb.KnowledgeFile:
            name = f"bench/{dataset.id}/{i}"
            await bucket.put(name, texts[i])
            return await rpc.CreateFile(
                kpb.CreateFileRequest(
                    owner_id=owner, file_name=f"{i}.txt", bytes=len(texts[i]), object_name=name
                )
            )

        files: list[kpb.KnowledgeFile] = []
        for start in range(0, documents, 50):
            batch = range(start, min(start + 50, documents))
            files.extend(await asyncio.gather(*(upload(i) for i in batch)))
        started = time.perf_counter()
        for start in range(0, documents, BATCH):
            await rpc.CreateDocuments(
                kpb.CreateDocumentsRequest(
                    owner_id=owner,
                    dataset_id=dataset.id,
                    documents=[
                        kpb.NewDocument(
                            name=f.file_name, source_type=5, file_type="txt", source_file_id=f.id
                        )
                        for f in files[start : start + BATCH]
                    ],
                )
            )
        await wait_completed(rpc, owner, dataset.id, documents)
        elapsed = time.perf_counter() - started
    await nc.close()
    return elapsed, total_bytes


async def retrieval_run(
    registry_addr: str, owner: int, chunks: int, queries: int
) -> tuple[float, list[float]]:
    rng = random.Random(chunks)
    per_document = 1000
    async with service_aio_channel(registry_addr, find_token()) as channel:
        rpc = KnowledgeStub(channel)
        file = await rpc.CreateFile(
            kpb.CreateFileRequest(owner_id=owner, file_name="x.txt", bytes=1, object_name="none")
        )
        dataset = await rpc.CreateDataset(kpb.CreateDatasetRequest(owner_id=owner, name="big"))
        load_started = time.perf_counter()
        for start in range(0, chunks, per_document):
            # The job the registry queues is never consumed: no worker runs during this part.
            created = await rpc.CreateDocuments(
                kpb.CreateDocumentsRequest(
                    owner_id=owner,
                    dataset_id=dataset.id,
                    documents=[
                        kpb.NewDocument(
                            name=f"big-{start}",
                            source_type=5,
                            file_type="txt",
                            source_file_id=file.id,
                        )
                    ],
                )
            )
            document_id = created.documents[0].id
            await rpc.StartIngestion(kpb.StartIngestionRequest(document_id=document_id))
            count = min(per_document, chunks - start)
            await rpc.CompleteIngestion(
                kpb.CompleteIngestionRequest(
                    document_id=document_id,
                    chunks=[kpb.NewChunk(content=paragraph(rng, 30)) for _ in range(count)],
                )
            )
        load_s = time.perf_counter() - load_started
        latencies: list[float] = []
        for i in range(queries):
            if i % 2:
                words = rng.choices(ENGLISH, _EN_WEIGHTS, k=3)
            else:
                words = rng.choices(CHINESE, _ZH_WEIGHTS, k=2)
            started = time.perf_counter()
            await rpc.Search(
                kpb.SearchRequest(
                    owner_id=owner, dataset_ids=[dataset.id], query=" ".join(words), top_k=5
                )
            )
            latencies.append((time.perf_counter() - started) * 1000)
    return load_s, latencies


def start(process: ServiceProcess, started: list[ServiceProcess]) -> ServiceProcess:
    process.start()
    started.append(process)
    process.wait_ready(60)
    return process


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="cozeplus-kb-bench-"))
    started: list[ServiceProcess] = []
    # The registry's service credential, for every process started here and our channels.
    os.environ.setdefault(SERVICE_TOKEN_ENV, generate_token())
    with EmbeddedNats(root / "nats") as broker:
        try:
            registry = start(
                registry_process(
                    data_dir=root / "registry",
                    port=free_port(),
                    nats_url=broker.url,
                    log_dir=root / "logs",
                ),
                started,
            )
            addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
            workers: list[ServiceProcess] = []
            for count in (1, 2):
                while len(workers) < count:
                    workers.append(
                        start(
                            knowledge_process(
                                health_port=free_port(),
                                registry_addr=addr,
                                nats_url=broker.url,
                                log_dir=root / "logs",
                                name=f"knowledge-{len(workers) + 1}",
                            ),
                            started,
                        )
                    )
                elapsed, size = await ingest_run(
                    broker.url, addr, 1000 + count, args.documents, args.document_bytes
                )
                print(
                    f"ingest, {count} worker(s): {args.documents} documents, "
                    f"{size / 1e6:.2f} MB in {elapsed:.1f} s = {args.documents / elapsed:.1f} "
                    f"documents/s ({size / 1e6 / elapsed:.2f} MB/s)",
                    flush=True,
                )
            for worker in workers:
                worker.stop()
            load_s, latencies = await retrieval_run(addr, 2000, args.chunks, args.queries)
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(
                f"retrieval over {args.chunks} chunks (stored in {load_s:.1f} s): "
                f"{args.queries} full-text searches, p50 {statistics.median(latencies):.1f} ms, "
                f"p99 {p99:.1f} ms",
                flush=True,
            )
        finally:
            for process in reversed(started):
                process.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--document-bytes", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    asyncio.run(main(parser.parse_args()))

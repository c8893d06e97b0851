"""A worker killed in the middle of a document: the job comes back to another worker and
the document completes; web_url documents go through the outbound rules."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cozepy import Coze
from cozepy.datasets.documents import DocumentBase, DocumentSourceInfo, DocumentStatus

from cozeplus.rpc.v1.knowledge_pb2_grpc import KnowledgeStub
from tests.conftest import Account
from tests.knowledge.conftest import Workers, search, wait_processed
from tests.knowledge.test_knowledge_cozepy import new_dataset

PAGE = b"<html><body><p>Capybaras are the largest living rodents.</p></body></html>"


class Site:
    """A local web site whose first request hangs until released, so a worker is caught
    mid-document; it counts the requests it got."""

    def __init__(self, answer_first: bool = False) -> None:
        self.requests = 0
        self.first_request = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests += 1
                if site.requests == 1:
                    site.first_request.set()
                    site.release.wait(120)
                    if not answer_first:
                        return  # the worker that asked is dead by now
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/capybara.html"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.close()


def test_a_worker_killed_mid_document_leaves_it_to_another_worker(
    coze: Coze, account: Account, workers: Workers, site: Site, knowledge_rpc: KnowledgeStub
) -> None:
    dataset_id = new_dataset(coze, account)
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(name="capybara", source_info=DocumentSourceInfo.build_web_page(site.url))
        ],
    )
    document_id = created[0].document_id
    assert site.first_request.wait(60), "no worker fetched the page"
    # Whichever worker holds the job, it dies now, mid-fetch, without a word.
    workers.kill_all()
    in_flight = coze.datasets.process(dataset_id=dataset_id, document_ids=[document_id])[0]
    assert in_flight.status == DocumentStatus.PROCESSING

    workers.start()
    progress = wait_processed(coze, dataset_id, [document_id])[document_id]
    assert progress.status == DocumentStatus.COMPLETED, progress.status_descript
    assert site.requests == 2
    found = search(knowledge_rpc, account.user_id, [dataset_id], "largest rodents")
    assert [c.document_name for c in found.chunks] == ["capybara"]


def test_web_url_outside_the_allowed_networks_fails_with_a_reason(
    coze: Coze, account: Account
) -> None:
    dataset_id = new_dataset(coze, account)
    created = coze.datasets.documents.create(
        dataset_id=dataset_id,
        document_bases=[
            DocumentBase(
                name="metadata",
                source_info=DocumentSourceInfo.build_web_page(
                    f"http://169.254.169.254/latest/{secrets.token_hex(2)}"
                ),
            ),
            DocumentBase(
                name="missing",
                source_info=DocumentSourceInfo.build_web_page("http://127.0.0.1:9/nothing"),
            ),
        ],
    )
    progress = wait_processed(coze, dataset_id, [d.document_id for d in created])
    by_name = {p.document_name: p for p in progress.values()}
    assert by_name["metadata"].status == DocumentStatus.FAILED
    metadata_refusal = "169.254.169.254 is a link-local (cloud metadata) address"
    assert metadata_refusal in by_name["metadata"].status_descript
    assert by_name["missing"].status == DocumentStatus.FAILED
    assert "could not fetch http://127.0.0.1:9/nothing" in by_name["missing"].status_descript


def test_a_document_deleted_while_a_worker_reads_it_is_not_indexed(
    coze: Coze, account: Account, knowledge_rpc: KnowledgeStub, workers: Workers
) -> None:
    slow = Site(answer_first=True)
    try:
        dataset_id = new_dataset(coze, account)
        created = coze.datasets.documents.create(
            dataset_id=dataset_id,
            document_bases=[
                DocumentBase(name="gone", source_info=DocumentSourceInfo.build_web_page(slow.url))
            ],
        )
        assert slow.first_request.wait(60), "no worker fetched the page"
        document_id = created[0].document_id
        coze.datasets.documents.delete(document_ids=[document_id])
        slow.release.set()
        # The worker fetched and chunked it, and the registry refused the chunks.
        dropped = f"document {document_id}: document {document_id} not found (deleted); dropping"
        deadline = time.monotonic() + 60
        while not any(dropped in p.log_tail(200) for p in workers.processes):
            assert time.monotonic() < deadline, "the worker never finished the document"
            time.sleep(0.1)
        # The worker carries on: a later document of the same dataset is ingested.
        after = coze.datasets.documents.create(
            dataset_id=dataset_id,
            document_bases=[
                DocumentBase(
                    name="kept", source_info=DocumentSourceInfo.build_local_file("Tapirs swim.")
                )
            ],
        )
        wait_processed(coze, dataset_id, [after[0].document_id])
        names = [d.name for d in coze.datasets.documents.list(dataset_id=dataset_id)]
        assert names == ["kept"]
        assert list(search(knowledge_rpc, account.user_id, [dataset_id], "rodents").chunks) == []
    finally:
        slow.close()

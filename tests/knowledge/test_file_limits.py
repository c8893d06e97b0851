"""The edge's file size limit (COZEPLUS_EDGE_MAX_FILE_BYTES), on an edge with a small one."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account

LIMIT = 1000


@pytest.fixture(scope="module")
def small_edge(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> str:
    port = free_port()
    start_service(
        edge_process(
            port=port,
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-small-files",
            extra_env={"COZEPLUS_EDGE_MAX_FILE_BYTES": str(LIMIT)},
        )
    )
    return f"http://127.0.0.1:{port}"


def test_files_over_the_limit_are_refused_and_nothing_is_stored(
    small_edge: str, account: Account
) -> None:
    with httpx.Client(base_url=small_edge, headers=account.headers, timeout=30) as http:
        fits = http.post("/v1/files/upload", files={"file": ("a.txt", b"x" * LIMIT)})
        assert fits.status_code == 200 and fits.json()["data"]["bytes"] == LIMIT
        big = http.post("/v1/files/upload", files={"file": ("b.txt", b"x" * (LIMIT + 1))})
        assert big.status_code == 400
        assert big.json()["msg"] == f"file: {LIMIT + 1} bytes is over the limit of {LIMIT} bytes"
        # Far over: refused by the body limit of the route before it is read.
        huge = http.post("/v1/files/upload", files={"file": ("c.txt", b"x" * 200_000)})
        assert huge.status_code == 413

        missing = http.post("/v1/files/upload", files={"other": ("a.txt", b"x")})
        assert missing.status_code == 400 and "file is required" in missing.json()["msg"]
        not_multipart = http.post("/v1/files/upload", json={"file": "x"})
        assert not_multipart.status_code == 400

        dataset = http.post("/v1/datasets", json={"name": "limits"}).json()["data"]["dataset_id"]
        document = {
            "dataset_id": dataset,
            "document_bases": [
                {
                    "name": "big",
                    "source_info": {
                        "file_base64": base64.b64encode(b"y" * (LIMIT + 1)).decode(),
                        "file_type": "txt",
                    },
                }
            ],
        }
        refused = http.post("/open_api/knowledge/document/create", json=document)
        assert refused.status_code == 400
        assert refused.json()["msg"] == (
            f"document_bases[0].source_info.file_base64: {LIMIT + 1} bytes is over the limit "
            f"of {LIMIT} bytes"
        )
        listed = http.post("/open_api/knowledge/document/list", json={"dataset_id": dataset})
        assert listed.json()["total"] == 0

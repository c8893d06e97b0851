"""The per-account file quota (COZEPLUS_REGISTRY_FILE_QUOTA_BYTES), on a registry and edge of
their own with a small one: an upload past it is a 403 that stores nothing, not even the
bytes the edge put in the object store before asking; a base64 document's file is deleted
with the document (or its dataset), bytes and all, which gives its room back."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats
import pytest

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import service_channel
from cozeplus.subjects import FILES_BUCKET
from services.cli.system import ServiceProcess, edge_process, free_port, registry_process

QUOTA = 2500


@pytest.fixture(scope="module")
def quota_registry(
    work_dir: Path, nats_url: str, start_service: Callable[[ServiceProcess], ServiceProcess]
) -> str:
    registry = start_service(
        registry_process(
            data_dir=work_dir / "registry-file-quota",
            port=free_port(),
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="registry-file-quota",
            extra_env={"COZEPLUS_REGISTRY_FILE_QUOTA_BYTES": str(QUOTA)},
        )
    )
    return registry.env["COZEPLUS_REGISTRY_LISTEN"]


@pytest.fixture(scope="module")
def quota_edge(
    work_dir: Path,
    nats_url: str,
    quota_registry: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> str:
    port = free_port()
    start_service(
        edge_process(
            port=port,
            registry_addr=quota_registry,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-file-quota",
        )
    )
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def new_user(quota_registry: str) -> Iterator[Callable[[], tuple[int, dict[str, str]]]]:
    channel = service_channel(quota_registry)
    accounts = AccountsStub(channel)

    def make() -> tuple[int, dict[str, str]]:
        name, password = f"user_{secrets.token_hex(6)}", secrets.token_urlsafe(12)
        user = accounts.CreateUser(pb.CreateUserRequest(username=name, password=password))
        key = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="test"))
        return user.id, {"Authorization": f"Bearer {key.token}"}

    yield make
    channel.close()


def stored_objects(nats_url: str, user_id: int) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            bucket = await nc.jetstream().object_store(FILES_BUCKET)
            objects = await bucket.list(ignore_deletes=True)
            return sum(1 for o in objects if o.name.startswith(f"{user_id}/"))
        finally:
            await nc.close()

    return asyncio.run(count())


def base64_documents(dataset: str, *sizes: int) -> dict[str, object]:
    return {
        "dataset_id": dataset,
        "document_bases": [
            {
                "name": f"doc{n}",
                "source_info": {
                    "file_base64": base64.b64encode(b"q" * size).decode(),
                    "file_type": "txt",
                },
            }
            for n, size in enumerate(sizes)
        ],
    }


def test_uploads_past_the_quota_are_refused_and_leave_no_bytes_behind(
    quota_edge: str, new_user: Callable[[], tuple[int, dict[str, str]]], nats_url: str
) -> None:
    user_id, headers = new_user()
    with httpx.Client(base_url=quota_edge, headers=headers, timeout=30) as http:

        def upload(size: int) -> httpx.Response:
            return http.post("/v1/files/upload", files={"file": ("a.txt", b"x" * size)})

        assert upload(1000).status_code == 200
        assert upload(1000).status_code == 200
        refused = upload(1000)
        assert refused.status_code == 403, refused.text
        assert refused.json() == {
            "code": 403,
            "msg": f"file storage quota exceeded: 2000 of {QUOTA} bytes in use, "
            "this file needs 1000 more",
            "data": None,
        }
        assert stored_objects(nats_url, user_id) == 2, "the refused upload's bytes are gone"
        # What still fits is taken, to the byte.
        assert upload(QUOTA - 2000).status_code == 200
        assert upload(1).status_code == 403

        # A base64 document is a file too.
        dataset = http.post("/v1/datasets", json={"name": "quota"}).json()["data"]["dataset_id"]
        document = {
            "dataset_id": dataset,
            "document_bases": [
                {
                    "name": "notes",
                    "source_info": {
                        "file_base64": base64.b64encode(b"hello").decode(),
                        "file_type": "txt",
                    },
                }
            ],
        }
        over = http.post("/open_api/knowledge/document/create", json=document)
        assert over.status_code == 403 and "quota exceeded" in over.json()["msg"]
        listed = http.post("/open_api/knowledge/document/list", json={"dataset_id": dataset})
        assert listed.json()["total"] == 0
    assert stored_objects(nats_url, user_id) == 3

    # The quota is each account's own.
    _, other = new_user()
    with httpx.Client(base_url=quota_edge, headers=other, timeout=30) as http:
        assert http.post("/v1/files/upload", files={"file": ("b.txt", b"y" * QUOTA)}).is_success


def test_documents_whose_files_pass_the_quota_together_store_none_of_them(
    quota_edge: str, new_user: Callable[[], tuple[int, dict[str, str]]], nats_url: str
) -> None:
    user_id, headers = new_user()
    with httpx.Client(base_url=quota_edge, headers=headers, timeout=30) as http:
        dataset = http.post("/v1/datasets", json={"name": "two"}).json()["data"]["dataset_id"]

        def create(*sizes: int) -> httpx.Response:
            body = base64_documents(dataset, *sizes)
            return http.post("/open_api/knowledge/document/create", json=body)

        # Each fits; both don't.
        refused = create(1500, 1500)
        assert refused.status_code == 403, refused.text
        assert refused.json()["msg"] == (
            f"file storage quota exceeded: 0 of {QUOTA} bytes in use, these files need 3000 more"
        )
        assert stored_objects(nats_url, user_id) == 0, "neither file's bytes stay"
        listed = http.post("/open_api/knowledge/document/list", json={"dataset_id": dataset})
        assert listed.json()["total"] == 0
        # Nothing was counted: the whole quota is still there.
        assert create(1500, 1000).status_code == 200
    assert stored_objects(nats_url, user_id) == 2


def test_deleting_a_base64_document_or_its_dataset_gives_the_quota_back(
    quota_edge: str, new_user: Callable[[], tuple[int, dict[str, str]]], nats_url: str
) -> None:
    user_id, headers = new_user()
    with httpx.Client(base_url=quota_edge, headers=headers, timeout=30) as http:
        dataset = http.post("/v1/datasets", json={"name": "room"}).json()["data"]["dataset_id"]
        created = http.post(
            "/open_api/knowledge/document/create", json=base64_documents(dataset, 2000)
        )
        assert created.status_code == 200, created.text
        [document] = created.json()["document_infos"]
        full = http.post("/v1/files/upload", files={"file": ("c.txt", b"c" * 1000)})
        assert full.status_code == 403 and "2000 of 2500 bytes in use" in full.json()["msg"]

        # The document goes, its file and bytes with it: the room is back.
        deleted = http.post(
            "/open_api/knowledge/document/delete", json={"document_ids": [document["document_id"]]}
        )
        assert deleted.json()["code"] == 0, deleted.text
        assert stored_objects(nats_url, user_id) == 0
        uploaded = http.post("/v1/files/upload", files={"file": ("c.txt", b"c" * 1000)})
        assert uploaded.status_code == 200, uploaded.text

        # A dataset's deletion frees its base64 documents' files, not a file named by id.
        file_id = uploaded.json()["data"]["id"]
        by_id = {
            "dataset_id": dataset,
            "document_bases": [{"name": "byid", "source_info": {"source_file_id": file_id}}],
        }
        assert http.post("/open_api/knowledge/document/create", json=by_id).status_code == 200
        both = http.post(
            "/open_api/knowledge/document/create", json=base64_documents(dataset, 1000, 500)
        )
        assert both.status_code == 200, both.text
        assert stored_objects(nats_url, user_id) == 3
        assert http.delete(f"/v1/datasets/{dataset}").json()["code"] == 0
        assert stored_objects(nats_url, user_id) == 1, "the upload stays"
        retrieved = http.get("/v1/files/retrieve", params={"file_id": file_id})
        assert retrieved.json()["data"]["bytes"] == 1000
        assert http.post("/v1/files/upload", files={"file": ("d.txt", b"d" * 1500)}).is_success


def test_documents_the_registry_refuses_leave_no_bytes_behind(
    quota_edge: str, new_user: Callable[[], tuple[int, dict[str, str]]], nats_url: str
) -> None:
    user_id, headers = new_user()
    with httpx.Client(base_url=quota_edge, headers=headers, timeout=30) as http:
        # An image dataset takes no text documents: the edge had put the bytes already.
        images = http.post("/v1/datasets", json={"name": "pics", "format_type": 2})
        dataset = images.json()["data"]["dataset_id"]
        refused = http.post(
            "/open_api/knowledge/document/create", json=base64_documents(dataset, 100, 100)
        )
        assert refused.status_code == 409, refused.text
        assert "only text datasets" in refused.json()["msg"]
    assert stored_objects(nats_url, user_id) == 0

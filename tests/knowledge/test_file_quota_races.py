"""The file quota under uploads at the same moment, on SQLite and PostgreSQL: the last room
is taken once."""

from __future__ import annotations

import asyncio

import pytest

from cozeplus.ids import IdGenerator
from services.registry.database import Database
from services.registry.errors import InvalidArgument, PermissionDenied
from services.registry.knowledge import KnowledgeService, NewFile
from tests.knowledge.test_stalled_documents import OWNER, Queue, database

__all__ = ["database"]


async def test_uploads_at_once_never_pass_the_quota_together(database: Database) -> None:
    service = KnowledgeService(database, IdGenerator(1), Queue(), file_quota_bytes=2500)

    async def upload(owner_id: int, n: int) -> bool:
        try:
            await service.create_file(
                owner_id=owner_id,
                file_name=f"{n}.txt",
                size=1000,
                content_type="",
                object_name=f"{owner_id}/{n}",
            )
        except PermissionDenied:
            return False
        return True

    # Eight accounts, twelve uploads each, all at once: room for two each. Five times over,
    # each with accounts of its own (a race is a matter of timing).
    for round_ in range(5):
        owners = [OWNER + 100 * round_ + i for i in range(8)]
        accepted = await asyncio.gather(*(upload(o, n) for n in range(12) for o in owners))
        per_owner = [sum(accepted[i::8]) for i in range(8)]
        assert per_owner == [2] * 8, (round_, per_owner)


async def test_files_created_together_are_all_recorded_or_none(database: Database) -> None:
    service = KnowledgeService(database, IdGenerator(1), Queue(), file_quota_bytes=2500)
    files = [NewFile(f"{n}.txt", 1000, "", f"together/{n}") for n in range(3)]

    with pytest.raises(PermissionDenied, match="these files need 3000 more"):
        await service.create_files(owner_id=OWNER, files=files)
    with pytest.raises(InvalidArgument, match=r"files\[1\]\.file_name is required"):
        await service.create_files(owner_id=OWNER, files=[files[0], NewFile(" ", 1, "", "x")])

    created = await service.create_files(owner_id=OWNER, files=files[:2])
    assert [f.bytes for f in created] == [1000, 1000]
    with pytest.raises(PermissionDenied, match="2000 of 2500 bytes in use"):
        await service.create_file(
            owner_id=OWNER, file_name="late.txt", size=501, content_type="", object_name="late"
        )

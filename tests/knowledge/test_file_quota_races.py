"""The file quota under uploads at the same moment, on SQLite and PostgreSQL: the last room
is taken once."""

from __future__ import annotations

import asyncio

from cozeplus.ids import IdGenerator
from services.registry.database import Database
from services.registry.errors import PermissionDenied
from services.registry.knowledge import KnowledgeService
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

"""BotRegistry over gRPC against a real registry process, on each database backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1 import user_state_pb2 as us
from cozeplus.rpc.v1.user_state_pb2_grpc import BotPublishingStub
from tests.registry.conftest import EXTRA_MODEL_ID
from tests.registry.rpc_expect import expect_status

if TYPE_CHECKING:
    from cozeplus.rpc.v1.registry_pb2_grpc import BotRegistryAsyncStub
    from cozeplus.rpc.v1.user_state_pb2_grpc import BotPublishingAsyncStub

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def full_config(prompt: str = "You are helpful.") -> pb.BotConfig:
    return pb.BotConfig(
        prompt=prompt,
        model=pb.ModelSettings(model_id=EXTRA_MODEL_ID, temperature=0.7, max_tokens=512, top_p=0.9),
        history_rounds=5,
        onboarding=pb.Onboarding(prologue="Hi!", suggested_questions=["What can you do?"]),
        variables=[pb.Variable(key="city", description="Where", default_value="Paris")],
        tools=[
            pb.ToolRef(type="knowledge_base", knowledge_id=11),
            # Plugin bindings need a real plugin: test_registry_plugins.py covers them.
            pb.ToolRef(type="knowledge_base", knowledge_id=22),
        ],
    )


async def create_bot(
    rpc: BotRegistryAsyncStub, owner_id: int, name: str = "Helper", **fields: Any
) -> pb.Bot:
    bot: pb.Bot = await rpc.CreateDraft(
        pb.CreateDraftRequest(owner_id=owner_id, name=name, **fields)
    )
    return bot


# ----------------------------------------------------------------- drafts


async def test_create_draft_without_config_gets_defaults(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, name="  Helper  ", description="d")

    assert bot.id > 0
    assert bot.id < 2**53
    assert bot.owner_id == owner_id
    assert bot.space_id == owner_id, "space 0 is the owner's personal space"
    assert bot.name == "Helper"
    assert bot.description == "d"
    assert bot.config.model.model_id == "echo"
    assert bot.config.history_rounds == 10
    assert not bot.config.model.HasField("temperature")
    assert bot.created_at > 0
    assert bot.updated_at == bot.created_at
    assert bot.latest_version == 0
    assert bot.published_at == 0


async def test_create_draft_keeps_the_whole_config(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    created = await create_bot(
        bots_rpc,
        owner_id,
        space_id=owner_id,
        icon_url="https://example.com/icon.png",
        config=full_config(),
    )
    fetched = await bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=created.id))

    assert fetched == created
    assert fetched.config == full_config()
    assert fetched.icon_url == "https://example.com/icon.png"


async def test_boundary_values_are_accepted(bots_rpc: BotRegistryAsyncStub, owner_id: int) -> None:
    low = pb.BotConfig(
        model=pb.ModelSettings(temperature=0, max_tokens=1, top_p=1e-9), history_rounds=0
    )
    high = pb.BotConfig(
        prompt="p" * 100_000,
        model=pb.ModelSettings(temperature=2, max_tokens=1_000_000, top_p=1),
        history_rounds=100,
        onboarding=pb.Onboarding(prologue="x" * 10_000, suggested_questions=["q"] * 10),
        variables=[pb.Variable(key="k" * 64)],
    )
    for config in (low, high):
        bot = await create_bot(
            bots_rpc,
            owner_id,
            name="n" * 100,
            description="d" * 2000,
            icon_url="http://example.com/" + "a" * 2000,
            config=config,
        )
        assert bot.config.history_rounds == config.history_rounds
        assert bot.config.model.model_id == "echo"


def _config(**fields: Any) -> dict[str, Any]:
    return {"config": pb.BotConfig(**fields)}


def _model(**fields: Any) -> dict[str, Any]:
    return _config(model=pb.ModelSettings(**fields))


INVALID_DRAFTS: dict[str, tuple[dict[str, Any], str]] = {
    "blank name": ({"name": "   "}, "name is required"),
    "long name": ({"name": "n" * 101}, "name must be at most 100"),
    "long description": ({"description": "d" * 2001}, "description"),
    "icon not a url": ({"icon_url": "not a url"}, "icon_url"),
    "icon ftp": ({"icon_url": "ftp://example.com/a.png"}, "icon_url"),
    "icon without host": ({"icon_url": "https:///a.png"}, "icon_url"),
    "icon too long": ({"icon_url": "https://example.com/" + "a" * 2048}, "icon_url"),
    "long prompt": (_config(prompt="p" * 100_001), "config.prompt"),
    "unknown model": (_model(model_id="gpt-nope"), "unknown model id 'gpt-nope'"),
    "temperature above 2": (_model(temperature=2.01), "config.model.temperature"),
    "negative temperature": (_model(temperature=-0.1), "config.model.temperature"),
    "top_p zero": (_model(top_p=0), "config.model.top_p"),
    "top_p above 1": (_model(top_p=1.01), "config.model.top_p"),
    "max_tokens zero": (_model(max_tokens=0), "config.model.max_tokens"),
    "max_tokens huge": (_model(max_tokens=1_000_001), "config.model.max_tokens"),
    "negative history": (_config(history_rounds=-1), "config.history_rounds"),
    "long history": (_config(history_rounds=101), "config.history_rounds"),
    "unknown tool type": (
        _config(tools=[pb.ToolRef(type="workflow", plugin_id=1)]),
        "config.tools[0].type",
    ),
    "knowledge base without id": (
        _config(tools=[pb.ToolRef(type="knowledge_base", plugin_id=3)]),
        "config.tools[0].knowledge_id",
    ),
    "plugin without id": (
        _config(tools=[pb.ToolRef(type="plugin", plugin_id=1), pb.ToolRef(type="plugin")]),
        "config.tools[1].plugin_id",
    ),
    "variable without key": (_config(variables=[pb.Variable(key="")]), "config.variables[0].key"),
    "long variable key": (
        _config(variables=[pb.Variable(key="k" * 65)]),
        "config.variables[0].key",
    ),
    "duplicate variable": (
        _config(variables=[pb.Variable(key="a"), pb.Variable(key="a")]),
        "config.variables[1].key",
    ),
    "long prologue": (
        _config(onboarding=pb.Onboarding(prologue="x" * 10_001)),
        "config.onboarding.prologue",
    ),
    "too many questions": (
        _config(onboarding=pb.Onboarding(suggested_questions=["q"] * 11)),
        "config.onboarding.suggested_questions",
    ),
}


@pytest.mark.parametrize("case", INVALID_DRAFTS)
async def test_invalid_draft_is_rejected_naming_the_field(
    bots_rpc: BotRegistryAsyncStub, owner_id: int, case: str
) -> None:
    fields, message_part = INVALID_DRAFTS[case]
    request = pb.CreateDraftRequest(owner_id=owner_id, name="ok")
    for field, value in fields.items():
        if isinstance(value, pb.BotConfig):
            request.config.CopyFrom(value)
        else:
            setattr(request, field, value)

    await expect_status(bots_rpc.CreateDraft(request), INVALID, message_part)

    listed = await bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=owner_id))
    assert listed.total == 0, "nothing may be stored for a rejected request"


async def test_owner_and_ids_are_required(bots_rpc: BotRegistryAsyncStub, owner_id: int) -> None:
    await expect_status(bots_rpc.CreateDraft(pb.CreateDraftRequest(name="x")), INVALID, "owner_id")
    await expect_status(bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id)), INVALID, "bot_id")
    await expect_status(
        bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=1, version=-1)),
        INVALID,
        "version",
    )
    await expect_status(
        bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=owner_id, page_size=-1)),
        INVALID,
        "page_size",
    )


async def test_update_display_info_changes_only_given_fields(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, description="old", icon_url="https://a.example/i")

    renamed = await bots_rpc.UpdateDisplayInfo(
        pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, name=" New name ")
    )
    assert renamed.name == "New name"
    assert renamed.description == "old"
    assert renamed.icon_url == "https://a.example/i"
    assert renamed.updated_at >= bot.updated_at

    cleared = await bots_rpc.UpdateDisplayInfo(
        pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, description="", icon_url="")
    )
    assert (cleared.name, cleared.description, cleared.icon_url) == ("New name", "", "")
    assert cleared.config == bot.config

    await expect_status(
        bots_rpc.UpdateDisplayInfo(
            pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, name=" ")
        ),
        INVALID,
        "name",
    )
    await expect_status(
        bots_rpc.UpdateDisplayInfo(
            pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, icon_url="javascript:x")
        ),
        INVALID,
        "icon_url",
    )


async def test_update_config_with_empty_mask_replaces_everything(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, config=full_config())

    replaced = await bots_rpc.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=owner_id, bot_id=bot.id, config=pb.BotConfig(prompt="only this")
        )
    )
    assert replaced.config == pb.BotConfig(
        prompt="only this",
        model=pb.ModelSettings(model_id="echo"),
        onboarding=pb.Onboarding(),
    )
    await expect_status(
        bots_rpc.UpdateConfig(pb.UpdateConfigRequest(owner_id=owner_id, bot_id=bot.id)),
        INVALID,
        "config is required",
    )


async def test_update_config_mask_replaces_only_listed_paths(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, config=full_config())

    patched = await bots_rpc.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=owner_id,
            bot_id=bot.id,
            config=pb.BotConfig(
                prompt="new prompt",
                model=pb.ModelSettings(model_id="echo", max_tokens=64),
                tools=[pb.ToolRef(type="knowledge_base", knowledge_id=99)],
            ),
            # model.temperature is listed but unset in the patch: it is cleared.
            update_mask=FieldMask(
                paths=["prompt", "model.max_tokens", "model.temperature", "tools"]
            ),
        )
    )
    expected = full_config("new prompt")
    expected.model.max_tokens = 64
    expected.model.ClearField("temperature")
    del expected.tools[:]
    expected.tools.append(pb.ToolRef(type="knowledge_base", knowledge_id=99))
    assert patched.config == expected, "model_id, top_p and the rest must be untouched"
    assert patched.updated_at >= bot.updated_at

    swapped = await bots_rpc.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=owner_id,
            bot_id=bot.id,
            config=pb.BotConfig(model=pb.ModelSettings(), history_rounds=0),
            update_mask=FieldMask(paths=["model", "history_rounds"]),
        )
    )
    assert swapped.config.model == pb.ModelSettings(model_id="echo")
    assert swapped.config.history_rounds == 0
    assert swapped.config.prompt == "new prompt"


async def test_update_config_rejects_bad_masks_and_values(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, config=full_config())

    await expect_status(
        bots_rpc.UpdateConfig(
            pb.UpdateConfigRequest(
                owner_id=owner_id,
                bot_id=bot.id,
                config=pb.BotConfig(),
                update_mask=FieldMask(paths=["prompt", "model.name"]),
            )
        ),
        INVALID,
        "unknown path 'model.name'",
    )
    await expect_status(
        bots_rpc.UpdateConfig(
            pb.UpdateConfigRequest(
                owner_id=owner_id,
                bot_id=bot.id,
                config=pb.BotConfig(model=pb.ModelSettings(temperature=3)),
                update_mask=FieldMask(paths=["model.temperature"]),
            )
        ),
        INVALID,
        "config.model.temperature",
    )
    await expect_status(
        bots_rpc.UpdateConfig(
            pb.UpdateConfigRequest(
                owner_id=owner_id,
                bot_id=bot.id,
                config=pb.BotConfig(model=pb.ModelSettings(model_id="nope")),
            )
        ),
        INVALID,
        "unknown model id 'nope'",
    )
    unchanged = await bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    assert unchanged.config == full_config()


async def test_list_drafts_pages_newest_first(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    created = [await create_bot(bots_rpc, owner_id, name=f"bot {i}") for i in range(5)]
    newest_first = [b.id for b in reversed(created)]

    first = await bots_rpc.ListDrafts(
        pb.ListDraftsRequest(owner_id=owner_id, page_size=2, page_num=1)
    )
    third = await bots_rpc.ListDrafts(
        pb.ListDraftsRequest(owner_id=owner_id, page_size=2, page_num=3)
    )
    beyond = await bots_rpc.ListDrafts(
        pb.ListDraftsRequest(owner_id=owner_id, page_size=2, page_num=4)
    )
    everything = await bots_rpc.ListDrafts(
        pb.ListDraftsRequest(owner_id=owner_id, space_id=owner_id)
    )

    assert [b.id for b in first.bots] == newest_first[:2]
    assert [b.id for b in third.bots] == newest_first[4:]
    assert list(beyond.bots) == []
    assert first.total == third.total == beyond.total == everything.total == 5
    assert [b.id for b in everything.bots] == newest_first


async def test_delete_makes_the_bot_not_found_everywhere(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id)
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    ref = pb.BotRef(owner_id=owner_id, bot_id=bot.id)

    assert await bots_rpc.DeleteDraft(ref) == pb.Empty()

    await expect_status(bots_rpc.GetDraft(ref), NOT_FOUND)
    await expect_status(bots_rpc.DeleteDraft(ref), NOT_FOUND)
    await expect_status(bots_rpc.Publish(ref), NOT_FOUND)
    await expect_status(bots_rpc.ListVersions(ref), NOT_FOUND)
    await expect_status(
        bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id)), NOT_FOUND
    )
    await expect_status(
        bots_rpc.UpdateDisplayInfo(
            pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, name="x")
        ),
        NOT_FOUND,
    )
    await expect_status(
        bots_rpc.UpdateConfig(
            pb.UpdateConfigRequest(owner_id=owner_id, bot_id=bot.id, config=pb.BotConfig())
        ),
        NOT_FOUND,
    )
    drafts = await bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=owner_id))
    published = await bots_rpc.ListPublished(pb.ListPublishedRequest(owner_id=owner_id))
    assert drafts.total == published.total == 0


# -------------------------------------------------------------- publishing


async def test_publish_freezes_versions_and_drafts_do_not_leak_online(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, name="v1 name", config=full_config("prompt one"))
    ref = pb.BotRef(owner_id=owner_id, bot_id=bot.id)

    first = await bots_rpc.Publish(ref)
    assert (first.bot_id, first.version, first.name) == (bot.id, 1, "v1 name")
    assert first.config == full_config("prompt one")
    assert (first.owner_id, first.space_id) == (owner_id, owner_id)
    assert first.published_at > 0
    assert (first.created_at, first.updated_at) == (bot.created_at, bot.updated_at)
    draft = await bots_rpc.GetDraft(ref)
    assert (draft.latest_version, draft.published_at) == (1, first.published_at)

    await bots_rpc.UpdateDisplayInfo(
        pb.UpdateDisplayInfoRequest(owner_id=owner_id, bot_id=bot.id, name="v2 name")
    )
    await bots_rpc.UpdateConfig(
        pb.UpdateConfigRequest(
            owner_id=owner_id,
            bot_id=bot.id,
            config=pb.BotConfig(prompt="prompt two"),
            update_mask=FieldMask(paths=["prompt"]),
        )
    )
    online = await bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id))
    assert online == first, "draft edits must not change the online version"

    second = await bots_rpc.Publish(ref)
    third = await bots_rpc.Publish(ref)
    assert (second.version, second.name, second.config.prompt) == (2, "v2 name", "prompt two")
    assert third.version == 3

    latest = await bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id))
    old = await bots_rpc.GetVersion(
        pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id, version=1)
    )
    assert latest == third
    assert old == first
    versions = await bots_rpc.ListVersions(ref)
    assert [v.version for v in versions.versions] == [3, 2, 1]
    assert versions.versions[2] == first


async def test_versions_of_an_unpublished_bot_are_not_found(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id)

    await expect_status(
        bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id)),
        NOT_FOUND,
        "bot has not been published",
    )
    listed = await bots_rpc.ListVersions(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    assert list(listed.versions) == []

    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    await expect_status(
        bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id, version=2)),
        NOT_FOUND,
        "version 2",
    )


async def test_concurrent_publishes_get_distinct_consecutive_versions(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id)
    ref = pb.BotRef(owner_id=owner_id, bot_id=bot.id)

    published = await asyncio.gather(*(bots_rpc.Publish(ref) for _ in range(12)))

    assert sorted(v.version for v in published) == list(range(1, 13))
    latest = await bots_rpc.GetVersion(pb.GetVersionRequest(owner_id=owner_id, bot_id=bot.id))
    assert latest.version == 12


async def test_list_published_shows_latest_version_of_live_published_bots(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    twice = await create_bot(bots_rpc, owner_id, name="twice")
    once = await create_bot(bots_rpc, owner_id, name="once")
    await create_bot(bots_rpc, owner_id, name="draft only")
    deleted = await create_bot(bots_rpc, owner_id, name="deleted")
    for bot in (twice, once, deleted):
        await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=twice.id))
    await bots_rpc.DeleteDraft(pb.BotRef(owner_id=owner_id, bot_id=deleted.id))

    listed = await bots_rpc.ListPublished(pb.ListPublishedRequest(owner_id=owner_id))
    by_name = {v.name: v.version for v in listed.versions}
    assert by_name == {"twice": 2, "once": 1}
    assert listed.total == 2

    page = await bots_rpc.ListPublished(
        pb.ListPublishedRequest(owner_id=owner_id, space_id=owner_id, page_size=1, page_num=2)
    )
    assert len(page.versions) == 1
    assert page.total == 2


# ----------------------------------------------------------------- tenancy


async def test_another_owner_cannot_see_or_touch_a_bot(
    bots_rpc: BotRegistryAsyncStub, owner_id: int, other_owner_id: int
) -> None:
    bot = await create_bot(bots_rpc, owner_id, config=full_config())
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    foreign = pb.BotRef(owner_id=other_owner_id, bot_id=bot.id)

    calls: dict[str, Awaitable[Any]] = {
        "GetDraft": bots_rpc.GetDraft(foreign),
        "UpdateDisplayInfo": bots_rpc.UpdateDisplayInfo(
            pb.UpdateDisplayInfoRequest(owner_id=other_owner_id, bot_id=bot.id, name="mine")
        ),
        "UpdateConfig": bots_rpc.UpdateConfig(
            pb.UpdateConfigRequest(
                owner_id=other_owner_id, bot_id=bot.id, config=pb.BotConfig(prompt="x")
            )
        ),
        "Publish": bots_rpc.Publish(foreign),
        "GetVersion": bots_rpc.GetVersion(
            pb.GetVersionRequest(owner_id=other_owner_id, bot_id=bot.id)
        ),
        "ListVersions": bots_rpc.ListVersions(foreign),
        "DeleteDraft": bots_rpc.DeleteDraft(foreign),
    }
    for name, call in calls.items():
        details = await expect_status(call, NOT_FOUND)
        assert "permission" not in details.lower(), name

    drafts = await bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=other_owner_id))
    published = await bots_rpc.ListPublished(pb.ListPublishedRequest(owner_id=other_owner_id))
    assert drafts.total == published.total == 0

    untouched = await bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    assert (untouched.name, untouched.config) == ("Helper", full_config())
    assert untouched.latest_version == 1


async def test_foreign_space_is_permission_denied(
    bots_rpc: BotRegistryAsyncStub, owner_id: int, other_owner_id: int
) -> None:
    denied = grpc.StatusCode.PERMISSION_DENIED

    await expect_status(
        bots_rpc.CreateDraft(
            pb.CreateDraftRequest(owner_id=owner_id, space_id=other_owner_id, name="x")
        ),
        denied,
        "space_id",
    )
    await expect_status(
        bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=owner_id, space_id=other_owner_id)),
        denied,
    )
    await expect_status(
        bots_rpc.ListPublished(pb.ListPublishedRequest(owner_id=owner_id, space_id=other_owner_id)),
        denied,
    )


async def test_drafts_filtered_by_published_are_paged_and_counted_by_the_query(
    bots_rpc: BotRegistryAsyncStub, owner_id: int
) -> None:
    created = [await create_bot(bots_rpc, owner_id, name=f"bot {i}") for i in range(5)]
    published = {created[0].id, created[2].id, created[3].id}
    for bot_id in published:
        await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot_id))

    def page(flag: bool, num: int) -> pb.ListDraftsRequest:
        return pb.ListDraftsRequest(owner_id=owner_id, page_size=2, page_num=num, published=flag)

    first, second = (
        await bots_rpc.ListDrafts(page(True, 1)),
        await bots_rpc.ListDrafts(page(True, 2)),
    )
    assert first.total == second.total == 3
    assert [b.id for b in [*first.bots, *second.bots]] == sorted(published, reverse=True)
    never = await bots_rpc.ListDrafts(page(False, 1))
    assert never.total == 2
    assert {b.id for b in never.bots} == {created[1].id, created[4].id}
    assert all(b.latest_version == 0 for b in never.bots)
    unfiltered = await bots_rpc.ListDrafts(pb.ListDraftsRequest(owner_id=owner_id))
    assert unfiltered.total == 5


async def test_an_unpublished_bot_counts_as_not_published_in_drafts(
    bots_rpc: BotRegistryAsyncStub, registry_channel: grpc.aio.Channel, owner_id: int
) -> None:
    publishing: BotPublishingAsyncStub = BotPublishingStub(registry_channel)  # type: ignore[assignment]
    live, offline, never = [await create_bot(bots_rpc, owner_id, name=f"b{i}") for i in range(3)]
    for bot in (live, offline):
        await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=bot.id))
    await publishing.Unpublish(us.UnpublishRequest(owner_id=owner_id, bot_id=offline.id))

    def drafts(flag: bool | None) -> Awaitable[pb.ListDraftsResponse]:
        request = pb.ListDraftsRequest(owner_id=owner_id)
        if flag is not None:
            request.published = flag
        return bots_rpc.ListDrafts(request)

    published = await drafts(True)
    assert [b.id for b in published.bots] == [live.id] and published.total == 1
    not_published = await drafts(False)
    assert [b.id for b in not_published.bots] == [never.id, offline.id]
    assert not_published.total == 2
    flags = {b.id: (b.latest_version, b.unpublished) for b in (await drafts(None)).bots}
    assert flags == {live.id: (1, False), offline.id: (1, True), never.id: (0, False)}
    got = await bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=offline.id))
    assert got.unpublished

    # Publishing again brings it back online.
    await bots_rpc.Publish(pb.BotRef(owner_id=owner_id, bot_id=offline.id))
    assert {b.id for b in (await drafts(True)).bots} == {live.id, offline.id}
    back = await bots_rpc.GetDraft(pb.BotRef(owner_id=owner_id, bot_id=offline.id))
    assert not back.unpublished

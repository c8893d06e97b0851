"""The official Node SDK, @coze/api, against the running system (skipped without Node).

Each test runs one scenario of coze_api_check.mjs, which calls the SDK and prints what it saw
as JSON; the assertions are here."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chat.plugin_bots import PluginServers
from tests.conftest import Account

COZE_API_VERSION = "1.3.9"
HERE = Path(__file__).parent
LOGID = re.compile(r"[0-9A-F]{30}")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="session")
def coze_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the test owns with @coze/api installed from the npm registry."""
    folder = tmp_path_factory.mktemp("coze-js")
    (folder / "package.json").write_text(
        '{"name": "coze-js-check", "private": true, "type": "module"}'
    )
    installed = subprocess.run(
        # axios is a peer dependency of @coze/api.
        ["npm", "install", "--no-audit", "--no-fund", f"@coze/api@{COZE_API_VERSION}", "axios"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    shutil.copy(HERE / "coze_api_check.mjs", folder / "check.mjs")
    return folder


@pytest.fixture
def run_scenario(
    coze_js: Path, chat_system: str, account: Account
) -> Callable[[str, str], dict[str, Any]]:
    def run(scenario: str, arg: str) -> dict[str, Any]:
        return run_sdk_script(coze_js, "check.mjs", scenario, chat_system, account.token, arg)

    return run


def run_sdk_script(sdk_dir: Path, script: str, *args: str) -> dict[str, Any]:
    """Runs `node SCRIPT ARGS` in an installed SDK's folder; what it printed, as JSON."""
    result = subprocess.run(
        ["node", script, *args],
        cwd=sdk_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def assert_api_error(
    error: dict[str, Any] | None, name: str, status: int, msg: str | None = None
) -> None:
    """An SDK error built from our JSON envelope: its class, status, code, msg and log id."""
    assert error is not None
    assert error["isAPIError"] and error["name"] == name
    assert error["status"] == status and error["code"] == status
    if msg is not None:
        assert error["msg"] == msg
    assert LOGID.fullmatch(error["logid"]) and error["logid"] == error["headerLogid"]
    assert error["message"] == f"code: {status}, msg: {error['msg']}, logid: {error['logid']}"


def test_coze_api_stream_create_and_poll_and_bots_retrieve(
    run_scenario: Callable[[str, str], dict[str, Any]], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    out = run_scenario("chat", bot_id)

    assert out["onlineInfo"]["bot_id"] == bot_id and out["onlineInfo"]["version"] == "1"
    assert out["bot"]["bot_id"] == bot_id and out["bot"]["name"] == "chat bot"

    stream = out["stream"]
    assert stream["events"][:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert stream["events"][-3:] == [
        "conversation.chat.completed",
        "conversation.stream.done",
        "done",
    ]
    assert "hello from js" in stream["answer"]
    assert stream["completed"]["usage"]["token_count"] > 0

    poll = out["poll"]
    assert poll["status"] == "completed"
    answers = [m for m in poll["messages"] if m["type"] == "answer"]
    assert answers and "poll from js" in answers[0]["content"]


def test_coze_api_chat_on_a_failing_model(
    run_scenario: Callable[[str, str], dict[str, Any]], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-fail")
    out = run_scenario("failed", bot_id)

    # chat.stream yields every event, the failure ones included, and never throws.
    stream = out["stream"]
    assert stream["threw"] is None
    events = [part["event"] for part in stream["parts"]]
    assert events[:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert "conversation.message.delta" in events
    assert events[-4:] == ["conversation.chat.failed", "error", "conversation.stream.done", "done"]
    failed, error, stream_done, done = (part["data"] for part in stream["parts"][-4:])
    assert failed["status"] == "failed" and failed["failed_at"] > 0
    last_error = failed["last_error"]
    assert last_error["code"] != 0 and last_error["msg"]
    # The `error` event's data is parsed JSON: the product document's `error` object plus the
    # top-level code/msg.
    assert error == {"event": "conversation.error", **last_error, "error": last_error}
    assert stream_done == {"event": "conversation.stream.done"}
    # @coze/api does not read done's data: it reports its own "[DONE]" whatever we send
    # (we send {"event":"done"}).
    assert done == "[DONE]"

    # createAndPoll stops polling on status `failed` and returns the failed chat.
    poll = out["poll"]
    assert poll["chat"]["status"] == "failed"
    assert poll["chat"]["last_error"] == last_error


def test_coze_api_chat_refused_before_the_run(
    run_scenario: Callable[[str, str], dict[str, Any]],
) -> None:
    out = run_scenario("refused", "123456")

    # Not streaming: NotFoundError from our envelope, with code, msg and the x-tt-logid.
    assert_api_error(out["create"], "NotFoundError", 404, "bot 123456 not found")
    assert_api_error(out["createAndPoll"], "NotFoundError", 404, "bot 123456 not found")

    # Streaming: still a NotFoundError (status 404, the log id) before any event, but 1.3.9
    # lets axios reject the non-2xx answer before it reads the JSON body, so `code` and `msg`
    # are undefined and the message is only the log id. The body is still there, unread, in
    # the error's `rawError` stream.
    stream = out["stream"]
    assert stream["parts"] == []
    threw = stream["threw"]
    assert threw["isNotFoundError"] and threw["status"] == 404
    assert "code" not in threw and "msg" not in threw
    assert LOGID.fullmatch(threw["logid"]) and threw["logid"] == threw["headerLogid"]
    assert threw["message"] == f"logid: {threw['logid']}"
    assert stream["body"] == {"code": 404, "msg": "bot 123456 not found", "data": None}


def test_coze_api_chat_cancel(
    run_scenario: Callable[[str, str], dict[str, Any]], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-stream-slow")
    out = run_scenario("cancel", bot_id)

    # chat.cancel on the first delta: the Chat comes back canceled, the stream ends with the
    # canceled event and no chat.completed, without throwing.
    stream = out["stream"]
    assert stream["canceled"]["status"] == "canceled"
    assert stream["events"][-3:] == [
        "conversation.chat.canceled",
        "conversation.stream.done",
        "done",
    ]
    assert "conversation.chat.completed" not in stream["events"]
    canceled_event = stream["parts"][-3]["data"]
    assert (
        canceled_event["status"] == "canceled" and canceled_event["id"] == stream["canceled"]["id"]
    )
    assert stream["retrieved"]["status"] == "canceled"
    # chat.messages.list: the question and the partial answer.
    assert [m["type"] for m in stream["messages"]] == ["question", "answer"]
    assert stream["messages"][1]["content"]
    # A second cancel: the 409 from our envelope, as an APIError.
    assert_api_error(stream["cancelAgain"], "Error", 409)

    # createAndPoll on a chat canceled meanwhile (chat.cancel with only the conversation id,
    # while createAndPoll's non-streaming request waits): its loop waits for completed, failed
    # or requires_action, never for canceled, and has no limit of its own. Two seconds later
    # it is still polling chat.retrieve every 100 ms, each poll answering `canceled`.
    poll = out["createAndPoll"]
    assert poll["canceledMeanwhile"]["status"] == "canceled"
    assert poll["afterTwoSeconds"] == "still polling"
    assert len(poll["statuses"]) >= 10 and set(poll["statuses"]) == {"canceled"}


def test_coze_api_bots_create_update_publish_list(
    run_scenario: Callable[[str, str], dict[str, Any]], account: Account
) -> None:
    space_id = str(account.user_id)
    out = run_scenario("bots", space_id)

    bot_id = out["created"]["bot_id"]
    assert isinstance(bot_id, str) and bot_id.isdigit()
    assert out["created"]["name"] == "js bot"
    # bots.retrieve (get_online_info) before the first publish is a 404.
    assert_api_error(out["onlineBeforePublish"], "NotFoundError", 404)

    # bots.update changed the draft: retrieveNew with is_published=false reads it.
    draft = out["draft"]
    assert (draft["bot_id"], draft["name"], draft["version"]) == (bot_id, "js bot 2", "0")
    assert draft["prompt_info"] == {"prompt": "be kind"}

    # bots.publish made it version "1", with the update and the create-time onboarding.
    online = out["online"]
    assert (online["bot_id"], online["name"], online["version"]) == (bot_id, "js bot 2", "1")
    assert online["status"] == "online" and online["description"] == "from @coze/api"
    assert online["prompt_info"] == {"prompt": "be kind"}
    assert online["onboarding_info"] == {"prologue": "hi", "suggested_questions": ["q1"]}

    # bots.list (deprecated in the SDK, /v1/space/published_bots_list): only the published bot.
    listed = out["list"]
    assert listed["total"] == 1
    assert [(b["bot_id"], b["bot_name"]) for b in listed["space_bots"]] == [(bot_id, "js bot 2")]
    assert int(listed["space_bots"][0]["publish_time"]) > 0

    # bots.listNew (/v1/bots): published by default; publish_status filters.
    assert out["listNew"]["total"] == 1
    assert [(b["id"], b["is_published"]) for b in out["listNew"]["items"]] == [(bot_id, True)]
    assert out["listNewAll"]["total"] == 2
    assert {b["id"] for b in out["listNewAll"]["items"]} == {bot_id, out["otherId"]}
    unpublished = out["listNewUnpublished"]
    assert [(b["id"], b["is_published"]) for b in unpublished["items"]] == [(out["otherId"], False)]


def test_coze_api_bots_list_new_pages_with_page_num(
    run_scenario: Callable[[str, str], dict[str, Any]], account: Account
) -> None:
    out = run_scenario("bots-paging", str(account.user_id))
    assert [page["total"] for page in out["pages"]] == [3, 3, 3]
    # Newest first, one per page, each bot exactly once.
    assert [page["ids"] for page in out["pages"]] == [[bot_id] for bot_id in out["ids"][::-1]]


def test_coze_api_conversations_create_retrieve_list_clear(
    run_scenario: Callable[[str, str], dict[str, Any]], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    out = run_scenario("conversations", bot_id)

    created = out["created"]
    assert isinstance(created["id"], str) and created["id"].isdigit()
    assert created["bot_id"] == bot_id and created["meta_data"] == {"k": "v"}
    assert created["last_section_id"]
    assert out["retrieved"] == created

    # conversations.list pages with page_num / page_size: newest first, has_more until the end.
    pages = out["pages"]
    assert [[c["id"] for c in page["conversations"]] for page in pages] == [
        [out["newerId"]],
        [created["id"]],
    ]
    assert [page["has_more"] for page in pages] == [True, False]

    # conversations.clear starts a new section, which becomes last_section_id.
    cleared = out["cleared"]
    assert cleared["conversation_id"] == created["id"]
    assert cleared["id"] != created["last_section_id"]
    assert out["afterClear"]["last_section_id"] == cleared["id"]

    assert_api_error(out["unknown"], "NotFoundError", 404, "conversation 123456 not found")


def test_coze_api_messages_create_list_retrieve_update_delete(
    run_scenario: Callable[[str, str], dict[str, Any]], make_bot: Callable[..., str]
) -> None:
    bot_id = make_bot(model="mock-echo")
    out = run_scenario("messages", bot_id)

    created = out["created"]
    assert [m["content"] for m in created] == ["m0", "m1", "m2", "m3", "m4"]
    for message in created:
        assert message["conversation_id"] == out["conversationId"]
        assert (message["role"], message["type"], message["chat_id"]) == ("user", "question", "0")
        assert message["meta_data"] == {"n": message["content"]}

    # messages.list returns the whole answer (first_id, last_id, has_more beside data); paged
    # with after_id = last_id it returns each message once, newest first, then stops.
    pages = out["pages"]
    assert [[m["content"] for m in page["data"]] for page in pages] == [
        ["m4", "m3"],
        ["m2", "m1"],
        ["m0"],
    ]
    assert [page["has_more"] for page in pages] == [True, True, False]
    for page in pages:
        assert (page["code"], page["msg"]) == (0, "success")
        assert (page["first_id"], page["last_id"]) == (
            page["data"][0]["id"],
            page["data"][-1]["id"],
        )

    assert out["retrieved"] == created[0]
    # messages.update returns the answer's `message`, with the new content.
    assert out["updated"] == {
        **created[0],
        "content": "changed",
        "updated_at": out["updated"]["updated_at"],
    }
    assert out["deleted"]["id"] == created[0]["id"]
    assert_api_error(out["afterDelete"], "NotFoundError", 404)
    remaining = out["remaining"]["data"]
    assert [m["content"] for m in remaining] == ["m1", "m2", "m3", "m4"]


def test_coze_api_workspaces_users_and_variables(
    run_scenario: Callable[[str, str], dict[str, Any]],
    make_bot: Callable[..., str],
    account: Account,
    mock_llm: str,
) -> None:
    bot_id = make_bot(model="mock-echo", prompt="Weather in {{city}}.")
    out = run_scenario("surface", bot_id)

    assert out["workspaces"] == {
        "total_count": 1,
        "workspaces": [
            {
                "id": str(account.user_id),
                "name": "Personal",
                "icon_url": "",
                "role_type": "owner",
                "workspace_type": "personal",
                "enterprise_id": "",
            }
        ],
    }
    # bots.create in the space workspaces.list gave, and listNew finds it there.
    assert out["createdId"] in out["listedIds"]
    assert out["me"] == {
        "user_id": str(account.user_id),
        "user_name": account.username,
        "nick_name": account.username,
        "avatar_url": "",
    }
    assert out["updated"] is None  # variables.update resolves to undefined
    # axios sends keywords[]=city: only that one comes back.
    assert [(v["keyword"], v["value"]) for v in out["one"]["items"]] == [("city", "Osaka")]
    assert sorted(v["keyword"] for v in out["all"]["items"]) == ["city", "unused"]
    assert_api_error(out["badUpdate"], "BadRequestError", 400)
    assert out["chatStatus"] == "completed"
    system = httpx.get(f"{mock_llm}/mock/requests").json()[-1]["messages"][0]
    assert system == {"role": "system", "content": "Weather in Osaka."}


def test_coze_api_chat_with_an_openapi_plugin_tool(
    run_scenario: Callable[[str, str], dict[str, Any]],
    make_plugin_bot: Callable[[list[dict[str, Any]]], tuple[str, dict[str, str]]],
    plugin_servers: PluginServers,
) -> None:
    bot_id, plugin_ids = make_plugin_bot(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
            {"reply": "Weather: {tool_output}"},
        ]
    )
    before = len(plugin_servers.calls.requests)
    out = run_scenario("pluginTools", bot_id)

    assert [p["plugin_id"] for p in out["pluginInfoList"]] == [
        plugin_ids["weather"],
        plugin_ids["calc"],
    ]
    assert "get_weather" in [a["name"] for a in out["pluginInfoList"][0]["api_info_list"]]
    stream = out["stream"]
    assert stream["events"][-3:] == [
        "conversation.chat.completed",
        "conversation.stream.done",
        "done",
    ]
    types = [m["type"] for m in stream["completed"]]
    assert types[:2] == ["function_call", "tool_response"] and "answer" in types
    call = json.loads(stream["completed"][0]["content"])
    assert call["name"] == "get_weather" and call["plugin_id"] == plugin_ids["weather"]
    assert json.loads(stream["completed"][1]["content"])["city"] == "Oslo"
    assert stream["answer"].startswith("Weather: ")
    assert out["poll"]["status"] == "completed"
    assert [m["type"] for m in out["poll"]["messages"] if m["type"] != "question"] == [
        "function_call",
        "tool_response",
        "answer",
    ]
    # The real API was called once per chat.
    assert [r["path"] for r in plugin_servers.calls.requests[before:]] == ["/weather/Oslo"] * 2

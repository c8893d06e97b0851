"""Schemathesis over the running edge, driven by the edge's own /openapi.json.

For every operation it sends requests that fit the documented schema (positive) and requests
that break it (negative), authenticated with a real API key, and holds every answer to the
wire contract: never a 5xx, never a hang, every JSON body the envelope (`code` equal to the
HTTP status on errors), every stream framed as the SDKs require, and every answer as
documented (schemathesis' response schema, content type and status code checks).

Generated ids are random and would almost always be unknown (a 404 before any real work), so
in most cases ids are replaced by ones that exist for the fuzzing account: a
published bot, a conversation with a finished chat and its messages, a spare API key. Those
are made afresh for every operation, as the operations may delete them.

Bounded for CI: a fixed number of examples per operation and mode, derandomized so every run
sends the same requests (until the schema or hypothesis changes), no shrinking, and a
per-request timeout. Failures are collected, not raised at the first one, so the summary
printed at the end of the session counts them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.edge.app import create_app
from services.edge.settings import EdgeSettings
from tests.chat.sse import parse_stream
from tests.conftest import Account
from tests.fuzz.conftest import Tally, tally

EXAMPLES_PER_MODE = 30
REQUEST_TIMEOUT_S = 10.0
UNAUTHENTICATED_PATHS = {"/healthz", "/livez", "/api/passport/register", "/api/passport/login"}
SCHEMA_CHECKS = [response_schema_conformance, content_type_conformance, status_code_conformance]


def _documented_operations() -> list[tuple[str, str]]:
    """The operations as the edge documents them, known at collection time (the app is built
    in process, not started); the test then fuzzes the live document of the running edge."""
    document = create_app(EdgeSettings()).openapi()
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


OPERATIONS = _documented_operations()


@pytest.fixture(scope="module")
def live_schema(fuzz_edge_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_edge_url}/openapi.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


@dataclass(frozen=True)
class RealIds:
    by_field: dict[str, int]


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def make_real_ids(base_url: str, account: Account) -> RealIds:
    with httpx.Client(base_url=base_url, headers=account.headers, timeout=30) as http:
        bot = _data(http.post("/api/draftbot/create", json={"name": "fuzz", "model": "echo"}))
        bot_id = bot["bot_id"]
        _data(http.post("/api/draftbot/publish", json={"bot_id": bot_id}))
        conversation = _data(http.post("/v1/conversation/create", json={"bot_id": bot_id}))
        chat = _data(
            http.post(
                "/v3/chat",
                params={"conversation_id": conversation["id"]},
                json={"bot_id": bot_id, "user_id": "fuzz", "query": "hello"},
            )
        )
        assert chat["status"] == "completed", chat
        listed = {"conversation_id": conversation["id"]}
        messages = _data(http.get("/v1/conversation/message/list", params=listed))
        key = _data(
            http.post(
                "/api/permission_api/pat/create_personal_access_token_and_permission",
                json={"name": "fuzz spare"},
            )
        )
    message_id = int(messages[0]["id"])
    return RealIds(
        {
            "bot_id": bot_id,
            "agent_id": bot_id,
            "space_id": account.user_id,
            "workspace_id": account.user_id,
            "conversation_id": int(conversation["id"]),
            "ConversationID": int(conversation["id"]),
            "chat_id": int(chat["id"]),
            "message_id": message_id,
            # The OpenAI-compatible routes' name for a bot id (see use_real_ids).
            "model": bot_id,
            "before_id": message_id,
            "after_id": message_id,
            # Only ever the spare key: the fuzzer deleting its own key would end the run.
            "id": key["personal_access_token"]["id"],
        }
    )


def use_real_ids(case: Any, ids: RealIds) -> None:
    """Swaps generated ids for real ones, keeping each value's JSON type (string or number)."""
    for container in (case.path_parameters, case.query, case.body):
        if not isinstance(container, dict):
            continue
        for name, real in ids.by_field.items():
            # Elsewhere `model` is a model id (echo, ...), not a bot.
            if name == "model" and case.path not in OPENAI_PATHS:
                continue
            if name in container and isinstance(container[name], str | int):
                if isinstance(container[name], bool):
                    continue
                container[name] = str(real) if isinstance(container[name], str) else real


def cozepy_lines_hold(raw: bytes) -> bool:
    """Whether a reader that splits like str.splitlines (httpx's iter_lines, which cozepy
    uses) sees exactly event / data / blank line triples."""
    lines = raw.decode().splitlines()
    if len(lines) % 3:
        return False
    for index in range(0, len(lines), 3):
        event, data, blank = lines[index : index + 3]
        if not event.startswith("event: ") or not data.startswith("data: ") or blank:
            return False
        orjson.loads(data[len("data: ") :])
    return True


def header(response: Any, name: str) -> str:
    """A header of a schemathesis response (its names keep the case they were sent in)."""
    return next((v[0] for k, v in response.headers.items() if k.lower() == name), "")


OPENAI_PATHS = {"/v1/models", "/v1/models/{model}", "/v1/chat/completions"}


def openai_problems(response: Any, content_type: str) -> list[str]:
    """The OpenAI-compatible routes answer in OpenAI's formats, not the envelope."""
    status = response.status_code
    if status == 413:
        return []  # the edge's body limit answers before any route: the envelope
    if content_type.startswith("application/json"):
        body = response.json()
        if status >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if (
                set(body) != {"error"}
                or not isinstance(error, dict)
                or set(error) != {"message", "type", "param", "code"}
                or not error["message"]
            ):
                return [f"not OpenAI's error shape: {response.text[:200]}"]
        return []
    if content_type.startswith("text/event-stream") and status == 200:
        events = response.content.decode().split("\n\n")
        if events[-2:] != ["data: [DONE]", ""] or not all(
            e.startswith("data: ") and "\n" not in e for e in events[:-1]
        ):
            return [f"not OpenAI's SSE: {response.content[:300]!r}"]
        return []
    return [f"unexpected content type {content_type!r}"]


def contract_problems(path: str, response: Any) -> list[str]:
    """What is wrong with one answer, per the wire contract (empty when nothing)."""
    problems = []
    status = response.status_code
    headers = {k.lower(): v[0] for k, v in response.headers.items()}
    content_type = headers.get("content-type", "")
    if status >= 500:
        problems.append(f"server error {status}: {response.text[:200]}")
    if not headers.get("x-log-id") or headers.get("x-tt-logid") != headers.get("x-log-id"):
        problems.append("no log id headers")
    if status == 200 and path not in UNAUTHENTICATED_PATHS and "x-ratelimit-limit" not in headers:
        problems.append("no X-RateLimit-* headers on an authenticated answer")
    if path in OPENAI_PATHS:
        return problems + openai_problems(response, content_type)
    if content_type.startswith("application/json"):
        body = response.json()
        if not isinstance(body, dict) or not {"code", "msg", "data"} <= set(body):
            problems.append(f"not the envelope: {response.text[:200]}")
        elif status >= 400:
            if set(body) != {"code", "msg", "data"} or body["code"] != status:
                problems.append(f"error envelope with code != status {status}: {body}")
            elif body["data"] is not None or not isinstance(body["msg"], str) or not body["msg"]:
                problems.append(f"error envelope without a message: {body}")
        elif (body["code"], body["msg"]) != (0, "success"):
            problems.append(f"success without code 0: {response.text[:200]}")
    elif content_type.startswith("text/event-stream"):
        raw = response.content
        try:
            events = parse_stream(raw)
        except AssertionError as exc:
            problems.append(f"stream framing: {exc}")
        else:
            if [e.name for e in events[-2:]] != ["conversation.stream.done", "done"]:
                problems.append(f"stream does not end with done: {[e.name for e in events]}")
        if not cozepy_lines_hold(raw):
            problems.append(f"stream breaks a splitlines reader (cozepy): {raw[:300]!r}")
    else:
        problems.append(f"unexpected content type {content_type!r}")
    return problems


def has_inputs(operation: Any) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_survives_generated_input(
    method: str,
    path: str,
    live_schema: Any,
    fuzz_edge_url: str,
    fuzz_account: Account,
    session: requests.Session,
) -> None:
    operation = live_schema[path][method]
    ids = make_real_ids(fuzz_edge_url, fuzz_account)
    results = tally("schemathesis (edge /openapi.json)")
    target = f"{method} {path}"
    failures: list[str] = []
    modes = [GenerationMode.POSITIVE]
    if has_inputs(operation):
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:
        run = _fuzz_run(
            operation, mode, fuzz_account.token, ids, fuzz_edge_url, session, results, failures
        )
        run()
    results.failures[target] += len(failures)
    assert not failures, f"{len(failures)} of the cases failed:\n" + "\n\n".join(failures[:5])


def _fuzz_run(
    operation: Any,
    mode: GenerationMode,
    token: str,
    ids: RealIds,
    base_url: str,
    session: requests.Session,
    results: Tally,
    failures: list[str],
) -> Any:
    strategy = operation.as_strategy(
        generation_mode=mode, headers={"Authorization": f"Bearer {token}"}
    )
    path = operation.path
    target = f"{operation.method.upper()} {path}"

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: failures are collected with a curl command to reproduce them.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    # Three in four cases get real ids (hypothesis draws booleans far from evenly).
    @given(case=strategy, real=st.sampled_from([True, True, True, False]))
    def run(case: Any, real: bool) -> None:
        if real:
            use_real_ids(case, ids)
        results.cases[target] += 1
        try:
            response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:
            failures.append(f"[{mode.value}] no answer ({exc!r}):\n{case.as_curl_command()}")
            return
        results.statuses[response.status_code] += 1
        if header(response, "content-type").startswith("text/event-stream"):
            results.streams += 1
        problems = contract_problems(path, response)
        try:
            case.validate_response(response, checks=SCHEMA_CHECKS)
        except BaseException as exc:  # schemathesis raises a group of its check failures
            problems.append(f"schemathesis: {exc}")
        if problems:
            failures.append(
                f"[{mode.value}] {'; '.join(problems)}\n{case.as_curl_command()}"[:2000]
            )

    return run

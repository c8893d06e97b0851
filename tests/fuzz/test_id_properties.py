"""Property tests of the edge's input parsers: any JSON value where an id is expected is either
a valid id or a clean 400 naming the field, never anything else; any bytes as a JSON body are
a 400 envelope or parsed, never a 500. First the parsers themselves, then the same through the
running edge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from services.edge.schemas.chat import OptionalId
from services.edge.schemas.common import MAX_ID, Id
from tests.conftest import Account
from tests.edge.envelope import assert_error
from tests.fuzz.conftest import case

NAME = "hypothesis: id and body parsers"
PARSER_EXAMPLES = 500
HTTP_EXAMPLES = 60


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# Ids as clients get them wrong: near the bounds, as strings with junk, as other JSON types.
id_like = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, MAX_ID, MAX_ID + 1, 2**53, 2**64, -1]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.from_regex(r"[ +-]?[0-9]{0,22}[ .eE]?[0-9]{0,3}", fullmatch=True),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
json_values = st.recursive(
    id_like | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def expected_id(value: Any) -> int | None:
    """The documented rule, written independently of the parser."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        number = int(value)
    else:
        return None
    return number if 1 <= number <= MAX_ID else None


ID = TypeAdapter(Id)
OPTIONAL_ID = TypeAdapter(OptionalId)


@_settings(PARSER_EXAMPLES)
@given(value=json_values)
def test_any_json_value_is_a_valid_id_or_a_validation_error(value: Any) -> None:
    with case(NAME, "Id / OptionalId parsers"):
        check_id_parsers(value)


def check_id_parsers(value: Any) -> None:
    want = expected_id(value)
    try:
        got: int | None = ID.validate_python(value)
    except ValidationError as exc:
        got = None
        assert exc.errors()[0]["type"] in ("id_type", "id_range"), exc.errors()
    assert got == want

    if value is None or value in ("", "0", 0):
        assert OPTIONAL_ID.validate_python(value) is None
    else:
        try:
            assert OPTIONAL_ID.validate_python(value) == want
        except ValidationError:
            assert want is None


@pytest.fixture(scope="module")
def http(fuzz_edge_url: str, fuzz_account: Account) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_edge_url, headers=fuzz_account.headers, timeout=10) as client:
        yield client


@_settings(HTTP_EXAMPLES)
@given(value=json_values)
def test_any_json_value_as_a_body_id_is_a_clean_answer(http: httpx.Client, value: Any) -> None:
    response = http.post(
        "/api/draftbot/publish",
        content=json.dumps({"bot_id": value}),
        headers={"content-type": "application/json"},
    )
    with case(NAME, "bot_id in a JSON body", response.status_code):
        if expected_id(value) is None:
            assert_error(response, 400, "bot_id")
        else:
            # A well-formed id of no bot of this account.
            assert_error(response, 404)


@_settings(HTTP_EXAMPLES)
@given(value=st.one_of(id_like.map(str), st.text(min_size=1, max_size=40)))
def test_any_text_as_a_path_or_query_id_is_a_clean_answer(http: httpx.Client, value: str) -> None:
    by_query = http.get("/v1/bot/get_online_info", params={"bot_id": value})
    with case(NAME, "bot_id in the query", by_query.status_code):
        if expected_id(value) is None:
            assert_error(by_query, 400, "bot_id")
        else:
            assert_error(by_query, 404)
    # Percent-encoded; once decoded, a "/" in it makes it another route (a 404).
    by_path = http.get(f"/v1/bots/{quote(value, safe='')}")
    with case(NAME, "bot_id in the path", by_path.status_code):
        assert by_path.status_code in (400, 404), by_path.text
        assert_error(by_path, by_path.status_code)


@_settings(HTTP_EXAMPLES)
@given(body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_as_a_json_body_are_parsed_or_a_400(http: httpx.Client, body: bytes) -> None:
    response = http.post(
        "/v1/conversation/create", content=body, headers={"content-type": "application/json"}
    )
    with case(NAME, "raw JSON body", response.status_code):
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert_error(response, 400)

"""Assertions on the response envelope every edge route must use."""

from __future__ import annotations

from typing import Any

import httpx


def assert_log_id(response: httpx.Response) -> None:
    log_id = response.headers.get("x-log-id")
    assert log_id, f"no X-Log-ID on {response.request.method} {response.request.url}"
    assert response.headers.get("x-tt-logid") == log_id


def data_of(response: httpx.Response) -> Any:
    """The `data` of a successful response, after checking the envelope around it."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_log_id(response)
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "success", body
    assert set(body) == {"code", "msg", "data"}, body
    return body["data"]


def assert_error(response: httpx.Response, status: int, *msg_fragments: str) -> str:
    """The response is the error envelope with this status; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_log_id(response)
    body = response.json()
    assert set(body) == {"code", "msg", "data"}, body
    assert body["code"] == status and body["data"] is None, body
    assert isinstance(body["msg"], str) and body["msg"], body
    for fragment in msg_fragments:
        assert fragment in body["msg"], body
    return str(body["msg"])

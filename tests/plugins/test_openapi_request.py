"""The OpenAPI executor's request building, in process: arguments to path, query, headers,
body and auth."""

from __future__ import annotations

import pytest

from cozeplus.rpc.v1 import plugins_pb2 as ppb
from services.runner.tools.openapi import ArgumentError, build_request


def resolved(auth: ppb.PluginAuth | None = None, has_json_body: bool = False) -> ppb.ResolvedTool:
    return ppb.ResolvedTool(
        name="t",
        plugin_type="openapi",
        http=ppb.HttpOperation(
            method="POST",
            server_url="https://api.example.com/v1/",
            path="/items/{id}",
            parameters=[
                ppb.HttpParameter(name="id", location="path", required=True),
                ppb.HttpParameter(name="tag", location="query"),
                ppb.HttpParameter(name="strict", location="query"),
                ppb.HttpParameter(name="X-Trace", location="header"),
            ],
            has_json_body=has_json_body,
        ),
        auth=auth or ppb.PluginAuth(type="none"),
    )


def test_arguments_fill_path_query_headers_and_body() -> None:
    request = build_request(
        resolved(has_json_body=True),
        {
            "id": "a/b c",
            "tag": ["x", "y"],
            "strict": True,
            "X-Trace": 7,
            "body": {"n": 1},
            "extra": 1,
        },
    )
    # One path segment, whatever the value: it cannot climb out of the server's URL.
    assert request.url == "https://api.example.com/v1/items/a%2Fb%20c"
    assert request.params == [("tag", "x"), ("tag", "y"), ("strict", "true")]
    assert request.headers == {"X-Trace": "7"}
    assert request.has_body and request.json_body == {"n": 1}


def test_missing_required_and_header_injection_are_refused() -> None:
    with pytest.raises(ArgumentError, match="missing required argument 'id'"):
        build_request(resolved(), {})
    with pytest.raises(ArgumentError, match="line breaks"):
        build_request(resolved(), {"id": 1, "X-Trace": "a\r\nHost: evil"})


def test_body_only_when_the_operation_has_one() -> None:
    assert not build_request(resolved(), {"id": 1, "body": {"n": 1}}).has_body


@pytest.mark.parametrize(
    ("auth", "headers", "params"),
    [
        (ppb.PluginAuth(type="bearer", value="s3"), {"Authorization": "Bearer s3"}, []),
        (
            ppb.PluginAuth(type="api_key", location="header", name="X-Key", value="s3"),
            {"X-Key": "s3"},
            [],
        ),
        (
            ppb.PluginAuth(type="api_key", location="query", name="key", value="s3"),
            {},
            [("key", "s3")],
        ),
    ],
)
def test_auth_is_applied_last(
    auth: ppb.PluginAuth, headers: dict[str, str], params: list[tuple[str, str]]
) -> None:
    request = build_request(resolved(auth), {"id": 1, "X-Trace": "t"})
    assert request.headers == {"X-Trace": "t", **headers}
    assert request.params == params

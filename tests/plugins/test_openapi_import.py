"""OpenAPI documents into tools, in process: the mapping, and every guard against hostile
documents (each refusal must name its problem)."""

from __future__ import annotations

import json

import pytest

from services.registry.errors import InvalidArgument
from services.registry.openapi_import import import_openapi

HEAD = (
    "openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: 'https://api.example.com'}]\n"
)


def refused(document: str, server_url: str = "") -> str:
    with pytest.raises(InvalidArgument) as caught:
        import_openapi(document, server_url)
    return caught.value.message


def test_parameters_and_body_become_one_schema() -> None:
    api = import_openapi(
        HEAD
        + """
paths:
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
    put:
      operationId: update_item
      description: Replace an item
      parameters:
        - {name: dry_run, in: query, schema: {type: boolean}, description: only check}
        - {name: X-Request-Id, in: header, required: true, schema: {type: string}}
      requestBody:
        content:
          application/merge-patch+json:
            schema: {type: object, properties: {name: {type: string}}}
      responses: {'200': {description: ok}}
"""
    )
    assert api.server_url == "https://api.example.com"
    [op] = api.operations
    assert (op.name, op.method, op.path, op.description) == (
        "update_item",
        "PUT",
        "/items/{id}",
        "Replace an item",
    )
    assert [(p.name, p.location, p.required) for p in op.parameters] == [
        ("id", "path", True),
        ("dry_run", "query", False),
        ("X-Request-Id", "header", True),
    ]
    assert op.has_json_body
    assert op.schema == {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "dry_run": {"type": "boolean", "description": "only check"},
            "X-Request-Id": {"type": "string"},
            "body": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "required": ["id", "X-Request-Id"],
    }


def test_json_documents_openapi_31_and_server_variables() -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [
            {"url": "https://{region}.example.com/v1", "variables": {"region": {"default": "eu"}}}
        ],
        "paths": {
            "/ping": {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}
        },
    }
    api = import_openapi(json.dumps(document))
    assert api.server_url == "https://eu.example.com/v1"
    assert api.operations[0].schema == {"type": "object", "properties": {}}
    # An override wins, and makes a relative server usable.
    document["servers"] = [{"url": "/v1"}]
    assert "absolute http(s) URL" in refused(json.dumps(document))
    assert import_openapi(json.dumps(document), "http://10.0.0.5:8080/").server_url == (
        "http://10.0.0.5:8080"
    )


PING = "  /ping: {get: {operationId: ping, responses: {'200': {description: ok}}}}\n"


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (
            "  /a: {get: {operationId: a, parameters: [{name: s, in: cookie,"
            " schema: {type: string}}], responses: {'200': {description: ok}}}}\n",
            "is in cookie",
        ),
        (
            "  /a: {post: {operationId: a, requestBody: {required: true, content: "
            "{text/plain: {schema: {type: string}}}}, responses: {'200': {description: ok}}}}\n",
            "only JSON request bodies",
        ),
        (
            "  /a: {get: {operationId: 'a b', responses: {'200': {description: ok}}}}\n",
            "must be 1-64",
        ),
        (
            PING + "  /b: {get: {operationId: ping, responses: {'200': {description: ok}}}}\n",
            "ping",
        ),
        (
            "  /a: {post: {operationId: a, parameters: [{name: body, in: query,"
            " schema: {type: string}}], responses: {'200': {description: ok}}}}\n",
            "body is reserved",
        ),
    ],
)
def test_operations_that_cannot_be_tools(paths: str, problem: str) -> None:
    assert problem in refused(HEAD + "paths:\n" + paths)


def test_no_operations() -> None:
    assert "no operations" in refused(HEAD + "paths: {}\n")


def test_exponential_ref_expansion_is_bounded() -> None:
    """Each schema refers to the next twice: tiny as text, 2^40 values once inlined."""
    schemas = {
        f"S{i}": {
            "type": "object",
            "properties": {
                "a": {"$ref": f"#/components/schemas/S{i + 1}"},
                "b": {"$ref": f"#/components/schemas/S{i + 1}"},
            },
        }
        for i in range(40)
    }
    schemas["S40"] = {"type": "string"}
    document = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": "https://a.example"}],
        "paths": {
            "/a": {
                "post": {
                    "operationId": "a",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/S0"}}
                        }
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {"schemas": schemas},
    }
    assert "inlining $refs makes the document larger" in refused(json.dumps(document))


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("./other.yaml#/x", "is not local"),
        ("file:///etc/passwd", "is not local"),
        ("#/components/schemas/Missing", "points at nothing"),
    ],
)
def test_refs_that_are_not_followed(ref: str, problem: str) -> None:
    document = HEAD + (
        "paths:\n  /a: {get: {operationId: a, parameters: [{name: q, in: query, schema: "
        f"{{$ref: '{ref}'}}}}], responses: {{'200': {{description: ok}}}}}}}}\n"
    )
    assert problem in refused(document)


def test_huge_and_deep_documents() -> None:
    assert "larger than" in refused("a: " + "x" * 1_000_001)
    assert "nested deeper" in refused("a: " + "[" * 100 + "]" * 100)
    assert "values in the document" in refused("a: [" + "1," * 250_000 + "1]")
    assert "values in the document" in refused('{"a": [' + "1," * 250_000 + "1]}")


def test_operation_count_is_bounded() -> None:
    paths = "".join(
        f"  /p{i}: {{get: {{operationId: op{i}, responses: {{'200': {{description: ok}}}}}}}}\n"
        for i in range(201)
    )
    assert "more than 200 operations" in refused(HEAD + "paths:\n" + paths)

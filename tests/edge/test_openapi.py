"""/docs and /openapi.json describe every route with its request and response schema."""

from __future__ import annotations

from typing import Any

import httpx

PAT = "/api/permission_api/pat"

# (method, path, has a JSON request body)
ROUTES = [
    ("get", "/healthz", False),
    ("post", "/api/passport/register", True),
    ("post", "/api/passport/login", True),
    ("post", "/api/passport/logout", False),
    ("get", "/api/passport/me", False),
    ("post", f"{PAT}/create_personal_access_token_and_permission", True),
    ("post", f"{PAT}/list_personal_access_tokens", True),
    ("get", f"{PAT}/list_personal_access_tokens", False),
    ("post", f"{PAT}/get_personal_access_token_and_permission", True),
    ("get", f"{PAT}/get_personal_access_token_and_permission", False),
    ("post", f"{PAT}/update_personal_access_token_and_permission", True),
    ("post", f"{PAT}/delete_personal_access_token_and_permission", True),
    ("post", "/api/draftbot/create", True),
    ("post", "/api/draftbot/update_display_info", True),
    ("post", "/api/draftbot/publish", True),
    ("post", "/api/draftbot/delete", True),
    ("post", "/v1/bot/create", True),
    ("post", "/v1/bot/update", True),
    ("post", "/v1/bot/publish", True),
    ("get", "/v1/bot/get_online_info", False),
    ("get", "/v1/bots/{bot_id}", False),
    ("get", "/v1/bots", False),
    ("get", "/v1/space/published_bots_list", False),
]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_openapi_lists_every_route_with_schemas(edge_url: str) -> None:
    response = httpx.get(f"{edge_url}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    documented = {(method, path) for path, item in schema["paths"].items() for method in item}
    assert {(m, p) for m, p, _ in ROUTES} <= documented

    for method, path, has_body in ROUTES:
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        ok = resolve(schema, responses["200"]["content"]["application/json"]["schema"])
        assert set(ok["properties"]) == {"code", "msg", "data"}, (method, path)
        assert resolve(schema, ok["properties"]["data"]).get("properties") is not None or (
            path.endswith(("delete_personal_access_token_and_permission", "delete", "logout"))
        ), (method, path)
        if path != "/healthz":
            assert "400" in responses, (method, path)
        if has_body:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            if "anyOf" in body:  # optional body
                body = next(option for option in body["anyOf"] if "$ref" in option)
            assert resolve(schema, body)["properties"], (method, path)

    assert "HTTPValidationError" not in schema["components"]["schemas"]
    create = resolve(schema, {"$ref": "#/components/schemas/CreateBotRequest"})
    assert "name" in create["required"]
    assert {"prompt", "model", "model_info_config", "tools", "space_id"} <= set(
        create["properties"]
    )


def test_docs_page_is_served(edge_url: str) -> None:
    response = httpx.get(f"{edge_url}/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()

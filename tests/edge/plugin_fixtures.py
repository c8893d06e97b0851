"""Real plugins for edge tests that bind them: local plugins need no server."""

from __future__ import annotations

from typing import Any

import httpx

from tests.edge.envelope import data_of


def local_plugin(client: httpx.Client, name: str = "device", *functions: str) -> dict[str, Any]:
    """A local plugin with the named functions (default: get_location, get_battery)."""
    body = {
        "name": name,
        "description": "functions the client runs",
        "type": "local",
        "functions": [
            {
                "name": f,
                "description": f"{f} on the device",
                "parameters": {"type": "object", "properties": {"precision": {"type": "string"}}},
            }
            for f in (functions or ("get_location", "get_battery"))
        ],
    }
    plugin: dict[str, Any] = data_of(client.post("/v1/plugins", json=body))
    return plugin

"""What one round of the agent loop costs: latency and runner CPU per tool round.

    .venv/bin/python benchmarks/tool_round.py              # 40 chats per scenario
    .venv/bin/python benchmarks/tool_round.py --chats 100

It starts its own system on loopback ports (NATS with JetStream, the registry on SQLite, one
edge, one runner, the mock model) and makes the bots' tools through /v1/plugins (the
registry's Plugins service resolves them for the runner). Two kinds of round:

- client-side (`local` plugin): model call -> function_call stored and published -> pause in
  requires_action -> `submit_tool_outputs` -> queued again -> resumed by the runner from the
  registry -> next model call;
- server-side (`openapi` plugin): model call -> function_call stored and published -> the
  runner calls the operation over HTTP (outbound safety checks included) -> tool_response
  stored and published -> next model call. The API is a local HTTP server this benchmark
  starts on 127.0.0.1 (the runner is allowed 127.0.0.1/32, as in the tests); it answers at
  once, and the benchmark checks it got exactly one request per round;
- server-side (`mcp` plugin): the same over a streamable-HTTP MCP server from the `mcp` SDK,
  served on 127.0.0.1 by this benchmark (one tool that counts its calls). A run keeps one
  session for all its rounds, so the handshake is paid once per chat.

The mock answers at once, so the figures are the system's own cost. Scenarios: chats whose
model asks for 0, 1 and 3 rounds before it answers, for each kind; chats run one after another
(latency, not throughput).

Prints a markdown table; stops with an error if a chat does not take its rounds of its kind
or does not complete, and asserts nothing about the figures. The work directory (logs) is kept
only on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer

from cozeplus.embedded_nats import EmbeddedNats
from cozeplus.rpc.v1 import registry_pb2 as pb
from cozeplus.rpc.v1.registry_pb2_grpc import AccountsStub
from cozeplus.service_auth import SERVICE_TOKEN_ENV, generate_token, service_channel
from services.cli.system import (
    ServiceProcess,
    edge_process,
    free_port,
    http_ok,
    registry_process,
    runner_process,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
ROUNDS = (0, 1, 3)
KINDS = ("local", "openapi", "mcp")
LOOPBACK = "127.0.0.1/32"


def location_openapi(server_url: str) -> str:
    return json.dumps(
        {
            "openapi": "3.1.0",
            "info": {"title": "Location", "version": "1"},
            "servers": [{"url": server_url}],
            "paths": {
                "/location": {
                    "get": {
                        "operationId": "get_location",
                        "parameters": [{"name": "p", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
        }
    )


class LocationApi:
    """The server-side tool: a real HTTP API on loopback that counts the calls it answers."""

    def __init__(self) -> None:
        self.calls = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm on, the body
            # waits for the client's (delayed, 40 ms) ACK on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                api.calls += 1
                body = b'{"city": "Paris"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no line per request on stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocationApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class LocationMcp:
    """The same tool on a real MCP server (the `mcp` SDK's, streamable HTTP), in a thread."""

    def __init__(self) -> None:
        self.calls = 0
        server = MCPServer("bench-location")

        @server.tool()
        def get_location(p: str = "city") -> str:
            """Where the user is."""
            self.calls += 1
            return "Paris"

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/mcp"
        config = uvicorn.Config(
            server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LocationMcp:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the MCP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def cpu_ms(process: ServiceProcess) -> float:
    assert process.process is not None
    fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def _data(reply: httpx.Response) -> dict[str, Any]:
    if reply.status_code != 200:
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text}")
    data: dict[str, Any] = reply.json()["data"]
    return data


def run_chat(http: httpx.Client, bot_id: str) -> int:
    """One chat to its end, submitting outputs while it pauses; returns the rounds it took."""
    reply = http.post(
        "/v3/chat",
        json={
            "bot_id": bot_id,
            "user_id": "bench",
            "stream": False,
            "additional_messages": [{"role": "user", "content": "where?", "content_type": "text"}],
        },
    )
    chat = _data(reply)
    rounds = 0
    while chat["status"] == "requires_action":
        rounds += 1
        calls = chat["required_action"]["submit_tool_outputs"]["tool_calls"]
        reply = http.post(
            "/v3/chat/submit_tool_outputs",
            params={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
            json={
                "tool_outputs": [{"tool_call_id": c["id"], "output": "Paris"} for c in calls],
                "stream": False,
            },
        )
        chat = _data(reply)
    if chat["status"] != "completed":
        raise RuntimeError(f"chat ended {chat['status']}: {chat['last_error']}")
    return rounds


def print_table(results: dict[tuple[str, int], tuple[list[float], float]], chats: int) -> None:
    columns = [(k, r) for k in KINDS for r in ROUNDS]
    print(f"| tool rounds per chat | {' | '.join(f'{k} {r}' for k, r in columns)} |")
    print(f"|---|{'---|' * len(columns)}")

    def median(column: tuple[str, int]) -> float:
        return statistics.median(results[column][0])

    rows = [
        ("chat latency, median (ms)", [median(c) for c in columns]),
        (
            "chat latency, p95 (ms)",
            [statistics.quantiles(results[c][0], n=20)[-1] for c in columns],
        ),
        ("runner CPU per chat (ms)", [results[c][1] for c in columns]),
        (
            "added latency per round, median (ms)",
            [(median((k, r)) - median((k, 0))) / r if r else 0.0 for k, r in columns],
        ),
        (
            "added runner CPU per round (ms)",
            [(results[k, r][1] - results[k, 0][1]) / r if r else 0.0 for k, r in columns],
        ),
    ]
    for name, values in rows:
        print(f"| {name} | {' | '.join(f'{v:.1f}' for v in values)} |")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\n{chats} chats per scenario, one at a time, on {os.cpu_count()} CPUs")
    # Other work on the machine shows here; with a high load, the latencies are loaded ones.
    print(f"load average at the end (1, 5, 15 min): {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=40, help="chats per scenario")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cozeplus-tool-round-"))
    logs = root / "logs"
    services: list[ServiceProcess] = []

    def start(service: ServiceProcess) -> ServiceProcess:
        service.start()
        services.append(service)
        service.wait_ready()
        return service

    # The registry's service credential, for every process started here and our channel.
    os.environ.setdefault(SERVICE_TOKEN_ENV, generate_token())
    mock_port = free_port()
    models = root / "models.toml"
    models.write_text(
        f'[models.mock]\nprovider = "openai"\nbase_url = "http://127.0.0.1:{mock_port}/v1"\n'
        'model = "mock"\n'
    )
    with EmbeddedNats(root / "nats") as nats:
        try:
            mock = f"http://127.0.0.1:{mock_port}"
            start(
                ServiceProcess(
                    "mock-llm",
                    "services.mock_llm",
                    {},
                    logs / "mock-llm.log",
                    http_ok(f"{mock}/healthz"),
                    args=["--port", str(mock_port), "--ttft-ms", "0", "--inter-token-ms", "0"],
                )
            )
            registry = start(
                registry_process(
                    data_dir=root / "registry",
                    port=free_port(),
                    nats_url=nats.url,
                    log_dir=logs,
                    extra_env={
                        "COZEPLUS_REGISTRY_MODELS_FILE": str(models),
                        "COZEPLUS_REGISTRY_PLUGIN_ALLOWED_NETWORKS": LOOPBACK,
                    },
                )
            )
            registry_addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
            edge = start(
                edge_process(
                    port=free_port(),
                    registry_addr=registry_addr,
                    nats_url=nats.url,
                    log_dir=logs,
                    # Every chat and submit counts against one account's chat rate limit.
                    extra_env={"COZEPLUS_EDGE_RATE_LIMIT_ENABLED": "false"},
                )
            )
            runner = start(
                runner_process(
                    health_port=free_port(),
                    registry_addr=registry_addr,
                    nats_url=nats.url,
                    log_dir=logs,
                    extra_env={
                        "COZEPLUS_RUNNER_MODELS_FILE": str(models),
                        # The benchmark's plugin API listens on loopback, refused by default.
                        "COZEPLUS_RUNNER_PLUGIN_ALLOWED_NETWORKS": LOOPBACK,
                    },
                )
            )
            with service_channel(registry_addr) as channel:
                accounts = AccountsStub(channel)
                user = accounts.CreateUser(
                    pb.CreateUserRequest(username="bench", password=secrets.token_urlsafe(12))
                )
                token = accounts.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="b"))
            edge_url = f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
            headers = {"Authorization": f"Bearer {token.token}"}
            results: dict[tuple[str, int], tuple[list[float], float]] = {}
            with (
                httpx.Client(base_url=edge_url, headers=headers, timeout=60) as http,
                LocationApi() as location_api,
                LocationMcp() as location_mcp,
            ):
                local_plugin = {
                    "name": "device",
                    "type": "local",
                    "functions": [{"name": "get_location", "parameters": {"type": "object"}}],
                }
                openapi_plugin = {
                    "name": "location",
                    "type": "openapi",
                    "openapi": location_openapi(location_api.url),
                }
                mcp_plugin = {"name": "location-mcp", "type": "mcp", "url": location_mcp.url}
                plugins = {"local": local_plugin, "openapi": openapi_plugin, "mcp": mcp_plugin}
                for kind, rounds in [(k, r) for k in KINDS for r in ROUNDS]:
                    key = f"[bench-{kind}-{rounds}]"
                    script = [
                        {"tool_calls": [{"name": "get_location", "arguments": {"p": "city"}}]}
                    ] * rounds + [{"reply": "You are in {tool_output}."}]
                    scripted = httpx.post(
                        f"{mock}/mock/scripts", json={"key": key, "rounds": script}
                    )
                    scripted.raise_for_status()
                    made = http.post("/v1/plugins", json=plugins[kind])
                    plugin = _data(made)
                    created = http.post(
                        "/api/draftbot/create",
                        json={
                            "name": f"bench {kind} {rounds}",
                            "prompt": f"bench {key}",
                            "model": "mock",
                            "tools": [{"type": "plugin", "plugin_id": plugin["plugin_id"]}],
                            "max_tool_rounds": max(rounds, 1),
                        },
                    ).json()["data"]
                    bot_id = str(created["bot_id"])
                    http.post("/api/draftbot/publish", json={"bot_id": int(bot_id)})
                    for _ in range(3):  # warm-up
                        run_chat(http, bot_id)
                    latencies: list[float] = []
                    cpu_before = cpu_ms(runner)
                    for _ in range(args.chats):
                        calls_before = location_api.calls + location_mcp.calls
                        began = time.perf_counter()
                        paused = run_chat(http, bot_id)
                        latencies.append((time.perf_counter() - began) * 1000)
                        # Each scenario must really take its rounds, of its own kind.
                        served = location_api.calls + location_mcp.calls - calls_before
                        expected = (rounds, 0) if kind == "local" else (0, rounds)
                        if (paused, served) != expected:
                            raise RuntimeError(
                                f"{kind} chat took {paused} client / {served} server rounds, "
                                f"not {rounds}"
                            )
                    results[kind, rounds] = (
                        latencies,
                        (cpu_ms(runner) - cpu_before) / args.chats,
                    )
                    print(f"{kind}, {rounds} rounds: done", file=sys.stderr)
        finally:
            for service in reversed(services):
                service.stop()
    print_table(results, args.chats)
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

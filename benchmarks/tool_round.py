"""What one round of the agent loop costs: latency and runner CPU per tool round.

    .venv/bin/python benchmarks/tool_round.py              # 40 chats per scenario
    .venv/bin/python benchmarks/tool_round.py --chats 100

It starts its own system on loopback ports (NATS with JetStream, the registry on SQLite, one
edge, one runner, the mock model), the bot's tool a local plugin made through /v1/plugins
(the registry's Plugins service resolves it for the runner). The rounds are
client-side (`local`) function calls: each round is model call -> function_call stored and
published -> pause in requires_action -> `submit_tool_outputs` -> queued again -> resumed by
the runner from the registry -> next model call. The mock answers at once, so the figures are
the system's own cost. Scenarios: chats whose model asks for 0, 1 and 3 rounds before it
answers; chats run one after another (latency, not throughput). A server-side round (OpenAPI,
MCP) saves the pause, the submit and the re-queue but adds the tool's own call.

Prints a markdown table; asserts nothing. The work directory (logs) is kept only on errors.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

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


def cpu_ms(process: ServiceProcess) -> float:
    assert process.process is not None
    fields = Path(f"/proc/{process.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def _chat(reply: httpx.Response) -> dict[str, Any]:
    if reply.status_code != 200:
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text}")
    chat: dict[str, Any] = reply.json()["data"]
    return chat


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
    chat = _chat(reply)
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
        chat = _chat(reply)
    if chat["status"] != "completed":
        raise RuntimeError(f"chat ended {chat['status']}: {chat['last_error']}")
    return rounds


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
                    extra_env={"COZEPLUS_REGISTRY_MODELS_FILE": str(models)},
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
                    extra_env={"COZEPLUS_RUNNER_MODELS_FILE": str(models)},
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
            results: dict[int, tuple[list[float], float]] = {}
            with httpx.Client(base_url=edge_url, headers=headers, timeout=60) as http:
                for rounds in ROUNDS:
                    key = f"[bench-{rounds}]"
                    script = [
                        {"tool_calls": [{"name": "get_location", "arguments": {"p": "city"}}]}
                    ] * rounds + [{"reply": "You are in {tool_output}."}]
                    httpx.post(f"{mock}/mock/scripts", json={"key": key, "rounds": script})
                    plugin = http.post(
                        "/v1/plugins",
                        json={
                            "name": "device",
                            "type": "local",
                            "functions": [
                                {"name": "get_location", "parameters": {"type": "object"}}
                            ],
                        },
                    ).json()["data"]
                    created = http.post(
                        "/api/draftbot/create",
                        json={
                            "name": f"bench {rounds}",
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
                        began = time.perf_counter()
                        assert run_chat(http, bot_id) == rounds
                        latencies.append((time.perf_counter() - began) * 1000)
                    results[rounds] = (latencies, (cpu_ms(runner) - cpu_before) / args.chats)
                    print(f"{rounds} rounds: done", file=sys.stderr)
        finally:
            for service in reversed(services):
                service.stop()
    base = statistics.median(results[0][0])
    base_cpu = results[0][1]
    print(f"| tool rounds per chat | {' | '.join(str(r) for r in ROUNDS)} |")
    print(f"|---|{'---|' * len(ROUNDS)}")
    rows = [
        ("chat latency, median (ms)", [statistics.median(results[r][0]) for r in ROUNDS]),
        (
            "chat latency, p95 (ms)",
            [statistics.quantiles(results[r][0], n=20)[-1] for r in ROUNDS],
        ),
        ("runner CPU per chat (ms)", [results[r][1] for r in ROUNDS]),
        (
            "added latency per round, median (ms)",
            [(statistics.median(results[r][0]) - base) / r if r else 0.0 for r in ROUNDS],
        ),
        (
            "added runner CPU per round (ms)",
            [(results[r][1] - base_cpu) / r if r else 0.0 for r in ROUNDS],
        ),
    ]
    for name, values in rows:
        print(f"| {name} | {' | '.join(f'{v:.1f}' for v in values)} |")
    print(f"\n{args.chats} chats per scenario, one at a time, on {os.cpu_count()} CPUs")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

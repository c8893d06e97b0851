"""gRPC streaming against SSE, same load: the public gRPC API's StreamChat and POST /v3/chat
with stream=true, on one edge, for the same chats of the same mock model.

    .venv/bin/python benchmarks/grpc_vs_sse.py                 # about a minute
    .venv/bin/python benchmarks/grpc_vs_sse.py --chats 300 --concurrency 30

It starts its own system with chat_load.py's helpers (NATS, registry, mock model, one edge
serving HTTP and gRPC, one runner), warms both transports up, then runs the same scenario
through SSE and through gRPC, one after the other, and prints per transport: time to the
first token (first conversation.message.delta) and end-to-end, as the client sees them, and
CPU per chat of the edge (the process where the two paths differ: SSE forwards payload
bytes, gRPC parses each payload into its typed message) and of the client. Both clients are
asyncio (httpx, grpc.aio) in this process; client CPU is this process's CPU during the
phase. Nothing is asserted: this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from chat_load import (  # type: ignore[import-not-found]
    Scenario,
    System,
    Target,
    one_chat,
    percentile,
    proc_cpu_s,
)

from cozeplus.api.v1 import chat_pb2, chat_pb2_grpc, types_pb2
from services.cli.system import edge_process, free_port, runner_process

DELTA = "conversation.message.delta"


@dataclass
class Phase:
    transport: str
    first_token_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: int = 0
    edge_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    wall_s: float = 0.0


async def grpc_chat(
    stub: chat_pb2_grpc.ChatServiceStub, target: Target, scenario: Scenario, phase: Phase
) -> None:
    request = chat_pb2.ChatRequest(
        bot_id=int(target.bot_id),
        user_id="bench-user",
        additional_messages=[types_pb2.InputMessage(role="user", content=scenario.query)],
    )
    metadata = (("authorization", target.headers["Authorization"]),)
    started = time.perf_counter()
    first = 0.0
    answer: list[str] = []
    names: list[str] = []
    try:
        async for event in stub.StreamChat(request, metadata=metadata, timeout=60):
            names.append(event.event)
            if event.event == DELTA:
                if not first:
                    first = time.perf_counter() - started
                answer.append(event.message.content)
    except grpc.RpcError:
        phase.errors += 1
        return
    if names[-3:] != ["conversation.chat.completed", "conversation.stream.done", "done"] or (
        "".join(answer) != scenario.query
    ):
        phase.errors += 1
        return
    phase.first_token_s.append(first)
    phase.total_s.append(time.perf_counter() - started)


async def sse_chat(
    client: httpx.AsyncClient, target: Target, scenario: Scenario, phase: Phase
) -> None:
    result = await one_chat(client, target, scenario, "bench-user")
    if result.error:
        phase.errors += 1
        return
    phase.first_token_s.append(result.first_delta_s)
    phase.total_s.append(result.total_s)


async def run_phase(
    transport: str,
    edge_url: str,
    grpc_addr: str,
    targets: list[Target],
    scenario: Scenario,
    edge_pid: int,
    chats: int,
) -> Phase:
    phase = Phase(transport)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(chats):
        queue.put_nowait(n)
    async with (
        httpx.AsyncClient(base_url=edge_url, timeout=60) as client,
        grpc.aio.insecure_channel(grpc_addr) as channel,
    ):
        stub = chat_pb2_grpc.ChatServiceStub(channel)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                target = targets[n % len(targets)]
                if transport == "gRPC":
                    await grpc_chat(stub, target, scenario, phase)
                else:
                    await sse_chat(client, target, scenario, phase)

        edge_before, client_before = proc_cpu_s(edge_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(scenario.concurrency)))
        phase.wall_s = time.perf_counter() - started
        phase.edge_cpu_s = proc_cpu_s(edge_pid) - edge_before
        phase.client_cpu_s = time.process_time() - client_before
    return phase


def merged(phases: list[Phase], transport: str) -> Phase:
    out = Phase(transport)
    for p in phases:
        if p.transport == transport:
            out.first_token_s += p.first_token_s
            out.total_s += p.total_s
            out.errors += p.errors
            out.edge_cpu_s += p.edge_cpu_s
            out.client_cpu_s += p.client_cpu_s
            out.wall_s += p.wall_s
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(phases: list[Phase], scenario: Scenario) -> str:
    rows = [
        "| transport | chats ok / errors | chats/s | first token p50 / p99 (ms) | "
        "end-to-end p50 / p99 (ms) | edge CPU per chat (ms) | client CPU per chat (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        done = max(1, len(p.total_s))
        rows.append(
            f"| {p.transport} | {len(p.total_s)} / {p.errors} | {len(p.total_s) / p.wall_s:.1f} | "
            f"{ms(percentile(p.first_token_s, 50))} / {ms(percentile(p.first_token_s, 99))} | "
            f"{ms(percentile(p.total_s, 50))} / {ms(percentile(p.total_s, 99))} | "
            f"{ms(p.edge_cpu_s / done)} | {ms(p.client_cpu_s / done)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=400, help="per transport")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--ttft-ms", type=int, default=50)
    parser.add_argument("--inter-token-ms", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args(argv)
    scenario = Scenario(
        "grpc-vs-sse",
        args.chats,
        args.concurrency,
        1,
        args.ttft_ms,
        args.inter_token_ms,
        args.tokens,
    )
    with tempfile.TemporaryDirectory(prefix="cozeplus-grpc-bench-") as tmp:
        system = System(Path(tmp), [scenario])
        try:
            print("starting the system ...", file=sys.stderr)
            system.start_shared()
            grpc_port = free_port()
            edge = edge_process(
                port=free_port(),
                registry_addr=system.registry_addr,
                nats_url=system.nats.url,
                log_dir=system.log_dir,
                name="edge",
                extra_env={"COZEPLUS_EDGE_GRPC_PORT": str(grpc_port)},
            )
            runner = runner_process(
                health_port=free_port(),
                registry_addr=system.registry_addr,
                nats_url=system.nats.url,
                log_dir=system.log_dir,
                extra_env={"COZEPLUS_RUNNER_MODELS_FILE": str(system.models_file)},
            )
            for service in (edge, runner):
                system.per_scenario.append(service)
                service.start()
            for service in (edge, runner):
                service.wait_ready()
            assert edge.process is not None
            edge_pid = edge.process.pid
            edge_url = f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
            grpc_addr = f"127.0.0.1:{grpc_port}"
            # At most 50 chats per account (its chat limit is 60 a minute).
            accounts = math.ceil((args.chats * 2 + 40) / 50)
            targets = system.make_targets(edge_url, scenario, accounts)
            warm = Scenario("warm-up", 20, 10, 1, 0, 0, args.tokens)
            phases = []
            for transport in ("SSE", "gRPC"):
                print(f"warming up {transport} ...", file=sys.stderr)
                asyncio.run(run_phase(transport, edge_url, grpc_addr, targets, warm, edge_pid, 20))
            # A B B A, half the chats each: drift of a shared machine's load hits both alike.
            for transport in ("SSE", "gRPC", "gRPC", "SSE"):
                half = args.chats // 2
                print(f"{transport}: {half} chats, {args.concurrency} at once", file=sys.stderr)
                phases.append(
                    asyncio.run(
                        run_phase(
                            transport,
                            edge_url,
                            grpc_addr,
                            targets,
                            scenario,
                            edge.process.pid,
                            half,
                        )
                    )
                )
        finally:
            system.close()
    print(
        f"{args.chats} streaming chats per transport, {args.concurrency} at once, one edge and "
        f"one runner; mock model: {args.ttft_ms} ms to first token, {args.tokens} tokens "
        f"{args.inter_token_ms} ms apart\n"
    )
    print(table([merged(phases, "SSE"), merged(phases, "gRPC")], scenario))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side by side: the same load against the mock model directly and through cozeplus.

    .venv/bin/python benchmarks/side_by_side.py              # quick: about 160 s
    .venv/bin/python benchmarks/side_by_side.py --big        # 2,000 open 30-second streams
    .venv/bin/python benchmarks/side_by_side.py --streams 1000 --stream-seconds 30

One run starts NATS, the registry (SQLite), the mock OpenAI-compatible model, one edge and
one runner (chat_load.py's helpers, every process on loopback), then measures each item of
issue 14 twice: once with a client calling the mock's `/v1/chat/completions` itself (what a
user gets with no gateway) and once through `POST /v3/chat`, and prints both with the ratio
or the difference. "Gateway" CPU is edge + runner + registry + NATS; the mock and the client
are reported apart.

The per-account chat rate limit is raised for the benchmark's edge (as with rate limits
off): it measures the pipeline, not the limiter. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_load import (
    SUCCESS_TAIL,
    Scenario,
    System,
    Target,
    ignoring_signals,
    machine_busy_s,
    machine_description,
    nproc,
    percentile,
    proc_cpu_s,
    proc_status_kib,
    terminate_as_interrupt,
)

from services.cli.system import edge_process, free_port, runner_process
from services.mock_llm.app import split_tokens

DELTA = b"conversation.message.delta"
GATEWAY = ("edge", "runner", "registry", "nats")


# --------------------------------------------------------------------------- one chat


@dataclass
class Result:
    error: str = ""
    total_s: float = 0.0
    first_token_s: float = math.nan
    gaps_s: list[float] = field(default_factory=list)


def _token_gaps(result: Result, text: str, now: float, last: float, started: float) -> float:
    """Record the gaps before each of the text's tokens; returns the new `last`.

    Gaps are per token, not per event, on both sides: a gateway that passes two of the
    model's tokens on as one delta shows the client one gap and a zero, as the model's own
    stream does when one read brings two chunks.
    """
    if last:
        result.gaps_s.append(now - last)
    else:
        result.first_token_s = now - started
    result.gaps_s.extend([0.0] * (len(split_tokens(text)) - 1))
    return now


async def direct_chat(client: aiohttp.ClientSession, model: str, query: str) -> Result:
    """One streamed completion straight from the mock, read like a gateway would."""
    result = Result()
    body = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": query}],
    }
    answer: list[str] = []
    last = 0.0
    started = time.perf_counter()
    try:
        async with client.post("/v1/chat/completions", json=body) as resp:
            if resp.status != 200:
                await resp.read()
                result.error = f"HTTP {resp.status}"
                return result
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                now = time.perf_counter()
                for line in lines:
                    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                        continue
                    data = orjson.loads(line[6:])
                    for choice in data.get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            answer.append(text)
                            last = _token_gaps(result, text, now, last, started)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.error = type(exc).__name__
    finally:
        result.total_s = time.perf_counter() - started
    if not result.error and "".join(answer) != query:
        result.error = "answer differs from the query"
    return result


async def cozeplus_chat(
    client: aiohttp.ClientSession,
    target: Target,
    query: str,
    user_id: str,
    conversation_id: str | None = None,
) -> Result:
    """One streamed `/v3/chat`, checked like chat_load.one_chat does."""
    result = Result()
    body = {"bot_id": target.bot_id, "user_id": user_id, "stream": True, "query": query}
    params = {"conversation_id": conversation_id} if conversation_id else None
    names: list[bytes] = []
    answer: list[str] = []
    last = 0.0
    started = time.perf_counter()
    try:
        async with client.post(
            "/v3/chat", json=body, headers=target.headers, params=params
        ) as resp:
            if resp.status != 200:
                text = await resp.text()
                result.error = f"HTTP {resp.status}: {text[:100]}"
                return result
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                now = time.perf_counter()
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    name, _, data = block.partition(b"\ndata: ")
                    name = name.removeprefix(b"event: ")
                    names.append(name)
                    if name == DELTA:
                        text = orjson.loads(data)["content"]
                        answer.append(text)
                        last = _token_gaps(result, text, now, last, started)
                    elif name == b"conversation.chat.failed" and not result.error:
                        error = orjson.loads(data).get("last_error") or {}
                        result.error = f"chat.failed {error.get('code')}: {error.get('msg')}"[:120]
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        result.error = type(exc).__name__
    finally:
        result.total_s = time.perf_counter() - started
    if result.error:
        return result
    if [n.decode() for n in names[-3:]] != SUCCESS_TAIL:
        result.error = "stream ended with " + " → ".join(n.decode() for n in names[-3:])
    elif "".join(answer) != query:
        result.error = "answer differs from the query"
    return result


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    results: list[Result]
    wall_s: float
    cpu_s: dict[str, float]
    machine_busy_s: float
    rss_peak_kib: dict[str, int] = field(default_factory=dict)
    rss_before_kib: dict[str, int] = field(default_factory=dict)
    # The gaps between the model's chunks as the mock sent them during this load (gap steps).
    model_gaps_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if not r.error]

    def errors(self) -> str:
        counts = Counter(r.error for r in self.results if r.error)
        if not counts:
            return "0"
        return (
            f"{sum(counts.values())} ("
            + "; ".join(f"{n}× {e}" for e, n in counts.most_common(3))
            + ")"
        )

    def p(self, what: str, q: float) -> float:
        if what == "gap":
            return percentile([g for r in self.ok for g in r.gaps_s], q)
        if what == "model_gap":
            return percentile(self.model_gaps_ms, q) / 1000
        return percentile([getattr(r, what) for r in self.ok], q)

    def gateway_cpu_s(self) -> float:
        return sum(self.cpu_s.get(name, 0.0) for name in GATEWAY)

    def machine_share(self) -> float:
        """How busy the whole machine was (every process, every core) during the load."""
        return self.machine_busy_s / max(1e-9, self.wall_s * nproc())

    def chats_per_s(self) -> float:
        return len(self.results) / self.wall_s if self.wall_s else math.nan


def _client(base_url: str, concurrency: int) -> aiohttp.ClientSession:
    """The load's HTTP client. aiohttp rather than httpx: with httpx this one process was
    the first thing to saturate (and its pool the first to queue) at 50 streams in flight,
    in the direct column too, which hid the pipeline's own tail."""
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=concurrency, force_close=False),
        timeout=aiohttp.ClientTimeout(total=120.0, connect=30.0),
    )


def _merged(loads: Sequence[Load]) -> Load:
    """Several loads of one kind as one (CPU and wall time summed)."""
    cpu: Counter[str] = Counter()
    for x in loads:
        cpu.update(x.cpu_s)
    return Load(
        results=[r for x in loads for r in x.results],
        wall_s=sum(x.wall_s for x in loads),
        cpu_s=dict(cpu),
        machine_busy_s=sum(x.machine_busy_s for x in loads),
        model_gaps_ms=[g for x in loads for g in x.model_gaps_ms],
    )


async def load(
    chat: Callable[[int], Awaitable[Result]],
    count: int,
    concurrency: int,
    pids: dict[str, int],
    sample_rss: Sequence[str] = (),
) -> Load:
    """`count` chats, `concurrency` at once; CPU of every pid over exactly this load."""
    results: list[Result] = []
    numbers = iter(range(count))
    peak: dict[str, int] = {}
    before_rss = {name: proc_status_kib(pids[name], "VmRSS") for name in sample_rss}

    async def worker() -> None:
        for i in numbers:
            results.append(await chat(i))

    async def sampler() -> None:
        while True:
            for name in sample_rss:
                peak[name] = max(peak.get(name, 0), proc_status_kib(pids[name], "VmRSS"))
            await asyncio.sleep(0.25)

    cpu_before = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    busy_before = machine_busy_s()
    started = time.perf_counter()
    sampling = asyncio.create_task(sampler()) if sample_rss else None
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    if sampling is not None:
        sampling.cancel()
    cpu = {name: proc_cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
    return Load(results, wall, cpu, machine_busy_s() - busy_before, peak, before_rss)


# --------------------------------------------------------------------------- the run


@dataclass
class Plan:
    unloaded_chats: int
    loaded_chats: int
    long_chats: int
    gap_chats: int
    gap_long_chats: int
    gap_light_chats: int
    history_chats: int
    history_messages: int
    streams: int
    stream_seconds: int
    runner_concurrency: int | None
    # Chats in flight in the gap steps: the 50, or fewer to see the tail without
    # saturating the machine.
    gap_concurrency: int = 50


QUICK = Plan(200, 600, 100, 300, 100, 100, 40, 1000, 200, 10, None)
BIG = Plan(300, 3000, 400, 1500, 300, 300, 100, 1000, 2000, 30, None)

# The shorter conversation of the history step: already past the bot's 20-message window.
SHORT_HISTORY = 100

# Mock behaviours: (ttft ms, inter-token ms).
UNLOADED = (10, 10)  # a fast real model: unloaded first-token and gap fidelity
INSTANT = (0, 0)  # all time is the pipeline's own
GAPS = (0, 10)  # the "model sends every 10 ms"
# The gap steps: name, answer tokens, chats in flight (None: the plan's, 50 unless changed),
# key in --json. `gaps10` shows the tail with the machine far from saturated.
GAP_STEPS: tuple[tuple[str, int, int | None, str], ...] = (
    ("gaps50", 20, None, "gap_p99_ms"),
    ("gapslong50", 200, None, "gap_long_p99_ms"),
    ("gaps10", 20, 10, "gap_10_p99_ms"),
)


def model_scenario(name: str, behaviour: tuple[int, int], tokens: int) -> Scenario:
    return Scenario(name, 0, 0, 1, behaviour[0], behaviour[1], tokens)


class Bench:
    def __init__(self, work_dir: Path, plan: Plan) -> None:
        self.plan = plan
        self.stream_itl_ms = 500 if plan.stream_seconds <= 10 else 1000
        self.stream_tokens = plan.stream_seconds * 1000 // self.stream_itl_ms + 1
        self.models = {
            "unloaded": model_scenario("unloaded", UNLOADED, 20),
            "instant": model_scenario("instant", INSTANT, 20),
            "long": model_scenario("long", INSTANT, 200),
            "gaps": model_scenario("gaps", GAPS, 20),
            "gapslong": model_scenario("gapslong", GAPS, 200),
            "streams": model_scenario("streams", (0, self.stream_itl_ms), self.stream_tokens),
        }
        self.system = System(work_dir, list(self.models.values()))
        self.mock_url = ""
        self.edge_url = ""
        self.pids: dict[str, int] = {}
        self.targets: dict[str, Target] = {}
        self.only: set[str] = set()

    def start(self) -> None:
        system = self.system
        system.start_shared()
        mock = system.process("mock-llm")
        self.mock_url = f"http://127.0.0.1:{mock.args[1]}"
        edge = edge_process(
            port=free_port(),
            registry_addr=system.registry_addr,
            nats_url=system.nats.url,
            log_dir=system.log_dir,
            name="edge",
            extra_env={
                "COZEPLUS_EDGE_RATE_LIMIT_CHAT": "100000000",
                "COZEPLUS_EDGE_RATE_LIMIT_OTHER": "100000000",
                "COZEPLUS_EDGE_MAX_CHAT_MESSAGES": str(self.plan.history_messages + 1),
                "COZEPLUS_EDGE_MAX_BODY_BYTES": str(16 * 1024 * 1024),
            },
        )
        runner_env = {
            "COZEPLUS_RUNNER_MODELS_FILE": str(system.models_file),
            "COZEPLUS_RUNNER_SHUTDOWN_GRACE_S": "3",
        }
        if self.plan.runner_concurrency:
            runner_env["COZEPLUS_RUNNER_CONCURRENCY"] = str(self.plan.runner_concurrency)
        runner = runner_process(
            health_port=free_port(),
            registry_addr=system.registry_addr,
            nats_url=system.nats.url,
            log_dir=system.log_dir,
            name="runner",
            extra_env=runner_env,
        )
        for service in (edge, runner):
            system.per_scenario.append(service)
            service.start()
        for service in (edge, runner):
            service.wait_ready()
        self.edge_url = f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
        self.pids = {
            **system.shared_pids(),
            "edge": edge.process.pid if edge.process else 0,
            "runner": runner.process.pid if runner.process else 0,
            "client": os.getpid(),
        }
        for key, scenario in self.models.items():
            self.targets[key] = system.make_targets(self.edge_url, scenario, 1)[0]

    def direct(
        self, key: str
    ) -> Callable[[aiohttp.ClientSession], Callable[[int], Awaitable[Result]]]:
        scenario = self.models[key]
        return lambda client: (
            lambda _i: direct_chat(client, scenario.provider_model, scenario.query)
        )

    def cozeplus(
        self, key: str
    ) -> Callable[[aiohttp.ClientSession], Callable[[int], Awaitable[Result]]]:
        scenario, target = self.models[key], self.targets[key]
        return lambda client: lambda i: cozeplus_chat(client, target, scenario.query, f"u{i % 16}")

    async def pair(
        self,
        key: str,
        count: int,
        concurrency: int,
        warmup: int,
        sample_rss: Sequence[str] = (),
        slices: int = 1,
        model_gaps: bool = False,
    ) -> tuple[Load, Load]:
        """The load straight to the mock, then through cozeplus. With `slices` > 1 the two
        take turns, a slice of the chats each, so both meet the machine in the same state:
        this VM's speed drifts by a third over minutes, which a difference of a few
        milliseconds (first token, gaps) would otherwise measure. With `model_gaps` each
        load also keeps the gaps the mock itself sent its chunks with meanwhile: sharing the
        cores with the load it serves, the model is late too."""
        sides = ((self.direct(key), self.mock_url), (self.cozeplus(key), self.edge_url))
        loads: tuple[list[Load], list[Load]] = ([], [])
        async with contextlib.AsyncExitStack() as stack:
            chats = []
            for make, base in sides:
                chat = make(await stack.enter_async_context(_client(base, concurrency)))
                if warmup:
                    await load(chat, warmup, min(concurrency, warmup), self.pids)
                chats.append(chat)
            per_slice = [count // slices + (i < count % slices) for i in range(slices)]
            for size in per_slice:
                for side, chat in enumerate(chats):
                    if model_gaps:
                        await self.model_gaps(clear=True)
                    loaded = await load(chat, size, concurrency, self.pids, sample_rss)
                    if model_gaps:
                        loaded.model_gaps_ms = await self.model_gaps(clear=True)
                    loads[side].append(loaded)
        if slices == 1:
            return loads[0][0], loads[1][0]
        return _merged(loads[0]), _merged(loads[1])

    async def model_gaps(self, *, clear: bool) -> list[float]:
        async with aiohttp.ClientSession() as client:
            url = f"{self.mock_url}/mock/gaps"
            async with client.get(url, params={"clear": str(clear).lower()}) as resp:
                resp.raise_for_status()
                return list((await resp.json())["gaps_ms"])

    async def history(self) -> tuple[Load, Load]:
        """Chats one at a time in a conversation of SHORT_HISTORY messages vs one of
        `history_messages`: both fill the bot's window (10 rounds, 20 messages), so any
        difference is what the conversation's length costs."""
        plan, target, scenario = self.plan, self.targets["instant"], self.models["instant"]
        async with _client(self.edge_url, 1) as client:

            async def conversation(size: int) -> str:
                messages = [
                    {
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": f"message {i} of the history",
                        "content_type": "text",
                    }
                    for i in range(size)
                ]
                async with client.post(
                    "/v1/conversation/create",
                    headers=target.headers,
                    json={"bot_id": target.bot_id, "messages": messages},
                ) as created:
                    body = await created.read()
                if created.status != 200 or orjson.loads(body).get("code"):
                    raise RuntimeError(f"creating a conversation failed: {body[:200]!r}")
                return str(orjson.loads(body)["data"]["id"])

            short_id = await conversation(SHORT_HISTORY)
            long_id = await conversation(plan.history_messages)
            # Interleaved halves, so a drift of the machine over the step hits both alike.
            short_loads, long_loads = [], []
            for _ in range(2):
                for ids, into in ((short_id, short_loads), (long_id, long_loads)):
                    into.append(
                        await load(
                            lambda i, c=ids: cozeplus_chat(client, target, scenario.query, "h", c),
                            plan.history_chats // 2,
                            1,
                            self.pids,
                        )
                    )
        return _merged(short_loads), _merged(long_loads)

    async def run(self) -> dict[str, tuple[Load, Load]]:
        plan = self.plan
        out: dict[str, tuple[Load, Load]] = {}
        steps: list[tuple[str, Callable[[], Awaitable[tuple[Load, Load]]]]] = [
            ("unloaded", lambda: self.pair("unloaded", plan.unloaded_chats, 1, 5, slices=5)),
            ("instant50", lambda: self.pair("instant", plan.loaded_chats, 50, 100)),
            ("long50", lambda: self.pair("long", plan.long_chats, 50, 50)),
            (
                "gaps50",
                lambda: self.pair(
                    "gaps", plan.gap_chats, plan.gap_concurrency, 50, slices=3, model_gaps=True
                ),
            ),
            (
                "gapslong50",
                lambda: self.pair(
                    "gapslong",
                    plan.gap_long_chats,
                    plan.gap_concurrency,
                    50,
                    slices=2,
                    model_gaps=True,
                ),
            ),
            (
                "gaps10",
                lambda: self.pair("gaps", plan.gap_light_chats, 10, 10, slices=2, model_gaps=True),
            ),
            ("history", self.history),
            (
                "streams",
                lambda: self.pair(
                    "streams", plan.streams, plan.streams, 0, sample_rss=("edge", "runner")
                ),
            ),
        ]
        for name, step in steps:
            if self.only and name not in self.only:
                continue
            started = time.monotonic()
            print(f"  {name} ...", file=sys.stderr, end="", flush=True)
            out[name] = await step()
            direct, ours = out[name]
            print(
                f" {time.monotonic() - started:.0f} s; errors direct {direct.errors()}, "
                f"cozeplus {ours.errors()}",
                file=sys.stderr,
            )
        return out


# --------------------------------------------------------------------------- report


def fmt_added(seconds: float) -> str:
    """A difference in ms with its sign: +4.85, −0.35."""
    text = fmt_ms(abs(seconds))
    return text if text == "–" else ("−" if seconds < 0 else "+") + text


def fmt_ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    value = seconds * 1000
    return (
        f"{value:.2f}"
        if abs(value) < 10
        else f"{value:.1f}"
        if abs(value) < 100
        else f"{value:.0f}"
    )


def report(
    out: dict[str, tuple[Load, Load]], plan: Plan, bench: Bench
) -> tuple[str, dict[str, Any]]:
    empty = Load([], 0.0, {}, 0.0)
    ran = set(out)
    out = {
        name: out.get(name, (empty, empty))
        for name in (
            "unloaded",
            "instant50",
            "long50",
            "gaps50",
            "gapslong50",
            "gaps10",
            "history",
            "streams",
        )
    }
    rows: list[tuple[str, str, str, str, str]] = []
    raw: dict[str, Any] = {}

    d, c = out["unloaded"]
    for q in (50, 99):
        added = c.p("first_token_s", q) - d.p("first_token_s", q)
        rows.append(
            (
                f"added time to first token, unloaded, p{q} (ms)",
                fmt_ms(d.p("first_token_s", q)),
                fmt_ms(c.p("first_token_s", q)),
                fmt_added(added),
                "≤ 5" if q == 50 else "≤ 15",
            )
        )
        raw[f"added_ttft_p{q}_ms"] = added * 1000

    d, c = out["instant50"]
    per_chat_ms = c.gateway_cpu_s() / len(c.results) * 1000 if c.results else math.nan
    split = " + ".join(
        f"{name} {c.cpu_s.get(name, 0.0) / max(1, len(c.results)) * 1000:.1f}" for name in GATEWAY
    )
    rows.append(
        (
            "gateway CPU per streamed 20-token chat (ms): " + split,
            "–",
            f"{per_chat_ms:.1f}",
            "",
            "≤ 10",
        )
    )
    raw["cpu_per_chat_ms"] = per_chat_ms
    raw["cpu_per_chat_split_ms"] = {
        name: c.cpu_s.get(name, 0.0) / max(1, len(c.results)) * 1000 for name in GATEWAY
    }
    _, cl_ = out["long50"]
    per_chat_long_ms = cl_.gateway_cpu_s() / len(cl_.results) * 1000 if cl_.results else math.nan
    per_token_us = (per_chat_long_ms - per_chat_ms) / 180 * 1000
    rows.append(
        (
            "gateway CPU per streamed token (µs; 200- vs 20-token chats)",
            "–",
            f"{per_token_us:.0f}",
            "",
            "≤ 30",
        )
    )
    raw["cpu_per_token_us"] = per_token_us
    rows.append(
        (
            "streamed chats/s, 50 in flight (instant model, 20 tokens)",
            f"{d.chats_per_s():.0f}",
            f"{c.chats_per_s():.1f}",
            f"{c.chats_per_s() / d.chats_per_s():.2f}×" if d.chats_per_s() else "",
            "≥ 150",
        )
    )
    raw["chats_per_s"] = {"direct": d.chats_per_s(), "cozeplus": c.chats_per_s()}
    rows.append(
        (
            "end-to-end p50 / p99 at 50 in flight (ms)",
            f"{fmt_ms(d.p('total_s', 50))} / {fmt_ms(d.p('total_s', 99))}",
            f"{fmt_ms(c.p('total_s', 50))} / {fmt_ms(c.p('total_s', 99))}",
            f"p99/p50 {c.p('total_s', 99) / c.p('total_s', 50):.1f}",
            "p99 ≤ 2× p50",
        )
    )
    raw["e2e_50_s"] = {"p50": c.p("total_s", 50), "p99": c.p("total_s", 99)}
    for step, tokens, in_flight, key in GAP_STEPS:
        d, c = out[step]
        rows.append(
            (
                f"inter-token gap p50 / p99, model every {GAPS[1]} ms, {tokens}-token answers, "
                f"{in_flight or plan.gap_concurrency} in flight (ms)",
                f"{fmt_ms(d.p('gap', 50))} / {fmt_ms(d.p('gap', 99))}",
                f"{fmt_ms(c.p('gap', 50))} / {fmt_ms(c.p('gap', 99))}",
                f"{fmt_added(c.p('gap', 99) - d.p('gap', 99))} at p99",
                "p99 within 5 of the model's",
            )
        )
        raw[key] = {
            "direct": d.p("gap", 99) * 1000,
            "cozeplus": c.p("gap", 99) * 1000,
            "machine_busy": {"direct": d.machine_share(), "cozeplus": c.machine_share()},
            "model_direct": d.p("model_gap", 99) * 1000,
            "model_cozeplus": c.p("model_gap", 99) * 1000,
        }
    rows.append(
        (
            "machine busy during the gap steps (in the order above)",
            " / ".join(f"{out[s[0]][0].machine_share() * 100:.0f} %" for s in GAP_STEPS),
            " / ".join(f"{out[s[0]][1].machine_share() * 100:.0f} %" for s in GAP_STEPS),
            "",
            "",
        )
    )
    # The mock shares the cores with the load it serves, so under cozeplus's load the model
    # itself sends late: the gap the client sees is the model's own plus what cozeplus adds.
    rows.append(
        (
            "the model's own gap p99 during the gap steps, as the mock sent its chunks (ms)",
            " / ".join(fmt_ms(out[s[0]][0].p("model_gap", 99)) for s in GAP_STEPS),
            " / ".join(fmt_ms(out[s[0]][1].p("model_gap", 99)) for s in GAP_STEPS),
            "",
            "",
        )
    )
    rows.append(
        (
            "added beyond the model's own gap in the same load, p99 (ms)",
            " / ".join(
                fmt_added(out[s[0]][0].p("gap", 99) - out[s[0]][0].p("model_gap", 99))
                for s in GAP_STEPS
            ),
            " / ".join(
                fmt_added(out[s[0]][1].p("gap", 99) - out[s[0]][1].p("model_gap", 99))
                for s in GAP_STEPS
            ),
            "",
            "",
        )
    )
    # A token every 10 ms: each token is its own read, event and write, so this is the cost
    # of one delta through the pipeline (with a 200th of a chat's start and finish in it).
    d, c = out["gapslong50"]
    tokens = max(1, len(c.results)) * 200
    paced_split = {name: c.cpu_s.get(name, 0.0) / tokens * 1e6 for name in GATEWAY}
    model_side = {name: d.cpu_s.get(name, 0.0) / tokens * 1e6 for name in ("mock-llm", "client")}
    rows.append(
        (
            "gateway CPU per streamed token, model every 10 ms, 200-token answers (µs): "
            + " + ".join(f"{name} {v:.0f}" for name, v in paced_split.items()),
            "mock {mock-llm:.0f}, client {client:.0f}".format(**model_side),
            f"{sum(paced_split.values()):.0f}",
            "",
            "≤ 30",
        )
    )
    raw["cpu_per_paced_token_us"] = {"split": paced_split, "direct": model_side}
    short, long = out["history"]

    def chat_cost(x: Load) -> float:
        return x.gateway_cpu_s() / max(1, len(x.results)) * 1000

    rows.append(
        (
            f"chat in a {plan.history_messages}- vs a {SHORT_HISTORY}-message conversation "
            "(both a full 10-round window): gateway CPU (ms), end-to-end p50 (ms)",
            f"{SHORT_HISTORY}: {chat_cost(short):.1f}, {fmt_ms(short.p('total_s', 50))}",
            f"{plan.history_messages}: {chat_cost(long):.1f}, {fmt_ms(long.p('total_s', 50))}",
            f"{chat_cost(long) / chat_cost(short):.2f}× CPU, "
            f"{long.p('total_s', 50) / short.p('total_s', 50):.2f}× p50"
            if chat_cost(short)
            else "",
            "same",
        )
    )
    raw["history"] = {
        "short_messages": SHORT_HISTORY,
        "long_messages": plan.history_messages,
        "short_cpu_ms": chat_cost(short),
        "long_cpu_ms": chat_cost(long),
        "short_p50_s": short.p("total_s", 50),
        "long_p50_s": long.p("total_s", 50),
    }
    d, c = out["streams"]
    per_stream = {
        name: (c.rss_peak_kib.get(name, 0) - c.rss_before_kib.get(name, 0)) / plan.streams
        for name in ("edge", "runner")
    }
    rows.append(
        (
            f"{plan.streams} concurrent {plan.stream_seconds}-second streams: ok / failed",
            f"{len(d.ok)} / {len(d.results) - len(d.ok)}",
            f"{len(c.ok)} / {len(c.results) - len(c.ok)}",
            c.errors() if len(c.ok) < len(c.results) else "",
            "all ok",
        )
    )
    rows.append(
        (
            "memory per open stream, edge / runner (KiB; peak RSS − before, ÷ streams)",
            "–",
            f"{per_stream['edge']:.0f} / {per_stream['runner']:.0f}",
            "",
            "measured",
        )
    )
    raw["streams"] = {
        "count": plan.streams,
        "seconds": plan.stream_seconds,
        "ok": len(c.ok),
        "errors": c.errors(),
        "direct_ok": len(d.ok),
        "kib_per_stream": per_stream,
        "rss_before_kib": c.rss_before_kib,
        "rss_peak_kib": c.rss_peak_kib,
    }
    busy = []
    for name, (_, c) in out.items():
        if name not in ran:
            continue
        ours = sum(c.cpu_s.values())
        others = max(0.0, c.machine_busy_s - ours) / max(1e-9, c.wall_s * nproc())
        busy.append(f"{name} {others * 100:.0f} %")
    raw["other_programs_busy"] = busy
    raw["cpu_s_by_step"] = {
        name: {
            "direct": out[name][0].cpu_s,
            "cozeplus": out[name][1].cpu_s,
            "wall_s": out[name][1].wall_s,
        }
        for name in sorted(ran)
    }
    lines = [
        "| metric | direct to the mock | through cozeplus | ratio / added | goal (issue 14) |",
        "|---|---|---|---|---|",
        *(f"| {a} | {b} | {c_} | {r} | {g} |" for a, b, c_, r, g in rows),
    ]
    lines.append("")
    lines.append("Other programs' CPU share during each cozeplus load: " + ", ".join(busy) + ".")
    return "\n".join(lines), raw


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--big", action="store_true", help="the issue's sizes: 2,000 × 30 s streams")
    p.add_argument("--streams", type=int, help="concurrent long streams")
    p.add_argument("--stream-seconds", type=int, help="how long each long stream lasts")
    p.add_argument("--loaded-chats", type=int, help="chats at 50 in flight")
    p.add_argument("--unloaded-chats", type=int, help="chats one at a time (first-token time)")
    p.add_argument("--gap-chats", type=int, help="chats of each inter-token gap step")
    p.add_argument("--gap-concurrency", type=int, help="chats in flight in the gap steps (50)")
    p.add_argument("--runner-concurrency", type=int, help="COZEPLUS_RUNNER_CONCURRENCY")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated steps to run (unloaded, instant50, long50, gaps50, gapslong50, "
        "gaps10, "
        "history, "
        "streams); the table then shows only what they measure",
    )
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = BIG if args.big else QUICK
    overrides = {
        "streams": args.streams,
        "stream_seconds": args.stream_seconds,
        "loaded_chats": args.loaded_chats,
        "unloaded_chats": args.unloaded_chats,
        "gap_chats": args.gap_chats,
        "gap_long_chats": args.gap_chats,
        "gap_light_chats": args.gap_chats,
        "gap_concurrency": args.gap_concurrency,
        "runner_concurrency": args.runner_concurrency,
    }
    plan = Plan(**{**plan.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    work_dir = Path(tempfile.mkdtemp(prefix="cozeplus-sbs-"))
    bench = Bench(work_dir, plan)
    bench.only = {name for name in args.only.split(",") if name}
    started = time.monotonic()
    out: dict[str, tuple[Load, Load]] = {}
    failed = False
    with terminate_as_interrupt():
        try:
            print(f"starting the system in {work_dir}", file=sys.stderr)
            bench.start()
            out = asyncio.run(bench.run())
        except KeyboardInterrupt:
            failed = True
            print("interrupted: stopping everything", file=sys.stderr)
        except Exception as exc:
            failed = True
            print(f"benchmark failed: {exc!r}", file=sys.stderr)
            for service in (*bench.system.per_scenario, *bench.system.shared):
                print(f"--- {service.name} ---\n{service.log_tail(15)}", file=sys.stderr)
        finally:
            with ignoring_signals():
                bench.system.close()
            if args.keep or failed:
                print(f"work directory kept: {work_dir}", file=sys.stderr)
            else:
                shutil.rmtree(work_dir, ignore_errors=True)
    if failed or not out:
        return 1
    table, raw = report(out, plan, bench)
    print(f"\nMachine: {machine_description()}. Whole run {time.monotonic() - started:.0f} s.\n")
    print(table)
    if args.json:
        with contextlib.suppress(OSError):
            args.json.write_text(json.dumps({"machine": machine_description(), **raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chat load benchmark: streaming `POST /v3/chat` through the whole pipeline, measured.

    .venv/bin/python benchmarks/chat_load.py            # the default scenarios
    .venv/bin/python benchmarks/chat_load.py --chats 300 --concurrency 30 --runners 2 \\
        --ttft-ms 50 --inter-token-ms 10 --tokens 40   # one scenario of your own

It starts its own system on loopback ports, with the helpers the test suite uses: NATS with
JetStream (EmbeddedNats, in a temporary directory), the registry (SQLite there too), the
mock OpenAI-compatible model server, and, for each scenario, a fresh edge and R runners (so
each scenario's memory figures are its own). It creates accounts and API keys through the
registry's Accounts gRPC service, creates and publishes a bot on the mock model over HTTP,
warms the system up, then fires N streaming chats with C in flight at once from one
httpx.AsyncClient, reads every SSE stream to its end and checks that it ends with
`conversation.chat.completed`, `conversation.stream.done`, `done` and carries the whole answer.

How the mock behaves comes from the provider model name in the generated models file
(`mock-echo-ttft-100-itl-20-chunk-1`: wait 100 ms, then one token per chunk 20 ms apart,
answering the user's text), and the query is T words, so the answer is exactly T tokens.

Chats are spread over several accounts (at most --chats-per-account each, lifetime) so that
the per-account chat rate limit (60/minute by default) does not turn the run into 429s.

Figures are printed as a markdown table (metrics down, scenarios across) on stdout, progress
on stderr. Nothing is asserted: this measures. Every process it starts is stopped on exit,
Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import httpx
import orjson

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

DELTA = "conversation.message.delta"
SUCCESS_TAIL = ["conversation.chat.completed", "conversation.stream.done", "done"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    chats: int
    concurrency: int
    runners: int
    ttft_ms: int
    inter_token_ms: int
    tokens: int

    @property
    def model_id(self) -> str:
        """The catalogue id bots use; one per mock behaviour."""
        return f"bench-ttft{self.ttft_ms}-itl{self.inter_token_ms}"

    @property
    def provider_model(self) -> str:
        """The model name sent to the mock, whose directives script its answer."""
        return f"mock-echo-ttft-{self.ttft_ms}-itl-{self.inter_token_ms}-chunk-1"

    @property
    def query(self) -> str:
        # The mock splits on words: this is exactly `tokens` tokens, echoed back.
        return " ".join(f"w{i}" for i in range(self.tokens))

    @property
    def ideal_s(self) -> float:
        """How long the mock alone takes to answer: ttft, then a token every inter-token."""
        return (self.ttft_ms + max(0, self.tokens - 1) * self.inter_token_ms) / 1000


DEFAULT_SCENARIOS = [
    # A model that streams like a real one: the pipeline's share of what users wait for.
    Scenario("streaming, 1 runner", 200, 20, 1, 100, 20, 20),
    # Queue-only: the mock answers at once, so all the time is the pipeline's own. One chat
    # at a time gives the unloaded cost per chat; 50 at a time saturates the machine.
    Scenario("instant, one at a time", 100, 1, 1, 0, 0, 20),
    Scenario("instant, 1 runner", 500, 50, 1, 0, 0, 20),
    Scenario("instant, 2 runners", 500, 50, 2, 0, 0, 20),
    # Ten times the deltas per chat: what each streamed token costs, beside the fixed cost.
    Scenario("instant, 200-token answers", 200, 20, 1, 0, 0, 200),
]
CUSTOM_DEFAULTS = Scenario("custom", 200, 20, 1, 100, 20, 20)


# --------------------------------------------------------------------------- /proc


def proc_status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB; 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds every program on the machine has used (all CPUs; idle, iowait and steal
    excluded), from the first line of /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / CLK_TCK


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_description() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    return (
        f"{nproc()} × {cpu}, Linux {platform.release()}, Python {platform.python_version()}, "
        f"commit {commit}"
    )


# --------------------------------------------------------------------------- the system


@dataclass
class Target:
    """One account with its own bot: chats go round-robin over these."""

    headers: dict[str, str]
    bot_id: str


class System:
    """Everything the benchmark starts, stopped in reverse order by close()."""

    def __init__(self, work_dir: Path, scenarios: Sequence[Scenario]) -> None:
        self.work_dir = work_dir
        self.log_dir = work_dir / "logs"
        self.scenarios = scenarios
        self.nats = EmbeddedNats(work_dir / "nats")
        self.shared: list[ServiceProcess] = []
        self.per_scenario: list[ServiceProcess] = []
        self.models_file = work_dir / "models.toml"
        self.registry_addr = ""
        self._channel: grpc.Channel | None = None
        # The registry's service credential, for every process started here and our channel.
        os.environ.setdefault(SERVICE_TOKEN_ENV, generate_token())

    # -- shared part: NATS, mock LLM, registry

    def start_shared(self) -> None:
        self.nats.start()
        mock_port = free_port()
        base_url = f"http://127.0.0.1:{mock_port}/v1"
        models = {s.model_id: s.provider_model for s in self.scenarios}
        self.models_file.write_text(
            "".join(
                f'[models.{model_id}]\nprovider = "openai"\nbase_url = "{base_url}"\n'
                f'model = "{provider_model}"\n\n'
                for model_id, provider_model in models.items()
            )
        )
        mock = ServiceProcess(
            "mock-llm",
            "services.mock_llm",
            {},
            self.log_dir / "mock-llm.log",
            http_ok(f"http://127.0.0.1:{mock_port}/healthz"),
            # Server-wide defaults; each bench model's name overrides ttft and inter-token.
            args=[
                "--port",
                str(mock_port),
                "--tokens-per-chunk",
                "1",
                "--ttft-ms",
                "0",
                "--inter-token-ms",
                "0",
                "--echo",
            ],
        )
        registry = registry_process(
            data_dir=self.work_dir / "registry",
            port=free_port(),
            nats_url=self.nats.url,
            log_dir=self.log_dir,
            extra_env={"COZEPLUS_REGISTRY_MODELS_FILE": str(self.models_file)},
        )
        self.registry_addr = registry.env["COZEPLUS_REGISTRY_LISTEN"]
        for service in (mock, registry):
            self.shared.append(service)  # first, so an interrupt can't leak it
            service.start()
        for service in (mock, registry):
            service.wait_ready()
        self._channel = service_channel(self.registry_addr)

    def process(self, name: str) -> ServiceProcess:
        for service in (*self.shared, *self.per_scenario):
            if service.name == name:
                return service
        raise KeyError(name)

    def shared_pids(self) -> dict[str, int]:
        pids = {"nats": self.nats.process.pid if self.nats.process else 0}
        for service in self.shared:
            if service.process is not None:
                pids[service.name] = service.process.pid
        return pids

    # -- per scenario: edge and runners

    def start_pipeline(self, runners: int, tag: str) -> tuple[ServiceProcess, list[ServiceProcess]]:
        edge = edge_process(
            port=free_port(),
            registry_addr=self.registry_addr,
            nats_url=self.nats.url,
            log_dir=self.log_dir,
            name=f"edge-{tag}",
        )
        runner_list = [
            runner_process(
                health_port=free_port(),
                registry_addr=self.registry_addr,
                nats_url=self.nats.url,
                log_dir=self.log_dir,
                name=f"runner-{tag}-{i + 1}",
                extra_env={
                    "COZEPLUS_RUNNER_MODELS_FILE": str(self.models_file),
                    # Only matters when the benchmark is interrupted mid-load.
                    "COZEPLUS_RUNNER_SHUTDOWN_GRACE_S": "3",
                },
            )
            for i in range(runners)
        ]
        for service in (edge, *runner_list):
            self.per_scenario.append(service)
            service.start()
        for service in (edge, *runner_list):
            service.wait_ready()
        return edge, runner_list

    def stop_pipeline(self) -> None:
        # Runners first: they drain their chats and publish the last events to the edge.
        for service in reversed(self.per_scenario):
            service.stop()
        self.per_scenario.clear()

    # -- accounts and bots

    def make_targets(self, edge_url: str, scenario: Scenario, accounts: int) -> list[Target]:
        assert self._channel is not None
        stub = AccountsStub(self._channel)
        targets = []
        with httpx.Client(base_url=edge_url, timeout=30) as http:
            for _ in range(accounts):
                username = f"bench_{secrets.token_hex(6)}"
                user = stub.CreateUser(
                    pb.CreateUserRequest(username=username, password=secrets.token_urlsafe(12))
                )
                key = stub.CreateApiKey(pb.CreateApiKeyRequest(user_id=user.id, name="bench"))
                headers = {"Authorization": f"Bearer {key.token}"}
                created = http.post(
                    "/api/draftbot/create",
                    headers=headers,
                    json={
                        "name": "bench bot",
                        "prompt": "You are a benchmark bot.",
                        "model": scenario.model_id,
                    },
                )
                if created.status_code != 200:
                    raise RuntimeError(f"creating the bot failed: {created.text}")
                bot_id = created.json()["data"]["bot_id"]
                published = http.post(
                    "/api/draftbot/publish", headers=headers, json={"bot_id": bot_id}
                )
                if published.status_code != 200:
                    raise RuntimeError(f"publishing the bot failed: {published.text}")
                targets.append(Target(headers, str(bot_id)))
        return targets

    def close(self) -> None:
        self.stop_pipeline()
        if self._channel is not None:
            self._channel.close()
        for service in reversed(self.shared):
            service.stop()
        self.shared.clear()
        self.nats.stop()


# --------------------------------------------------------------------------- one chat


@dataclass
class ChatResult:
    error: str = ""
    total_s: float = 0.0
    first_event_s: float = math.nan
    first_delta_s: float = math.nan
    gaps_s: list[float] = field(default_factory=list)
    events: int = 0


def _tail_reason(names: list[str]) -> str:
    if not names:
        return "empty stream"
    return "stream ended with " + " → ".join(names[-3:])


async def one_chat(
    client: httpx.AsyncClient, target: Target, scenario: Scenario, user_id: str
) -> ChatResult:
    result = ChatResult()
    body = {"bot_id": target.bot_id, "user_id": user_id, "stream": True, "query": scenario.query}
    names: list[str] = []
    answer: list[str] = []
    failure = ""
    last_delta = 0.0
    started = time.perf_counter()
    try:
        async with client.stream("POST", "/v3/chat", json=body, headers=target.headers) as resp:
            if resp.status_code != 200:
                await resp.aread()
                result.error = f"HTTP {resp.status_code}: {resp.text[:120]}"
                return result
            buffer = b""
            async for chunk in resp.aiter_bytes():
                buffer += chunk
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    now = time.perf_counter()
                    lines = block.split(b"\n")
                    if (
                        len(lines) != 2
                        or not lines[0].startswith(b"event: ")
                        or not lines[1].startswith(b"data: ")
                    ):
                        result.error = f"bad SSE framing: {block[:120]!r}"
                        return result
                    name = lines[0][7:].decode()
                    names.append(name)
                    if len(names) == 1:
                        result.first_event_s = now - started
                    if name == DELTA:
                        answer.append(orjson.loads(lines[1][6:])["content"])
                        if last_delta:
                            result.gaps_s.append(now - last_delta)
                        else:
                            result.first_delta_s = now - started
                        last_delta = now
                    elif name in ("conversation.chat.failed", "error") and not failure:
                        data = orjson.loads(lines[1][6:])
                        if isinstance(data, dict):
                            error = data.get("last_error") or data.get("error") or data
                            if isinstance(error, dict):
                                error = error.get("msg", error)
                            failure = str(error)[:120]
            if buffer:
                result.error = f"trailing bytes after the last event: {buffer[:120]!r}"
                return result
    except (httpx.HTTPError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:160]
        return result
    finally:
        result.total_s = time.perf_counter() - started
        result.events = len(names)
    if names[-3:] != SUCCESS_TAIL:
        result.error = _tail_reason(names) + (f" ({failure})" if failure else "")
    elif not answer:
        result.error = "no conversation.message.delta"
    elif "".join(answer) != scenario.query:
        result.error = "answer differs from the mock's"
    return result


# --------------------------------------------------------------------------- load


@dataclass
class Measured:
    """Everything one scenario produced, before it is turned into figures."""

    scenario: Scenario
    results: list[ChatResult]
    skipped: int
    wall_s: float
    cpu_s: dict[str, float]
    machine_busy_s: float
    rss_idle_kib: dict[str, int]
    rss_peak_kib: dict[str, int]
    rss_after_kib: dict[str, int]
    accounts: int
    warmup: int


async def fire(
    client: httpx.AsyncClient,
    targets: list[Target],
    scenario: Scenario,
    count: int,
    concurrency: int,
    budget_s: float,
) -> tuple[list[ChatResult], int, float]:
    """`count` chats, `concurrency` at a time; returns results, chats skipped, wall time."""
    results: list[ChatResult] = []
    numbers = itertools.count()
    started = time.perf_counter()
    stop_at = started + budget_s

    async def worker() -> None:
        while (i := next(numbers)) < count and time.perf_counter() < stop_at:
            target = targets[i % len(targets)]
            results.append(await one_chat(client, target, scenario, f"bench-user-{i % 16}"))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, count - len(results), time.perf_counter() - started


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: proc_cpu_s(pid) for name, pid in pids.items()}


async def drive(
    edge_url: str,
    targets: list[Target],
    scenario: Scenario,
    pids: dict[str, int],
    warmup: int,
    budget_s: float,
) -> tuple[list[ChatResult], int, float, dict[str, float], float]:
    limits = httpx.Limits(
        max_connections=scenario.concurrency, max_keepalive_connections=scenario.concurrency
    )
    timeout = httpx.Timeout(60.0, connect=10.0)
    async with httpx.AsyncClient(base_url=edge_url, limits=limits, timeout=timeout) as client:
        probe = await one_chat(client, targets[0], scenario, "bench-probe")
        if probe.error:
            raise RuntimeError(f"the first chat failed: {probe.error}")
        # Warm every account's auth cache, every connection and every runner's model client.
        warm, _, _ = await fire(client, targets, scenario, warmup, scenario.concurrency, budget_s)
        warm_errors = Counter(r.error for r in warm if r.error)
        if warm_errors:
            print(f"  warm-up errors: {dict(warm_errors)}", file=sys.stderr)
        before, machine_before = cpu_snapshot(pids), machine_busy_s()
        results, skipped, wall = await fire(
            client, targets, scenario, scenario.chats, scenario.concurrency, budget_s
        )
        after, machine_after = cpu_snapshot(pids), machine_busy_s()
    cpu = {name: after[name] - before[name] for name in pids}
    return results, skipped, wall, cpu, machine_after - machine_before


def run_scenario(
    system: System,
    scenario: Scenario,
    index: int,
    chats_per_account: int,
    budget_s: float,
) -> Measured:
    tag = str(index + 1)
    edge, runners = system.start_pipeline(scenario.runners, tag)
    edge_url = f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}"
    # The warm-up touches every account once at least (its key then sits in the auth cache).
    warmup = max(scenario.concurrency, 2 * scenario.runners)
    accounts = math.ceil((scenario.chats + warmup + 1) / chats_per_account)
    warmup = max(warmup, accounts)
    accounts = math.ceil((scenario.chats + warmup + 1) / chats_per_account)
    targets = system.make_targets(edge_url, scenario, accounts)

    pipeline = {"edge": edge, **{f"runner {i + 1}": r for i, r in enumerate(runners)}}
    pipeline_pids = {name: p.process.pid for name, p in pipeline.items() if p.process}
    pids = {**pipeline_pids, **system.shared_pids(), "client": os.getpid()}
    rss_idle = {name: proc_status_kib(pid, "VmRSS") for name, pid in pipeline_pids.items()}

    results, skipped, wall, cpu, machine = asyncio.run(
        drive(edge_url, targets, scenario, pids, warmup, budget_s)
    )
    rss_peak = {name: proc_status_kib(pid, "VmHWM") for name, pid in pipeline_pids.items()}
    rss_after = {name: proc_status_kib(pid, "VmRSS") for name, pid in pipeline_pids.items()}
    system.stop_pipeline()
    return Measured(
        scenario,
        results,
        skipped,
        wall,
        cpu,
        machine,
        rss_idle,
        rss_peak,
        rss_after,
        accounts,
        warmup,
    )


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    value *= 1000
    if abs(value) < 1:
        return f"{value:.2f}"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def pcts(values: Sequence[float], ps: Sequence[float]) -> str:
    return " / ".join(ms(percentile(values, p)) for p in ps)


def mib(kib: int) -> str:
    return f"{kib * 1024 / MIB:.0f}"


@dataclass
class Figures:
    """One scenario's column: metric label -> cell, plus the raw numbers for --json."""

    cells: dict[str, str]
    raw: dict[str, Any]


def figures(m: Measured) -> Figures:
    s = m.scenario
    ok = [r for r in m.results if not r.error]
    errors = Counter(r.error for r in m.results if r.error)
    total = [r.total_s for r in ok]
    first_delta = [r.first_delta_s for r in ok]
    first_event = [r.first_event_s for r in ok]
    overhead = [v - s.ttft_ms / 1000 for v in first_delta]
    e2e_overhead = [v - s.ideal_s for v in total]
    gaps = [g for r in ok for g in r.gaps_s]
    events = sum(r.events for r in m.results)
    runners = [name for name in m.cpu_s if name.startswith("runner")]
    runner_cpu = sum(m.cpu_s[name] for name in runners)
    done = len(m.results)
    ours = sum(m.cpu_s.values())
    capacity = m.wall_s * nproc()
    others = max(0.0, m.machine_busy_s - ours)

    def per_chat(cpu: float) -> str:
        return f"{cpu / done * 1000:.1f}" if done else "–"

    def per_event(cpu: float) -> str:
        return f"{cpu / events * 1e6:.0f}" if events else "–"

    error_cell = str(sum(errors.values()))
    if errors:
        error_cell += " (" + "; ".join(f"{n}× {e}" for e, n in errors.most_common(3)) + ")"
    if m.skipped:
        error_cell += f"; {m.skipped} not started (time budget)"

    def rss_cell(name: str) -> str:
        return f"{mib(m.rss_idle_kib[name])} / {mib(m.rss_peak_kib[name])} / " + mib(
            m.rss_after_kib[name]
        )

    cells = {
        "chats × concurrency, runners": f"{s.chats} × {s.concurrency}, {s.runners}",
        "mock: ttft / inter-token / tokens": (
            f"{s.ttft_ms} ms / {s.inter_token_ms} ms / {s.tokens}"
        ),
        "throughput (chats/s)": f"{done / m.wall_s:.1f}" if m.wall_s else "–",
        "SSE events/s delivered": f"{events / m.wall_s:.0f}" if m.wall_s else "–",
        "end-to-end p50 / p95 / p99 (ms)": pcts(total, (50, 95, 99)),
        "… of which the mock's own time (ms)": ms(s.ideal_s),
        "end-to-end overhead p50 / p99 (ms)": pcts(e2e_overhead, (50, 99)),
        "first event (chat.created) p50 / p99 (ms)": pcts(first_event, (50, 99)),
        "first delta p50 / p95 / p99 (ms)": pcts(first_delta, (50, 95, 99)),
        "**pipeline overhead** = first delta − ttft, p50 / p95 / p99 (ms)": pcts(
            overhead, (50, 95, 99)
        ),
        "inter-delta gap p50 / p99 (ms) vs mock": f"{pcts(gaps, (50, 99))} vs {s.inter_token_ms}",
        "edge RSS idle / peak / after (MiB)": rss_cell("edge"),
        "runner RSS idle / peak / after (MiB)": "; ".join(rss_cell(name) for name in runners),
        "CPU s: edge / runners / registry / NATS / mock / client": " / ".join(
            f"{v:.1f}"
            for v in (
                m.cpu_s["edge"],
                runner_cpu,
                m.cpu_s["registry"],
                m.cpu_s["nats"],
                m.cpu_s["mock-llm"],
                m.cpu_s["client"],
            )
        ),
        "CPU busy during the load: benchmark's processes / other programs": (
            f"{ours / capacity * 100:.0f} % / {others / capacity * 100:.0f} %" if capacity else "–"
        ),
        "CPU ms per chat: edge / runners / registry": (
            f"{per_chat(m.cpu_s['edge'])} / {per_chat(runner_cpu)} / "
            f"{per_chat(m.cpu_s['registry'])}"
        ),
        "CPU µs per SSE event: edge / runners": (
            f"{per_event(m.cpu_s['edge'])} / {per_event(runner_cpu)}"
        ),
        "errors": error_cell,
    }
    raw = {
        "scenario": asdict(s),
        "chats_done": done,
        "chats_ok": len(ok),
        "skipped": m.skipped,
        "errors": dict(errors),
        "wall_s": m.wall_s,
        "events": events,
        "accounts": m.accounts,
        "warmup_chats": m.warmup,
        "end_to_end_s": {p: percentile(total, p) for p in (50, 95, 99)},
        "first_event_s": {p: percentile(first_event, p) for p in (50, 95, 99)},
        "first_delta_s": {p: percentile(first_delta, p) for p in (50, 95, 99)},
        "pipeline_overhead_s": {p: percentile(overhead, p) for p in (50, 95, 99)},
        "inter_delta_gap_s": {p: percentile(gaps, p) for p in (50, 99)},
        "cpu_s": m.cpu_s,
        "machine_busy_s": m.machine_busy_s,
        "rss_idle_kib": m.rss_idle_kib,
        "rss_peak_kib": m.rss_peak_kib,
        "rss_after_kib": m.rss_after_kib,
    }
    return Figures(cells, raw)


def markdown_table(names: Sequence[str], columns: Sequence[Figures]) -> str:
    header = "| metric | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(names)
    rows = [
        f"| {label} | " + " | ".join(col.cells[label] for col in columns) + " |"
        for label in columns[0].cells
    ]
    return "\n".join([header, rule, *rows])


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Load-test streaming /v3/chat through edge → NATS → runners → mock LLM. "
        "With none of the scenario options, runs the default scenarios; with any, runs one "
        "scenario (the others default to "
        f"{CUSTOM_DEFAULTS.chats} chats × {CUSTOM_DEFAULTS.concurrency}, "
        f"{CUSTOM_DEFAULTS.runners} runner, ttft {CUSTOM_DEFAULTS.ttft_ms} ms, inter-token "
        f"{CUSTOM_DEFAULTS.inter_token_ms} ms, {CUSTOM_DEFAULTS.tokens} tokens).",
    )
    p.add_argument("--chats", type=int, help="chats to measure (after the warm-up)")
    p.add_argument("--concurrency", type=int, help="chats in flight at once")
    p.add_argument("--runners", type=int, help="runner processes")
    p.add_argument("--ttft-ms", type=int, help="the mock's time to first token")
    p.add_argument("--inter-token-ms", type=int, help="the mock's delay between tokens")
    p.add_argument("--tokens", type=int, help="tokens per answer (one per delta)")
    p.add_argument(
        "--chats-per-account",
        type=int,
        default=50,
        help="spread chats over accounts so the per-account rate limit (60/min) is never hit",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="time budget of each scenario's load; chats not started by then are reported",
    )
    p.add_argument("--json", type=Path, help="also write the raw figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    args = p.parse_args(argv)
    for name in ("chats", "concurrency", "runners", "tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be at least 1")
    for name in ("ttft_ms", "inter_token_ms"):
        value = getattr(args, name)
        if value is not None and value < 0:
            p.error(f"--{name.replace('_', '-')} must not be negative")
    return args


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    chosen = {
        name: getattr(args, name)
        for name in ("chats", "concurrency", "runners", "ttft_ms", "inter_token_ms", "tokens")
        if getattr(args, name) is not None
    }
    if not chosen:
        return DEFAULT_SCENARIOS
    d = CUSTOM_DEFAULTS
    s = Scenario(
        "custom",
        chosen.get("chats", d.chats),
        chosen.get("concurrency", d.concurrency),
        chosen.get("runners", d.runners),
        chosen.get("ttft_ms", d.ttft_ms),
        chosen.get("inter_token_ms", d.inter_token_ms),
        chosen.get("tokens", d.tokens),
    )
    kind = "instant" if s.ttft_ms == 0 and s.inter_token_ms == 0 else "streaming"
    runners = f"{s.runners} runner" + ("s" if s.runners > 1 else "")
    return [dataclasses.replace(s, name=f"{kind}, C={s.concurrency}, {runners}")]


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every child process."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            raise KeyboardInterrupt
        # Whatever handles Ctrl-C at this moment (asyncio.run cancels its main task
        # cleanly; elsewhere Python raises KeyboardInterrupt) handles this too.
        signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def ignoring_signals() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = scenarios_from(args)
    work_dir = Path(tempfile.mkdtemp(prefix="cozeplus-bench-"))
    system = System(work_dir, scenarios)
    columns: list[Figures] = []
    started = time.monotonic()
    failed = interrupted = False
    with terminate_as_interrupt():
        try:
            print(f"starting NATS, registry and mock LLM in {work_dir}", file=sys.stderr)
            system.start_shared()
            for index, scenario in enumerate(scenarios):
                print(f"scenario {index + 1}/{len(scenarios)}: {scenario}", file=sys.stderr)
                measured = run_scenario(
                    system, scenario, index, args.chats_per_account, args.max_seconds
                )
                column = figures(measured)
                columns.append(column)
                print(
                    f"  {len(measured.results)} chats in {measured.wall_s:.1f}s: "
                    f"{column.cells['throughput (chats/s)']} chats/s, "
                    f"errors {column.cells['errors']}",
                    file=sys.stderr,
                )
        except KeyboardInterrupt:
            print("interrupted: stopping everything", file=sys.stderr)
            interrupted = True
        except Exception as exc:
            failed = True
            print(f"benchmark failed: {exc}", file=sys.stderr)
            for service in (*system.per_scenario, *system.shared):
                print(f"--- {service.name} log tail ---\n{service.log_tail(20)}", file=sys.stderr)
        finally:
            # A second Ctrl-C (or a SIGTERM) must not cut the cleanup short.
            with ignoring_signals():
                system.close()
            if args.keep or failed:
                print(f"work directory kept: {work_dir}", file=sys.stderr)
            else:
                shutil.rmtree(work_dir, ignore_errors=True)
    if not columns:
        return 1
    names = [s.name for s in scenarios[: len(columns)]]
    print(f"\nMachine: {machine_description()}. Whole run {time.monotonic() - started:.0f} s.\n")
    print(markdown_table(names, columns))
    print(
        "\nAll processes (client, mock LLM, NATS, registry, edge, runners) share this machine, "
        "so CPU contention is part of every figure. Latencies are measured by the client from "
        "sending the request; each chat is a new conversation."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"machine": machine_description(), "scenarios": [c.raw for c in columns]},
                indent=2,
            )
        )
    return 1 if failed or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())

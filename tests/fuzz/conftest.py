"""Fuzzing the running edge: an edge of its own (limits out of the way, so the fuzzer reaches
the handlers instead of a 429), and a tally printed at the end of the run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account


@dataclass
class Tally:
    """What a property test ran, for the summary at the end of the session."""

    cases: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    # Answers that were event streams, each checked frame by frame.
    streams: int = 0


TALLIES: dict[str, Tally] = {}
# Seconds spent in the tests of each fuzz module (set-up included: starting the edge, making
# the resources a test fuzzes).
MODULE_SECONDS: Counter[str] = Counter()


def tally(name: str) -> Tally:
    return TALLIES.setdefault(name, Tally())


@contextmanager
def case(name: str, target: str, status: int | None = None) -> Iterator[Tally]:
    """Counts one generated case of `target` (and its failure, when the body raises)."""
    results = tally(name)
    results.cases[target] += 1
    if status is not None:
        results.statuses[status] += 1
    try:
        yield results
    except BaseException:
        results.failures[target] += 1
        raise


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid.startswith("tests/fuzz/"):
        MODULE_SECONDS[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLIES:
        return
    terminalreporter.write_sep("=", "fuzz summary")
    # Hypothesis counts a failing example more than once while it shrinks it; these are the
    # cases seen failing, not distinct bugs.
    for name, result in sorted(TALLIES.items()):
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(result.statuses.items()))
        terminalreporter.write_line(
            f"{name}: {sum(result.cases.values())} cases over {len(result.cases)} targets, "
            f"{sum(result.failures.values())} failing"
            + (f" (HTTP statuses {statuses})" if statuses else "")
            + (f", {result.streams} event streams checked" if result.streams else "")
        )
        for target, count in sorted(result.failures.items()):
            if count:
                terminalreporter.write_line(f"    FAILED {target}: {count}")
    for module, seconds in sorted(MODULE_SECONDS.items()):
        terminalreporter.write_line(f"{module}: {seconds:.1f}s")


# High enough never to refuse the fuzzer, low enough to stay a real limit: the rate limiter
# (and its headers) is on the path of every fuzzed request.
FUZZ_LIMIT = "1000000"


@pytest.fixture(scope="session")
def fuzz_edge_url(
    work_dir: Path,
    nats_url: str,
    registry_addr: str,
    runner: ServiceProcess,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> str:
    """An edge on the shared NATS and registry, with a runner behind it so fuzzed chats run."""
    port = free_port()
    start_service(
        edge_process(
            port=port,
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-fuzz",
            extra_env={
                "COZEPLUS_EDGE_RATE_LIMIT_CHAT": FUZZ_LIMIT,
                "COZEPLUS_EDGE_RATE_LIMIT_BOT_MANAGEMENT": FUZZ_LIMIT,
                "COZEPLUS_EDGE_RATE_LIMIT_BOT_INFO": FUZZ_LIMIT,
                "COZEPLUS_EDGE_RATE_LIMIT_OTHER": FUZZ_LIMIT,
            },
        )
    )
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def fuzz_account(make_account: Callable[..., Account]) -> Account:
    return make_account()

"""Each reliability test gets a NATS of its own, and a failing one's report carries the last
lines of each service's log: these tests run whole systems as processes, and a failure seen
only in CI is otherwise mute."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from cozeplus.embedded_nats import EmbeddedNats
from tests.reliability.stack import STACKS_OF_THE_TEST

LOG_LINES = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if call.when == "setup":
        return
    if report.failed:
        for number, stack in enumerate(STACKS_OF_THE_TEST):
            for service in stack.services():
                report.sections.append(
                    (f"stack {number}: {service.name} log", service.log_tail(LOG_LINES))
                )
    if call.when == "teardown":
        STACKS_OF_THE_TEST.clear()


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A NATS of the test's own (a test may kill and restart it)."""
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server

"""A bug in a handler, in a real edge process: the client gets the generic 500 envelope with
its log id (and nothing of the fault), the log gets the stack under the same log id, and the
edge goes on serving.

The fault is injected from outside the product code: a `sitecustomize.py` on the edge
process's PYTHONPATH (Python imports it at start-up) replaces one function the bot routes
call with one that raises. No test-only route exists in the edge.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.cli.system import ServiceProcess, edge_process, free_port
from tests.conftest import Account
from tests.edge.envelope import assert_error, assert_log_id, data_of

SECRET = "db-password-hunter2"
FAULT = f'''
"""Injected by tests/edge/test_unhandled_errors.py."""
import services.edge.bot_mapping as bot_mapping


def _broken(*args, **kwargs):
    raise RuntimeError("injected fault, internal detail {SECRET}")


bot_mapping.v1_bot_from_version = _broken
'''


@pytest.fixture(scope="module")
def faulty_edge(
    work_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    nats_url: str,
    registry_addr: str,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> Iterator[ServiceProcess]:
    fault_dir = tmp_path_factory.mktemp("fault")
    (fault_dir / "sitecustomize.py").write_text(FAULT)
    python_path = os.pathsep.join(p for p in (str(fault_dir), os.environ.get("PYTHONPATH")) if p)
    service = start_service(
        edge_process(
            port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_url,
            log_dir=work_dir / "logs",
            name="edge-faulty",
            extra_env={"PYTHONPATH": python_path},
        )
    )
    yield service
    service.stop()


def test_an_unhandled_exception_is_a_generic_500_with_the_stack_in_the_log(
    faulty_edge: ServiceProcess, make_account: Callable[..., Account]
) -> None:
    account = make_account()
    url = f"http://127.0.0.1:{faulty_edge.env['COZEPLUS_EDGE_PORT']}"
    with httpx.Client(base_url=url, headers=account.headers, timeout=30) as http:
        bot_id = data_of(http.post("/api/draftbot/create", json={"name": "b"}))["bot_id"]
        data_of(http.post("/api/draftbot/publish", json={"bot_id": bot_id}))

        broken = http.get(f"/v1/bots/{bot_id}")
        assert_error(broken, 500)
        assert broken.json() == {"code": 500, "msg": "internal server error", "data": None}
        for leak in (SECRET, "Traceback", "RuntimeError", "bot_mapping"):
            assert leak not in broken.text
            assert leak not in str(broken.headers)
        assert_log_id(broken)
        assert broken.headers["x-ratelimit-limit"]

        # The same process serves on, the draft view (another function) included.
        data_of(http.get("/api/passport/me"))
        data_of(http.get(f"/v1/bots/{bot_id}", params={"is_published": "false"}))

    log_id = broken.headers["x-log-id"]
    log = faulty_edge.log_path.read_text()
    failure = log[log.index(f"[{log_id}] unhandled error serving GET /v1/bots/{bot_id}") :]
    assert "Traceback (most recent call last)" in failure
    assert f"RuntimeError: injected fault, internal detail {SECRET}" in failure
    assert f"[{log_id}] GET /v1/bots/{bot_id} 500" in log

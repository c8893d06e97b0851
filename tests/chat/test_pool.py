"""The runner pool: load sharing, lost runners, and chats no runner picks up."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from cozeplus.embedded_nats import EmbeddedNats
from services.cli.system import ServiceProcess, edge_process, free_port, runner_process
from tests.chat.sse import FAILURE_TAIL, SUCCESS, collapse_deltas, names, parse_stream
from tests.conftest import RUNNER_TEST_ENV, Account


def _chats_ended(runner: ServiceProcess) -> float:
    port = runner.env["COZEPLUS_RUNNER_HEALTH_PORT"]
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.search(r'^cozeplus_runner_chats_total\{outcome="ended"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_runner_processes_share_the_load(
    chat_system: str,
    account: Account,
    make_bot: Callable[..., str],
    runner: ServiceProcess,
    start_runner: Callable[[str], ServiceProcess],
) -> None:
    second = start_runner("runner-2")
    before = (_chats_ended(runner), _chats_ended(second))
    bot_id = make_bot(model="mock-stream-slow")

    def chat(i: int) -> list[str]:
        with httpx.Client(base_url=chat_system, headers=account.headers, timeout=60) as client:
            response = client.post(
                "/v3/chat",
                json={"bot_id": bot_id, "user_id": f"u{i}", "stream": True, "query": f"q{i}"},
            )
            return collapse_deltas(parse_stream(response.content))

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(chat, range(24)))
    assert all(r == SUCCESS for r in results)
    after = (_chats_ended(runner), _chats_ended(second))
    first_share, second_share = after[0] - before[0], after[1] - before[1]
    assert first_share + second_share == 24
    assert first_share > 0 and second_share > 0, (first_share, second_share)


@pytest.fixture(scope="module")
def lonely_system(
    work_dir: Path, registry_addr: str, start_service: Callable[[ServiceProcess], ServiceProcess]
) -> Iterator[tuple[str, EmbeddedNats]]:
    """An edge on a NATS of its own where no runner listens (until a test starts one)."""
    with EmbeddedNats(work_dir / "lonely-nats") as nats_server:
        edge = start_service(
            edge_process(
                port=free_port(),
                registry_addr=registry_addr,
                nats_url=nats_server.url,
                log_dir=work_dir / "logs",
                name="lonely-edge",
                extra_env={
                    "COZEPLUS_EDGE_CHAT_QUEUE_TIMEOUT_S": "2",
                    "COZEPLUS_EDGE_CHAT_RUNNER_LOST_S": "4",
                },
            )
        )
        yield f"http://127.0.0.1:{edge.env['COZEPLUS_EDGE_PORT']}", nats_server
        edge.stop()


def test_no_runner_fails_the_stream_cleanly_with_503(
    lonely_system: tuple[str, EmbeddedNats], account: Account, make_bot: Callable[..., str]
) -> None:
    url, _ = lonely_system
    bot_id = make_bot(model="mock-echo")
    with httpx.Client(base_url=url, headers=account.headers, timeout=30) as client:
        response = client.post(
            "/v3/chat", json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "anyone?"}
        )
        events = parse_stream(response.content)
        assert names(events) == FAILURE_TAIL
        failed = events[0].data
        assert failed["last_error"]["code"] == 503
        retrieved = client.get(
            "/v3/chat/retrieve",
            params={"conversation_id": failed["conversation_id"], "chat_id": failed["id"]},
        ).json()["data"]
        assert retrieved["status"] == "failed"

        non_stream = client.post("/v3/chat", json={"bot_id": bot_id, "user_id": "u", "query": "x"})
        assert non_stream.status_code == 503
        assert non_stream.json()["code"] == 503


def test_a_lost_runner_fails_the_chat_instead_of_hanging(
    lonely_system: tuple[str, EmbeddedNats],
    account: Account,
    make_bot: Callable[..., str],
    registry_addr: str,
    models_file: Path,
    mock_llm: str,
    work_dir: Path,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> None:
    url, nats_server = lonely_system

    def lonely_runner(name: str) -> ServiceProcess:
        return start_service(
            runner_process(
                health_port=free_port(),
                registry_addr=registry_addr,
                nats_url=nats_server.url,
                log_dir=work_dir / "logs",
                name=name,
                extra_env={"COZEPLUS_RUNNER_MODELS_FILE": str(models_file), **RUNNER_TEST_ENV},
            )
        )

    doomed = lonely_runner("doomed-runner")
    bot_id = make_bot(model="mock-stream-slow")
    raw = b""
    started = time.monotonic()
    with httpx.Client(base_url=url, headers=account.headers, timeout=60) as client:
        with client.stream(
            "POST",
            "/v3/chat",
            json={"bot_id": bot_id, "user_id": "u", "stream": True, "query": "q"},
        ) as response:
            for chunk in response.iter_bytes():
                raw += chunk
                if raw.count(b"conversation.message.delta") >= 2 and doomed.alive:
                    doomed.kill()
        events = parse_stream(raw)
        assert names(events)[-4:] == FAILURE_TAIL
        assert time.monotonic() - started < 30
        chat = events[0].data
        # The work queue hands the orphaned chat to the next runner, which records the loss.
        lonely_runner("rescue-runner")
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline:
            status = client.get(
                "/v3/chat/retrieve",
                params={"conversation_id": chat["conversation_id"], "chat_id": chat["id"]},
            ).json()["data"]["status"]
            if status == "failed":
                break
            time.sleep(0.3)
        assert status == "failed"


def test_a_runner_stops_cleanly_on_sigterm_with_chats_in_flight(
    lonely_system: tuple[str, EmbeddedNats],
    account: Account,
    make_bot: Callable[..., str],
    registry_addr: str,
    models_file: Path,
    mock_llm: str,
    work_dir: Path,
    start_service: Callable[[ServiceProcess], ServiceProcess],
) -> None:
    url, nats_server = lonely_system
    runner = start_service(
        runner_process(
            health_port=free_port(),
            registry_addr=registry_addr,
            nats_url=nats_server.url,
            log_dir=work_dir / "logs",
            name="graceful-runner",
            extra_env={
                "COZEPLUS_RUNNER_MODELS_FILE": str(models_file),
                "COZEPLUS_RUNNER_SHUTDOWN_GRACE_S": "2",
                **RUNNER_TEST_ENV,
            },
        )
    )
    bot_id = make_bot(model="mock-stream-slow")
    started = 0

    def chat(i: int) -> list[str]:
        nonlocal started
        raw = b""
        body = {"bot_id": bot_id, "user_id": f"u{i}", "stream": True, "query": "go"}
        with (
            httpx.Client(base_url=url, headers=account.headers, timeout=60) as client,
            client.stream("POST", "/v3/chat", json=body) as response,
        ):
            for chunk in response.iter_bytes():
                if not raw:
                    started += 1
                raw += chunk
        return names(parse_stream(raw))

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(chat, i) for i in range(10)]
        deadline = time.monotonic() + 30
        while started < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.stop(timeout=20) == 0, runner.log_tail()
        endings = [f.result(timeout=60) for f in futures]
    for ending in endings:
        assert ending[-3:] == SUCCESS[-3:] or ending[-4:] == FAILURE_TAIL, ending

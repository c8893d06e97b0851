"""`cozeplus up`: the whole system from one command, stopped by Ctrl-C, data kept."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.cli.system import free_port


@dataclass
class Up:
    process: subprocess.Popen[str]
    url: str
    api_key: str
    output: list[str]


def _start(data_dir: Path, port: int, registry_port: int) -> Up:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services",
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--registry-port",
            str(registry_port),
            "--grpc-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + 90
    api_key = url = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.startswith("cozeplus is up: "):
            url = line.split(": ", 1)[1].strip()
        if "admin API key:" in line:
            api_key = line.split(":", 1)[1].strip()
        if line.startswith("Press Ctrl-C"):
            return Up(process, url, api_key, output)
    process.kill()
    pytest.fail("cozeplus up did not come up:\n" + "".join(output))


def _stop(up: Up) -> str:
    up.process.send_signal(signal.SIGINT)
    rest, _ = up.process.communicate(timeout=60)
    assert up.process.returncode == 0, rest
    return rest


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    yield free_port(), free_port()


def test_up_runs_the_system_and_keeps_data_across_restarts(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    data_dir = tmp_path / "data"
    up = _start(data_dir, *ports)
    try:
        assert up.url == f"http://127.0.0.1:{ports[0]}"
        assert up.api_key.startswith("pat_")
        admin = json.loads((data_dir / "admin.json").read_text())
        assert admin["api_key"] == up.api_key and admin["username"] == "admin"
        assert (data_dir / "admin.json").stat().st_mode & 0o077 == 0

        headers = {"Authorization": f"Bearer {up.api_key}"}
        with httpx.Client(base_url=up.url, headers=headers, timeout=30) as client:
            created = client.post(
                "/api/draftbot/create",
                json={"name": "客服助手", "prompt": "你是一个专业的客服助手"},
            )
            assert created.status_code == 200, created.text
            bot_id = created.json()["data"]["bot_id"]
            assert (
                client.post("/api/draftbot/publish", json={"bot_id": bot_id}).json()["data"][
                    "version"
                ]
                == 1
            )
            online = client.get("/v1/bot/get_online_info", params={"bot_id": bot_id}).json()["data"]
            assert online["name"] == "客服助手" and online["model"] == "echo"
            chat = client.post(
                "/v3/chat", json={"bot_id": str(bot_id), "user_id": "u", "query": "ping"}
            )
            assert chat.status_code == 200, chat.text
            assert "ping" in chat.json()["data"]["content"]
            _ingest_and_list_a_document(client, admin["user_id"])
    finally:
        stopped = _stop(up)
    assert "cozeplus: stopped" in stopped

    again = _start(data_dir, *ports)
    try:
        assert again.api_key == up.api_key
        with httpx.Client(
            base_url=again.url, headers={"Authorization": f"Bearer {again.api_key}"}
        ) as client:
            online = client.get("/v1/bot/get_online_info", params={"bot_id": bot_id})
            assert online.status_code == 200 and online.json()["data"]["name"] == "客服助手"
    finally:
        _stop(again)


def _ingest_and_list_a_document(client: httpx.Client, space_id: str) -> None:
    """`cozeplus up` runs a knowledge worker, and full-text retrieval needs no model."""
    dataset = client.post("/v1/datasets", json={"name": "docs", "space_id": space_id})
    dataset_id = dataset.json()["data"]["dataset_id"]
    text = base64.b64encode(b"Offline ingestion works.").decode()
    created = client.post(
        "/open_api/knowledge/document/create",
        json={
            "dataset_id": dataset_id,
            "document_bases": [
                {"name": "note", "source_info": {"file_base64": text, "file_type": "txt"}}
            ],
        },
    )
    assert created.status_code == 200, created.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = client.post(
            "/open_api/knowledge/document/list", json={"dataset_id": dataset_id}
        ).json()
        if listed["data"]["document_infos"][0]["status"] != 0:
            break
        time.sleep(0.1)
    assert listed["data"]["document_infos"][0]["status"] == 1, listed


def test_up_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "services",
                "up",
                "--data-dir",
                str(tmp_path),
                "--port",
                str(port),
                "--registry-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    assert result.returncode == 1
    assert "edge exited early" in result.stderr or "edge not healthy" in result.stderr
    assert "cozeplus: stopped" in result.stdout

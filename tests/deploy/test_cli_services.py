"""`cozeplus <service>` and `cozeplus health`: the entry points the image runs. That each
service starts and turns healthy through them is test_containers_start.py; here, the edges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.services import SERVICES, running_service, service_main


def cozeplus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def test_every_service_is_a_subcommand() -> None:
    help_text = cozeplus("--help").stdout
    for name in (*SERVICES, "health"):
        assert name in help_text


def test_services_are_found_by_module_name() -> None:
    from services.registry.main import main as registry_main

    assert service_main("registry") is registry_main
    assert service_main("no_such_service") is None


def test_health_finds_the_service_from_the_containers_main_process(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/opt/cozeplus/bin/python\0/opt/cozeplus/bin/cozeplus\0runner\0")
    assert running_service(cmdline) == "runner"
    cmdline.write_bytes(b"/usr/bin/bash\0-c\0sleep 1\0")
    assert running_service(cmdline) is None
    assert running_service(tmp_path / "missing") is None


def test_health_without_a_service_to_probe_says_so() -> None:
    result = cozeplus("health", env={"COZEPLUS_SERVICE": "nonsense"})
    assert result.returncode == 2
    assert "no health probe for 'nonsense'" in result.stderr
    assert cozeplus("health", "nonsense").returncode == 2  # argparse refuses it


def test_health_of_a_runner_without_its_endpoint_is_a_configuration_error() -> None:
    result = cozeplus("health", "runner", env={"COZEPLUS_RUNNER_HEALTH_PORT": "0"})
    assert result.returncode == 2
    assert "COZEPLUS_RUNNER_HEALTH_PORT is 0" in result.stderr


def test_health_of_a_service_that_is_not_running_fails(unused_port: int) -> None:
    result = cozeplus(
        "health",
        "edge",
        env={"COZEPLUS_EDGE_HOST": "0.0.0.0", "COZEPLUS_EDGE_PORT": str(unused_port)},
    )
    assert result.returncode == 1
    # A server bound to every interface is probed on loopback.
    assert f"http://127.0.0.1:{unused_port}/healthz" in result.stderr


@pytest.fixture
def unused_port() -> int:
    from services.cli.system import free_port

    return free_port()

"""Every command and code sample in the README runs as written against `cozeplus up`, and
prints what the README says it prints (ids, timestamps and log ids aside)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.cli.system import free_port

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)
RUNNABLE = {"bash", "python"}
OUTPUT = {"json", "text"}
# Headers that change from call to call (the remaining budget too, across a window edge).
VOLATILE_HEADERS = ("date:", "content-length:", "server:", "x-ratelimit-remaining:")
README_URL = "http://127.0.0.1:8080"
README_GRPC = "127.0.0.1:50061"


@dataclass
class Sample:
    lang: str
    code: str
    expected: str | None


def readme_samples(text: str) -> list[Sample]:
    samples: list[Sample] = []
    pending: Sample | None = None
    for match in FENCE.finditer(text):
        lang, flags, body = match.group(1), match.group(2).split(), match.group(3)
        if pending is not None and lang in OUTPUT and "skip" not in flags:
            pending.expected = body
            pending = None
            continue
        pending = None
        if lang in RUNNABLE and "skip" not in flags:
            pending = Sample(lang, body, None)
            samples.append(pending)
    return samples


def normalize(output: str) -> list[str]:
    lines = []
    for line in output.splitlines():
        if line.lower().startswith(VOLATILE_HEADERS):
            continue
        line = re.sub(r"\b[0-9A-F]{24,}\b", "<LOG-ID>", line)
        line = re.sub(r"\d{9,}", "<N>", line)
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    return lines


def test_readme_samples_parse() -> None:
    samples = readme_samples((ROOT / "README.md").read_text())
    assert [s.lang for s in samples].count("bash") >= 5
    assert any(s.lang == "python" for s in samples)
    assert all(s.expected is not None for s in samples[2:]), "a sample has no output shown"


@pytest.fixture
def system_up(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services",
            "up",
            "--port",
            str(port),
            "--registry-port",
            str(free_port()),
            "--grpc-port",
            str(grpc_port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 90
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if not line or line.startswith("Press Ctrl-C"):
            break
    assert seen[-1].startswith("Press Ctrl-C"), "".join(seen)
    assert f"gRPC API: 127.0.0.1:{grpc_port}\n" in seen, "".join(seen)
    yield tmp_path, f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)


def test_readme_runs_as_written(system_up: tuple[Path, str, str]) -> None:
    cwd, url, grpc_addr = system_up
    state = cwd / "readme-state.sh"
    namespace: dict[str, object] = {}
    env = {**os.environ, "COZE": url, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for sample in readme_samples((ROOT / "README.md").read_text()):
        if sample.lang == "bash":
            script = (
                f"[ -f {state} ] && source {state}\nset -e\n{sample.code}\n"
                f"declare -p COZE KEY BOT 2>/dev/null > {state} || true\n"
            )
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, f"{sample.code}\n{result.stderr}"
            output = result.stdout
        else:
            buffer = io.StringIO()
            previous = Path.cwd()
            os.chdir(cwd)
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(
                        compile(
                            sample.code.replace(README_URL, url).replace(README_GRPC, grpc_addr),
                            "README.md",
                            "exec",
                        ),
                        namespace,
                    )
            finally:
                os.chdir(previous)
            output = buffer.getvalue()
        if sample.expected is not None:
            assert normalize(output) == normalize(sample.expected), f"README sample:\n{sample.code}"

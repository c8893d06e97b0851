"""A supervisor killed outright (SIGKILL) takes its children with it: the embedded nats-server
and every service started through ServiceProcess get SIGTERM from the kernel
(cozeplus.parent_death), instead of running on with their ports taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cozeplus.parent_death import stop_with_parent

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's"
)

SUPERVISOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from cozeplus.embedded_nats import EmbeddedNats
    from services.cli.system import ServiceProcess

    work = Path(sys.argv[1])
    nats = EmbeddedNats(work / "nats")
    nats.start()
    service = ServiceProcess(
        name="web",
        module="http.server",
        env={},
        log_path=work / "web.log",
        ready=lambda: True,
        args=["--bind", "127.0.0.1", "0"],
    )
    service.start()
    print(nats.process.pid, service.process.pid, flush=True)
    time.sleep(300)
    """
)


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_children_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    children: list[int] = []
    try:
        assert supervisor.stdout is not None
        children = [int(pid) for pid in supervisor.stdout.readline().split()]
        assert len(children) == 2 and not any(gone(pid) for pid in children)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 30
        while not all(gone(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(gone(pid) for pid in children), "a child outlived its supervisor"
    finally:
        supervisor.kill()
        for pid in children:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_only_the_main_thread_asks_for_it() -> None:
    # The kernel signals when the forking *thread* ends: a worker thread's children would be
    # stopped as soon as it finished.
    assert stop_with_parent() is not None
    seen: list[object] = []
    worker = threading.Thread(target=lambda: seen.append(stop_with_parent()))
    worker.start()
    worker.join()
    assert seen == [None]

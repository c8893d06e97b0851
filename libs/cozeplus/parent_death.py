"""Child processes that stop when the process that started them dies.

`cozeplus up`, the tests and the benchmarks start every service (and the embedded nats-server)
as a child in a session of its own, so a terminal's Ctrl-C reaches only the supervisor, which
stops them in order. A supervisor killed outright (SIGKILL, a crashed test run) never gets to:
its children would run on, holding their ports, and the next `cozeplus up` would find them
taken. On Linux the kernel can send a child a signal when its parent dies (prctl
PR_SET_PDEATHSIG); the children get SIGTERM, their own clean shutdown.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def stop_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen, or None where there is none to give.

    Only from the main thread: the kernel signals the child when the *thread* that forked it
    ends, and a worker thread (asyncio.to_thread's, say) may end long before the process."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm

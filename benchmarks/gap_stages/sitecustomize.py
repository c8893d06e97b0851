"""Loaded by every Python process `benchmarks/gap_stages.py` starts (PYTHONPATH): in the
mock, the runner and the edge it records, per stream, when each token passed this process,
and writes them to $COZEPLUS_GAP_PROBE_DIR every second. Elsewhere it does nothing.

It wraps internals (the mock's `_play`, `RunEvents.answer_delta`, `ChatSession._on_message`,
`sse_frames`): a measuring tool, not part of any service; re-check the names after a refactor.
`time.perf_counter` is CLOCK_MONOTONIC, the same clock in every process of the machine.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

_OUT = os.environ.get("COZEPLUS_GAP_PROBE_DIR", "")
_streams: dict[str, list[float]] = {}
_numbers = itertools.count()


def _stream(owner: Any, stage: str = "") -> list[float]:
    """The timestamps of one stream (an object that lives as long as it does)."""
    attribute = f"_gap_probe{stage}"
    times: list[float] | None = getattr(owner, attribute, None)
    if times is None:
        times = []
        setattr(owner, attribute, times)
        _streams[f"{stage}{next(_numbers)}"] = times
    return times


def _patch_mock() -> None:
    from services.mock_llm.app import ScriptedResponse

    play = ScriptedResponse._play

    async def _play(self: ScriptedResponse, send: Callable[[Any], Awaitable[None]]) -> str:
        async def timed(message: Any) -> None:
            if message.get("type") == "http.response.body" and message.get("body"):
                _stream(self).append(time.perf_counter())
            await send(message)

        return await play(self, timed)

    ScriptedResponse._play = _play  # type: ignore[method-assign]


def _patch_runner() -> None:
    from services.runner.run_events import RunEvents

    delta = RunEvents.answer_delta

    async def answer_delta(self: RunEvents, text: str) -> None:
        _stream(self).append(time.perf_counter())
        await delta(self, text)

    RunEvents.answer_delta = answer_delta  # type: ignore[method-assign]


def _patch_edge() -> None:
    from services.edge import responses
    from services.edge.core.session import ChatSession

    on_message = ChatSession._on_message

    async def _on_message(self: ChatSession, msg: Any) -> None:
        if (msg.headers or {}).get("Cozeplus-Event", "").endswith(".delta"):
            _stream(self, "in").append(time.perf_counter())
        await on_message(self, msg)

    frames = responses.sse_frames

    async def sse_frames(session: ChatSession) -> AsyncIterator[bytes]:
        async for chunk in frames(session):
            if b".delta" in chunk[:48]:
                _stream(session, "out").append(time.perf_counter())
            yield chunk

    ChatSession._on_message = _on_message  # type: ignore[method-assign]
    responses.sse_frames = sse_frames


_PATCHES = {"mock_llm": _patch_mock, "runner": _patch_runner, "edge": _patch_edge}


def _dump_forever(name: str) -> None:
    Path(_OUT).mkdir(parents=True, exist_ok=True)
    path = Path(_OUT) / f"{name}-{os.getpid()}.json"
    while True:
        time.sleep(1.0)
        kept = {key: list(times) for key, times in list(_streams.items()) if len(times) > 1}
        path.write_text(json.dumps(kept))


def _install() -> None:
    if not _OUT:
        return
    command = Path("/proc/self/cmdline").read_bytes().split(b"\0")
    module = command[2].decode() if len(command) > 2 and command[1] == b"-m" else ""
    for name, patch in _PATCHES.items():
        if module == f"services.{name}":
            patch()
            threading.Thread(target=_dump_forever, args=(name,), daemon=True).start()
            print(f"gap probe in {name}", file=sys.stderr)


_install()

"""cozeplus.heap: start-up objects frozen, young collections batched, and a way out."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import gc; from cozeplus import heap; heap.settle(); "
    "print(gc.get_freeze_count() > 0, gc.get_threshold()[0])"
)


def _settled(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_settle_freezes_the_start_up_heap_and_batches_young_collections() -> None:
    assert _settled(COZEPLUS_GC="") == "True 20000"


def test_cozeplus_gc_default_leaves_the_interpreter_alone() -> None:
    assert _settled(COZEPLUS_GC="default") == "False 700"

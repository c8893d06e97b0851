"""Where the inter-token gap's tail comes from: the gap at every stage of the pipeline.

    .venv/bin/python benchmarks/gap_stages.py              # 1,500 chats, about 40 s
    .venv/bin/python benchmarks/gap_stages.py --chats 600

Runs `side_by_side.py`'s `gaps50` step (a token every 10 ms, 20-token answers, 50 chats in
flight, straight to the mock and through cozeplus taking turns) with a probe in every
process it starts (`benchmarks/gap_stages/sitecustomize.py`): the mock, the runner and the
edge record when each token of each stream passed them. Prints, per stage, the gap between
one token and the next (p50 / p90 / p99 / p99.9): the mock's sends during each side's load,
the runner's deltas, the edge's NATS reads and SSE writes, and the client's reads. The probe
costs each process a little, so absolute figures run higher than `side_by_side.py`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import side_by_side as sbs
from chat_load import percentile

HERE = Path(__file__).resolve().parent


def stage_gaps(folder: Path, service: str, prefix: str) -> list[list[float]]:
    """Every recorded stream of one stage: its timestamps."""
    streams: list[list[float]] = []
    for path in folder.glob(f"{service}-*.json"):
        recorded: dict[str, list[float]] = json.loads(path.read_text())
        streams.extend(
            times for key, times in recorded.items() if key.rstrip("0123456789") == prefix
        )
    return streams


def gaps_of(streams: Sequence[Sequence[float]]) -> list[float]:
    return [b - a for times in streams for a, b in itertools.pairwise(times)]


def row(name: str, gaps: Sequence[float]) -> str:
    cells = " | ".join(f"{percentile(gaps, q) * 1000:.1f}" for q in (50, 90, 99, 99.9))
    return f"| {name} | {len(gaps)} | {cells} |"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=1500, help="chats of the gaps50 step")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cozeplus-gap-stages-"))
    probe_dir = work / "probe"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE / "gap_stages"), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["COZEPLUS_GAP_PROBE_DIR"] = str(probe_dir)
    # Which load each of the mock's streams belongs to: the slices' times, in order.
    slices: list[tuple[float, float]] = []
    measured_load = sbs.load

    async def load(*a: Any, **k: Any) -> sbs.Load:
        began = time.perf_counter()
        result = await measured_load(*a, **k)
        slices.append((began, time.perf_counter()))
        return result

    sbs.load = load  # type: ignore[assignment]
    plan = sbs.Plan(**{**sbs.QUICK.__dict__, "gap_chats": args.chats})
    bench = sbs.Bench(work / "system", plan)
    bench.only = {"gaps50"}
    try:
        bench.start()
        direct, through = asyncio.run(bench.run())["gaps50"]
        time.sleep(1.5)  # the probes write every second
    finally:
        bench.system.close()
    # pair(): a warm-up per side, then the slices, direct first.
    sides = ["direct", "cozeplus"] * (len(slices) // 2)

    def side_of(stream: Sequence[float]) -> str:
        for (began, ended), side in zip(slices, sides, strict=False):
            if began <= stream[0] <= ended:
                return side
        return ""

    mock = stage_gaps(probe_dir, "mock_llm", "")
    print(f"gaps50: {args.chats} chats, 50 in flight, a token every 10 ms (ms)\n")
    print("| stage | gaps | p50 | p90 | p99 | p99.9 |")
    print("|---|---|---|---|---|---|")
    print(row("the mock sends, direct load", gaps_of([s for s in mock if side_of(s) == "direct"])))
    print(row("the client reads, direct", [g for r in direct.ok for g in r.gaps_s]))
    print(
        row("the mock sends, cozeplus load", gaps_of([s for s in mock if side_of(s) == "cozeplus"]))
    )
    print(row("the runner publishes the delta", gaps_of(stage_gaps(probe_dir, "runner", ""))))
    print(row("the edge reads it from NATS", gaps_of(stage_gaps(probe_dir, "edge", "in"))))
    print(row("the edge writes the SSE frame", gaps_of(stage_gaps(probe_dir, "edge", "out"))))
    print(row("the client reads, cozeplus", [g for r in through.ok for g in r.gaps_s]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The committed gRPC stubs are exactly what `python scripts/gen_protos.py` makes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_stubs_match_protos(tmp_path: Path) -> None:
    generated = _load_generator().generate(tmp_path)
    stubs = [p for p in generated if "_pb2" in p.name]
    assert stubs, "protoc generated nothing"
    committed_root = ROOT / "libs"
    for fresh in stubs:
        relative = fresh.relative_to(tmp_path)
        committed = committed_root / relative
        assert committed.exists(), f"{relative} is not committed; run scripts/gen_protos.py"
        assert committed.read_text() == fresh.read_text(), (
            f"{relative} differs from protos/; run: python scripts/gen_protos.py"
        )
    committed_stubs = {
        p.relative_to(committed_root)
        for package in ("rpc", "api")
        for p in (committed_root / "cozeplus" / package).rglob("*_pb2*")
    }
    assert committed_stubs == {p.relative_to(tmp_path) for p in stubs}, (
        "stale stubs without a proto"
    )

"""Generate the Python gRPC stubs from protos/ into libs/cozeplus/rpc/.

Usage: python scripts/gen_protos.py [OUT_DIR]

The generated files are committed; tests/test_protos.py regenerates them into a
temporary folder and fails when they differ from the committed ones.
"""

from __future__ import annotations

import sys
import sysconfig
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def _plugin(name: str) -> str:
    """mypy-protobuf's protoc plugins, installed beside this interpreter."""
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.exists():
        raise SystemExit(f"{name} not found: pip install mypy-protobuf")
    return str(path)


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    sources = sorted(PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        # Typed stubs (.pyi) for messages and for the gRPC client/server classes.
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(s) for s in sources],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = sorted(p for p in out_dir.rglob("*.py*") if p.is_file())
    for package in {p.parent for p in generated}:
        while package != out_dir and package.is_relative_to(out_dir):
            init = package / "__init__.py"
            if not init.exists():
                init.write_text("")
            package = package.parent
    return generated


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "libs")

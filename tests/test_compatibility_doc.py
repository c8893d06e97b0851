"""docs/compatibility.md ties every cell to a test: each cited test file and test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


def test_every_cited_test_exists() -> None:
    text = (ROOT / "docs" / "compatibility.md").read_text()
    citations = set(CITATION.findall(text))
    assert len(citations) > 100, "the matrix cites its tests"
    missing = []
    for path, name in sorted(citations):
        source = ROOT / path
        if not source.exists():
            missing.append(path)
        elif name and not re.search(rf"def {name}\b", source.read_text()):
            missing.append(f"{path}::{name}")
    assert missing == []

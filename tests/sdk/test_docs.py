"""docs/sdk.md's examples run as written (its ```python blocks, in order, as one script), with
the edge URL and the API key of the test system in place of `cozeplus up`'s."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import Account

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
ADMIN_KEY = 'json.load(open(".cozeplus/admin.json"))["api_key"]'


def test_every_example_of_the_sdk_guide_runs(
    chat_system: str, account: Account, tmp_path: Path
) -> None:
    text = DOC.read_text(encoding="utf-8")
    # Blocks marked `python skip` show the product document's sample with placeholder values.
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 10
    script = "\n".join(blocks)
    assert ADMIN_KEY in script and "http://127.0.0.1:8080" in script
    script = script.replace(ADMIN_KEY, repr(account.token)).replace(
        "http://127.0.0.1:8080", chat_system
    )
    path = tmp_path / "sdk_guide.py"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=90,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Echo: 你好" in out
    assert "Echo: 这张图片里有什么? [image: https://example.com/cat.png]" in out
    assert "高级客服助手 2 echo" in out
    assert "404 bot 123 not found 404" in out
    assert "question 4" in out and "one more, edited" in out
    assert "错误" not in out

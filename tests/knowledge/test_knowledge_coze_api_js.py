"""@coze/api's files, datasets and documents calls against the running system (skipped
without Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.test_coze_api_js import COZE_API_VERSION
from tests.conftest import Account

HERE = Path(__file__).parent

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="Node.js and npm are not installed",
)


@pytest.fixture(scope="session")
def coze_js_knowledge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("coze-js-knowledge")
    (folder / "package.json").write_text('{"name": "kb-check", "private": true, "type": "module"}')
    installed = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", f"@coze/api@{COZE_API_VERSION}", "axios"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    shutil.copy(HERE / "coze_api_knowledge.mjs", folder / "check.mjs")
    return folder


def test_coze_api_files_datasets_and_documents(
    coze_js_knowledge: Path,
    knowledge_system: str,
    account: Account,
    make_account: Callable[..., Account],
) -> None:
    other = make_account()
    result = subprocess.run(
        ["node", "check.mjs", knowledge_system, account.token, str(account.user_id), other.token],
        cwd=coze_js_knowledge,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = json.loads(result.stdout)

    uploaded = out["uploaded"]
    assert uploaded["file_name"] == "quoll.txt" and uploaded["bytes"] == 30
    assert out["retrieved"]["id"] == uploaded["id"]
    dataset_id = out["created"]["dataset_id"]
    assert isinstance(dataset_id, str) and dataset_id.isdigit()
    assert [d["name"] for d in out["documents"]] == ["quoll", "考拉"]
    assert all(isinstance(d["document_id"], str) for d in out["documents"])
    assert [p["status"] for p in out["progress"]["data"]] == [1, 1]
    assert out["listed"]["total"] == 2
    assert [d["status"] for d in out["listed"]["document_infos"]] == [1, 1]
    mine = [d for d in out["datasets"]["dataset_list"] if d["dataset_id"] == dataset_id]
    assert len(mine) == 1 and mine[0]["doc_count"] == 2
    assert [d["name"] for d in out["renamed"]["document_infos"]] == ["quoll.txt", "考拉"]
    for name, attempt in out["foreign"].items():
        assert attempt.get("threw", {}).get("status") == 404, (name, attempt)
    assert [d["name"] for d in out["afterDelete"]["document_infos"]] == ["quoll.txt"]
    assert out["afterDatasetDelete"]["threw"]["status"] == 404

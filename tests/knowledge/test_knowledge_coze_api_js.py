"""@coze/api's files, datasets and documents calls, and its chats with a knowledge bot and a
vision bot, against the running system (skipped without Node)."""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cozepy import Coze

from services.cli.system import ServiceProcess
from tests.clients.test_coze_api_js import COZE_API_VERSION, run_sdk_script
from tests.conftest import Account
from tests.knowledge.conftest import wait_processed
from tests.knowledge.test_chat_knowledge import PNG, image_parts, make_bot, prompt_of, system_text
from tests.knowledge.test_knowledge_cozepy import add_text, new_dataset

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
    out = run_sdk_script(
        coze_js_knowledge,
        "check.mjs",
        knowledge_system,
        account.token,
        str(account.user_id),
        other.token,
    )

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


def test_coze_api_chats_with_a_knowledge_bot_and_an_image_for_a_vision_bot(
    coze_js_knowledge: Path,
    coze: Coze,
    account: Account,
    knowledge_system: str,
    runner: ServiceProcess,
    mock_llm: str,
    tmp_path: Path,
) -> None:
    dataset_id = new_dataset(coze, account)
    document = add_text(coze, dataset_id, "考拉.txt", "考拉每天睡二十个小时。")
    wait_processed(coze, dataset_id, [document])
    kb_bot = make_bot(coze, account, dataset_ids=[dataset_id])
    vision_bot = make_bot(coze, account, model="mock-vision")
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    question = f"考拉每天睡多久？{secrets.token_hex(4)}"
    marker = f"what is in the picture? {secrets.token_hex(4)}"
    shutil.copy(HERE / "coze_api_chat_knowledge.mjs", coze_js_knowledge / "chat.mjs")

    args = [knowledge_system, account.token, kb_bot, question, vision_bot, str(image), marker]
    out = run_sdk_script(coze_js_knowledge, "chat.mjs", *args)

    assert out["knowledge"] == {"status": "completed", "answers": 1}
    assert out["vision"] == {"status": "completed"}
    prompt = system_text(prompt_of(mock_llm, question))
    assert "Document: 考拉.txt\n考拉每天睡二十个小时。" in prompt
    [sent] = [m for m in prompt_of(mock_llm, marker) if m["role"] == "user"]
    assert image_parts(sent) == ["data:image/png;base64," + base64.b64encode(PNG).decode()]

"""Plugin secrets at rest: the key from settings, or one generated once into the data dir."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from services.registry.secret_box import KEY_FILE, SecretBox


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = SecretBox.from_settings("", data_dir)
    sealed = first.seal("sk-123")
    assert "sk-123" not in sealed
    assert stat.S_IMODE((data_dir / KEY_FILE).stat().st_mode) == 0o600
    # A restart reads the same key back.
    assert SecretBox.from_settings("", data_dir).open(sealed) == "sk-123"


def test_a_configured_key_wins_and_a_wrong_key_cannot_open(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    box = SecretBox.from_settings(key, tmp_path)
    assert not (tmp_path / KEY_FILE).exists()
    sealed = box.seal("token")
    assert SecretBox(key).open(sealed) == "token"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox(Fernet.generate_key()).open(sealed)
    with pytest.raises(ValueError, match="Fernet key"):
        SecretBox("not-a-key")


def test_replicas_starting_together_all_get_the_one_key(tmp_path: Path) -> None:
    # Replicas sharing a data directory race to create the key; every one must end up with
    # the same, whole key (a loser once read the winner's file before it was written).
    def replica(start: threading.Barrier, data_dir: Path, boxes: list[SecretBox]) -> None:
        start.wait()
        boxes.append(SecretBox.from_settings("", data_dir))

    for attempt in range(30):
        data_dir = tmp_path / f"data{attempt}"
        start = threading.Barrier(6)
        boxes: list[SecretBox] = []
        threads = [
            threading.Thread(target=replica, args=(start, data_dir, boxes)) for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(boxes) == 6
        sealed = boxes[0].seal("shared")
        assert all(box.open(sealed) == "shared" for box in boxes)
        assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no leftovers

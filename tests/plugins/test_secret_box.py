"""Plugin secrets at rest: the key from settings, or one generated once into the data dir."""

from __future__ import annotations

import stat
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

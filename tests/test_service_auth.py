"""Where the service credential comes from: the environment, else the data dir's file that
`cozeplus up` writes (so operator commands on the same machine need no setup)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cozeplus.service_auth import (
    SERVICE_TOKEN_ENV,
    SERVICE_TOKEN_FILE,
    ServiceTokenInterceptor,
    ensure_token_file,
    find_token,
)


def test_up_writes_one_token_readable_by_its_owner_only(tmp_path: Path) -> None:
    token = ensure_token_file(tmp_path)
    assert len(token) >= 32
    assert ensure_token_file(tmp_path) == token  # kept across restarts
    mode = stat.S_IMODE((tmp_path / SERVICE_TOKEN_FILE).stat().st_mode)
    assert mode == 0o600


def test_tools_find_the_token_in_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = ensure_token_file(tmp_path)
    monkeypatch.setenv("COZEPLUS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(SERVICE_TOKEN_ENV, "from-env")
    assert find_token() == "from-env"
    monkeypatch.delenv(SERVICE_TOKEN_ENV)
    assert find_token() == written
    assert find_token(tmp_path / "elsewhere") == ""


def test_a_server_without_a_token_is_refused() -> None:
    with pytest.raises(ValueError, match="COZEPLUS_SERVICE_TOKEN"):
        ServiceTokenInterceptor("")

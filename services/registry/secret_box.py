"""Plugin secrets encrypted at rest (Fernet: AES-CBC + HMAC, from `cryptography`).

The key is the registry setting `secret_key`. When it is unset, a key is generated once and
kept in `<data_dir>/secret.key` (mode 0600), which is what `cozeplus up` relies on; replicas
sharing a PostgreSQL database must all be given the same key explicitly.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ValueError(
                "the registry secret key must be a Fernet key (32 url-safe base64 bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from exc

    @classmethod
    def from_settings(cls, key: str, data_dir: Path) -> SecretBox:
        if key:
            return cls(key)
        path = data_dir / KEY_FILE
        if not path.exists():
            _create_key_file(path)
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ValueError("a stored secret cannot be decrypted with this key") from exc


def _create_key_file(path: Path) -> None:
    """Writes a new key to `path` unless another process got there first. Replicas starting
    together on one data directory race here: the key is written whole to a file of this
    process's own, then linked into place, which fails if the name exists; so whoever
    loses reads a complete key, never an empty or half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    own = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(own, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another replica's key is in place
            os.link(own, path)
    finally:
        own.unlink(missing_ok=True)

"""The hub's publisher key: an Ed25519 key in the data dir that signs every command it sends
(`tribune.sync.signing`) and each pushed profile.

Made on first use (`DATA_DIR/publisher.key`, mode 0600); `tribune hub publisher-key` prints the
public half for the rooms' `[sync] hub_key_file`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_FILE = "publisher.key"


class Publisher:
    """Signs what the hub publishes for rooms to verify."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Publisher:
        """The key in `data_dir`, made (atomically, 0600) when there is none. Blocking."""
        path = data_dir / KEY_FILE
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            data_dir.mkdir(parents=True, exist_ok=True)
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            temp = path.with_suffix(".tmp")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temp, path)  # fails if another process made one meanwhile: use theirs
            except FileExistsError:
                pem = path.read_bytes()
            finally:
                temp.unlink(missing_ok=True)
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(loaded)

    def sign(self, message: bytes) -> str:
        """The signature of `message`, base64."""
        return base64.b64encode(self._key.sign(message)).decode()

    def public_pem(self) -> str:
        """The public key, PEM, for the rooms."""
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

"""The API's bearer tokens: one for remote instructor clients, one for technicians.

They live in `DATA_DIR/tokens/` (mode 0700), one file each (mode 0600), readable only by the
service user; a missing one is created on first start. `cat` the file to hand a token out.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tribune.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_BYTES = 32


class Grant(StrEnum):
    """What a caller may do: instructor actions, or those plus technician endpoints."""

    INSTRUCTOR = "instructor"
    TECHNICIAN = "technician"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the audit's `who` and `actor`, and the scope granted."""

    who: str  # "panel" | "api"
    actor: str | None
    scope: Grant


@dataclass(frozen=True, slots=True)
class Tokens:
    """The `api` and `technician` bearer tokens."""

    api: str
    technician: str

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Tokens:
        """Read `data_dir/tokens/{api,technician}.token`, creating any that is missing."""
        folder = data_dir / "tokens"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _tighten(folder, 0o700)
        return cls(
            api=_load_or_create(folder / "api.token"),
            technician=_load_or_create(folder / "technician.token"),
        )

    def identify(self, presented: str) -> Principal | None:
        """The principal a bearer token stands for, or None; constant-time comparisons."""
        given = presented.encode()
        # Both comparisons always run, so timing does not tell which token nearly matched.
        is_technician = hmac.compare_digest(given, self.technician.encode())
        is_api = hmac.compare_digest(given, self.api.encode())
        if is_technician:
            return Principal("api", "token:technician", Grant.TECHNICIAN)
        if is_api:
            return Principal("api", "token:api", Grant.INSTRUCTOR)
        return None


def _load_or_create(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _tighten(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ConfigError(
                "token file holds no usable token (16 characters at least); "
                "delete it to have a new one made",
                path=str(path),
            ) from None
        return token
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    log.warning("created API token %s", path)
    return token


def _tighten(path: Path, mode: int) -> None:
    """Take away group and other access if someone loosened it."""
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:
        log.warning("%s was mode %o: set to %o", path, current, mode)
        path.chmod(mode)

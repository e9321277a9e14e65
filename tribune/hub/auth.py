"""Operators and their bearer tokens: shown once when made, kept only as a SHA-256.

A token is 32 random bytes (`thub_` + URL-safe base64), so a plain SHA-256 is enough to keep
it: nothing short of the token itself matches the hash, and no salt or slow hash is needed
for a secret that was never chosen by a person.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from tribune.hub.store import ROLES, HubStorage

TOKEN_PREFIX = "thub_"  # noqa: S105 - a prefix, not a secret
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def new_token() -> str:
    """A fresh operator token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_operator(store: HubStorage, name: str, role: str) -> str:
    """Add an operator and return their token (the only time it is seen)."""
    if not re.match(NAME_PATTERN, name):
        raise ValueError(
            f"name {name!r}: 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter/digit"
        )
    if role not in ROLES:
        raise ValueError(f"role {role!r}: want one of {', '.join(ROLES)}")
    token = new_token()
    await store.add_operator(name, role, token_hash(token), time.time())
    return token

"""Hub commands signed with the hub's publisher key (Ed25519), checked by the room.

The hub signs every `cmd` it publishes: `signature` (base64) over `CONTEXT` and the command's
canonical JSON — every other key of the payload (`id`, `action`, `args`, `issued_by`, `deadline`,
`room`), keys sorted, no spaces, ASCII. A room with `[sync] hub_key_file` runs only commands whose
signature verifies against that key: the broker's ACL already lets only the hub publish on `cmd`,
and the signature holds even if the broker does not. Naming the room stops a command signed for
one room being replayed to another; a room runs each id once and never after its deadline.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

CONTEXT = b"tribune cmd v1\n"


def command_message(body: Mapping[str, Any]) -> bytes:
    """The bytes signed for a `cmd` payload: everything but its `signature`, canonical."""
    unsigned = {key: value for key, value in body.items() if key != "signature"}
    text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return CONTEXT + text.encode()


def load_public_key(pem: bytes) -> Any:
    """An Ed25519 public key from PEM (`ValueError` when it is not one)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the hub key is not an Ed25519 public key")
    return key


def verify(public_key: Any, signature: str, message: bytes) -> bool:
    """True when `signature` (base64) is the hub's over `message`."""
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True

"""The technician PIN: stored as a salted PBKDF2 hash in `room.toml`, never as the PIN itself.

`python -m tribune.api.pin` asks for a PIN and prints the `technician_pin = "..."` line.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets
import sys

ITERATIONS = 200_000
MIN_DIGITS = 4


def hash_pin(pin: str, *, iterations: int = ITERATIONS, salt: str | None = None) -> str:
    """`pbkdf2-sha256$ITERATIONS$SALT$HASH` for `pin` (a fresh random salt unless given)."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), iterations)
    return f"pbkdf2-sha256${iterations}${salt}${digest.hex()}"


def verify_pin(pin: str, hashed: str) -> bool:
    """Whether `pin` is the one `hashed` was made from (constant-time comparison)."""
    try:
        scheme, iterations, salt, expected = hashed.split("$")
        rounds = int(iterations)
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return False
    if scheme != "pbkdf2-sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt_bytes, rounds)
    return hmac.compare_digest(digest.hex(), expected)


def main() -> int:
    """Ask for a PIN twice and print the config line."""
    pin = getpass.getpass("technician PIN (digits): ")
    if not pin.isdigit() or len(pin) < MIN_DIGITS:
        sys.stderr.write(f"use {MIN_DIGITS} digits or more\n")
        return 2
    if getpass.getpass("again: ") != pin:
        sys.stderr.write("the two PINs differ\n")
        return 2
    sys.stdout.write(f'[panel]\ntechnician_pin = "{hash_pin(pin)}"\n')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

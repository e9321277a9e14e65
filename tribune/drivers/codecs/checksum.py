"""Checksums used by binary device protocols."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import or_, xor


def sum8(data: bytes) -> int:
    """Low byte of the sum of all bytes (NEC, Samsung MDC, LG)."""
    return sum(data) & 0xFF


def bitwise_or(data: bytes) -> int:
    """Bitwise OR of all bytes (Sony projectors)."""
    return reduce(or_, data, 0)


def bitwise_xor(data: bytes) -> int:
    """Bitwise XOR of all bytes."""
    return reduce(xor, data, 0)


CHECKSUMS: dict[str, Callable[[bytes], int]] = {
    "sum8": sum8,
    "or": bitwise_or,
    "xor": bitwise_xor,
}

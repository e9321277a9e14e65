"""Refuse reply patterns that can backtrack for ever on a hostile reply.

Python's `re` backtracks, and a match cannot be interrupted (not by a timeout, not by a signal:
the engine holds the GIL until it returns). A pattern such as `(a+)+$` takes 2**n steps on
`aaaa...b`, and the bytes it runs on come from the device end of a serial cable or a network
socket. So the shapes that backtrack exponentially are refused when the profile loads:

- a repeat of something that itself repeats a variable number of times: `(a+)+`, `(\\d*x?)*`,
  `(a{1,3}){2,}`. A fixed-count inner repeat (`(?: [0-9]{2})*`) is fine;
- an alternation inside a repeat unless each branch starts with its own literal character:
  `(a|ab)+` is refused; `(?:x\\d|y\\w)+` passes, and `[ab]+` needs no alternation at all.

Polynomial shapes (`\\d*\\d*$`, `.*?\\s*$`) are allowed: a frame is at most the codec's
`max_length` (2048 bytes by default), which bounds them to a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

MAX_PATTERN = 1024

# The parser `re.compile` itself uses; its opcodes are compared by name.
_parser: Any = importlib.import_module("re._parser")

_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})


def check_backtracking(pattern: str | bytes, flags: int = 0) -> None:
    """Raise `ValueError` saying why `pattern` could backtrack exponentially (or is too long).
    `pattern` must already compile."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"pattern of {len(pattern)} characters (at most {MAX_PATTERN})")
    _check(_parser.parse(pattern, flags), inside_repeat=False)


def _check(items: Any, *, inside_repeat: bool) -> None:
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            low, high, body = av
            if inside_repeat and low != high:
                raise ValueError(
                    "nested repeats can backtrack exponentially on a hostile reply "
                    "(e.g. `(a+)+`): repeat a fixed-width part, or use a character class"
                )
            _check(body, inside_repeat=inside_repeat or high > 1)
        elif name == "BRANCH":
            branches = av[1]
            if inside_repeat and not _distinct_first_literals(branches):
                raise ValueError(
                    "an alternation inside a repeat whose branches can start alike can "
                    "backtrack exponentially (e.g. `(a|ab)+`): start each branch with its own "
                    "character, or use a character class"
                )
            for branch in branches:
                _check(branch, inside_repeat=inside_repeat)
        elif name == "SUBPATTERN":
            _check(av[3], inside_repeat=inside_repeat)
        elif name == "ATOMIC_GROUP":
            _check(av, inside_repeat=inside_repeat)
        elif name in ("ASSERT", "ASSERT_NOT"):
            _check(av[1], inside_repeat=inside_repeat)
        elif name == "GROUPREF_EXISTS":
            for branch in av[1:]:
                if branch is not None:
                    _check(branch, inside_repeat=inside_repeat)


def _distinct_first_literals(branches: list[Any]) -> bool:
    """Whether every branch starts with a literal character no other branch starts with
    (compared case-insensitively, which is stricter than needed without `(?i)`)."""
    seen: set[str] = set()
    for branch in branches:
        first = _first_literal(branch)
        if first is None or first in seen:
            return False
        seen.add(first)
    return True


def _first_literal(items: Any) -> str | None:
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            return chr(av).casefold()
        if name == "SUBPATTERN":
            return _first_literal(av[3])
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # takes no character: the next item is the first one
        return None
    return None

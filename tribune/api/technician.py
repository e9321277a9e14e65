"""Technician sessions on the panel: a PIN buys a short-lived bearer token with technician scope.

Wrong PINs are counted: after `MAX_FAILURES` within `WINDOW_S` the exchange is refused until the
oldest failure leaves the window, so a PIN of four digits cannot be tried through in a day.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tribune.api.tokens import Grant, Principal

SESSION_S = 15 * 60
MAX_FAILURES = 5
WINDOW_S = 5 * 60

PIN_TECHNICIAN = Principal("panel", "pin:technician", Grant.TECHNICIAN)


@dataclass
class TechnicianSessions:
    """Live session tokens and the recent wrong PINs."""

    clock: Callable[[], float] = time.monotonic
    ttl_s: float = SESSION_S
    _sessions: dict[str, float] = field(default_factory=dict)  # token -> expiry
    _failures: deque[float] = field(default_factory=deque)

    def open(self) -> tuple[str, float]:
        """A new session token and its lifetime in seconds."""
        self._expire()
        token = secrets.token_urlsafe(32)
        self._sessions[token] = self.clock() + self.ttl_s
        return token, self.ttl_s

    def close(self, token: str) -> None:
        """End a session (the panel's lock button)."""
        self._sessions.pop(token, None)

    def identify(self, presented: str) -> Principal | None:
        """The technician principal if `presented` is a live session token."""
        self._expire()
        found = False
        for token in self._sessions:
            found |= hmac.compare_digest(token.encode(), presented.encode())
        return PIN_TECHNICIAN if found else None

    def retry_after(self) -> float:
        """Seconds until another PIN may be tried (0: now)."""
        now = self.clock()
        while self._failures and self._failures[0] <= now - WINDOW_S:
            self._failures.popleft()
        if len(self._failures) < MAX_FAILURES:
            return 0.0
        return self._failures[0] + WINDOW_S - now

    def failed(self) -> int:
        """Count a wrong PIN; the tries left before the lock-out."""
        self._failures.append(self.clock())
        return max(0, MAX_FAILURES - len(self._failures))

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, expiry in self._sessions.items() if expiry <= now]:
            del self._sessions[token]

"""Wrong bearer tokens counted per client address: past a limit, the client waits (429).

The tokens are 32 random bytes, so guessing one is hopeless either way; the count is there so
that someone trying is seen (the room audits it, the hub logs it) and slowed, and so that one
noisy client costs little. Used by the room API's access middleware and the hub API. The
technician PIN, which is short, has its own stricter counter (`TechnicianSessions`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 10
WINDOW_S = 5 * 60
MAX_CLIENTS = 4096  # addresses remembered; the least recently seen is forgotten first


@dataclass
class FailedAttempts:
    """Recent failures per client address, in a sliding window."""

    limit: int = MAX_FAILURES
    window_s: float = WINDOW_S
    clock: Callable[[], float] = time.monotonic
    max_clients: int = MAX_CLIENTS
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, client: str) -> int:
        """Whole seconds until `client` may try again (0: now)."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window_s - self.clock()))

    def failed(self, client: str) -> int:
        """Count a failure of `client`; its failures now in the window."""
        failures = self._recent(client)
        if failures is None:
            failures = self._failures[client] = deque()
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        self._failures.move_to_end(client)
        failures.append(self.clock())
        return len(failures)

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self.clock() - self.window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

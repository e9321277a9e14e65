"""The topic scheme under `tribune/v1/{site}/{room}/` (see docs/sync.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "tribune/v1"
EVENTS = "events"
RESULTS = "cmd/result"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one room; `room_id` is `site/room` as in `room.toml`."""

    room_id: str

    @property
    def base(self) -> str:
        """`tribune/v1/{site}/{room}`."""
        return f"{PREFIX}/{self.room_id}"

    @property
    def status(self) -> str:
        """Retained `online`/`offline` (the last will)."""
        return f"{self.base}/status"

    @property
    def state(self) -> str:
        """Retained full room snapshot with a revision."""
        return f"{self.base}/state"

    @property
    def cmd(self) -> str:
        """Commands from the hub."""
        return f"{self.base}/cmd"

    def of(self, suffix: str) -> str:
        """The full topic of an outbox row's suffix (`events`, `cmd/result`)."""
        return f"{self.base}/{suffix}"


def utc_now() -> str:
    """Now as ISO 8601 UTC with a `Z`."""
    return iso(datetime.now(UTC))


def iso(when: datetime) -> str:
    """A time as ISO 8601 UTC with a `Z` (milliseconds)."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ts(timestamp: float) -> str:
    """A Unix time as ISO 8601 UTC."""
    return iso(datetime.fromtimestamp(timestamp, UTC))

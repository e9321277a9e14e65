"""The service's recent log lines in memory, for the technician screen."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

CAPACITY = 1000


class LogRing(logging.Handler):
    """Keeps the last `capacity` records as dicts; one per process, on the root logger."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__()
        self.records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self.setFormatter(logging.Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + self.formatter.formatException(record.exc_info)  # type: ignore[union-attr]
            self.records.append(
                {
                    "at": record.created,
                    "level": record.levelname,
                    "logger": record.name,
                    "message": message,
                }
            )
        except Exception:
            self.handleError(record)

    def tail(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` records, oldest first."""
        items = list(self.records)
        return items[-limit:] if limit > 0 else []

    @classmethod
    def installed(cls) -> LogRing:
        """The process's ring on the root logger, added on first use."""
        root = logging.getLogger()
        for handler in root.handlers:
            if isinstance(handler, cls):
                return handler
        ring = cls()
        root.addHandler(ring)
        return ring

"""An adapter pulled out mid-write: pyserial-asyncio's report of it is one warning, no traceback;
other loop errors still reach asyncio's default handler."""

from __future__ import annotations

import asyncio
import errno
import logging
from types import SimpleNamespace
from typing import Any

import pytest
import serial

from tribune.drivers.transport import quiet_serial_faults


async def test_a_serial_write_on_a_vanished_adapter_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    exc = serial.SerialException(f"write failed: [Errno {errno.EIO}] Input/output error")
    context: dict[str, Any] = {
        "message": "Fatal write error on serial transport",
        "exception": exc,
        "transport": SimpleNamespace(serial=SimpleNamespace(port="/dev/tribune/board")),
    }
    with caplog.at_level(logging.WARNING):
        quiet_serial_faults(loop, context)
    [record] = [r for r in caplog.records if r.name == "tribune.drivers.transport"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage().startswith("/dev/tribune/board: write failed")


async def test_other_loop_errors_go_to_the_default_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.ERROR):
        quiet_serial_faults(loop, {"message": "Task exception was never retrieved",
                                   "exception": RuntimeError("boom")})  # fmt: skip
    [record] = [r for r in caplog.records if r.name == "asyncio"]
    assert record.levelno == logging.ERROR
    assert "Task exception was never retrieved" in record.getMessage()

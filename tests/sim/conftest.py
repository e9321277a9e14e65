"""Shared fixtures for the simulator tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tribune.sim import RunningSimulator, start_simulator


@pytest.fixture
async def pjlink() -> AsyncIterator[RunningSimulator]:
    """A class-1 PJLink projector without password on a free port, at speed 30."""
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=30) as sim:
        yield sim

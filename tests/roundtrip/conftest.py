"""The round trips' fixtures: the case's running device and a runtime on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.roundtrip.harness import Case, Device, running
from tribune.drivers.runtime import DeviceRuntime
from tribune.profiles.loader import ProfileLoader


@pytest.fixture
async def device(request: pytest.FixtureRequest, profiles: ProfileLoader) -> AsyncIterator[Device]:
    """The case's simulator, serving TCP or a line-checked pty (parametrised with `over`)."""
    case: Case = request.param
    async with running(case, profiles) as device:
        yield device


@pytest.fixture
async def runtime(device: Device) -> AsyncIterator[DeviceRuntime]:
    """A started runtime without polls, so each exchange is the test's own."""
    rt = device.runtime()
    await rt.start()
    yield rt
    await rt.stop()

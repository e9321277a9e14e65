"""The real Mosquitto of tests/sync, for the fault tests."""

from __future__ import annotations

from tests.sync.conftest import broker  # noqa: F401 - the fixture, for tests here

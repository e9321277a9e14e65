"""A hub (store, MQTT link, API) against the real Mosquitto of tests/sync, next to a real room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.room.conftest import sim_room  # noqa: F401 - the fixture, for tests here
from tests.sync.conftest import Broker, broker  # noqa: F401 - the fixture, for tests here
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app


@dataclass
class RunningHub:
    """The hub's parts and an HTTP client on its API (as a loopback client)."""

    store: HubStore
    link: HubSubscriber
    http: httpx.AsyncClient


@asynccontextmanager
async def running_hub(
    running: Broker, data_dir: Path, *, expiry_margin: float = 30.0
) -> AsyncIterator[RunningHub]:
    """Store, link (connected) and API of a hub on `running`."""
    store = HubStore(data_dir / "hub.db")
    await store.open()
    link = HubSubscriber(
        store,
        "127.0.0.1",
        running.port,
        client_id=f"tribune-hub-{running.port}",
        reconnect_max=1.0,
        expiry_margin=expiry_margin,
        sweep_interval=0.1,
    )
    await link.start()
    transport = httpx.ASGITransport(app=create_hub_app(link))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            yield RunningHub(store, link, http)
    finally:
        await link.stop()
        await store.close()


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    """A folder for the hub's database."""
    folder = tmp_path / "hub"
    folder.mkdir()
    return folder

"""A hub (store, MQTT link, API) against the real Mosquitto of tests/sync, next to a real room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.room.conftest import sim_room  # noqa: F401 - the fixture, for tests here
from tests.sync.conftest import Broker, broker, make_broker  # noqa: F401 - fixtures, for tests here
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.api import create_hub_app
from tribune.hub.auth import create_operator
from tribune.hub.publisher import Publisher


@dataclass
class RunningHub:
    """The hub's parts and an HTTP client on its API, with an admin's token."""

    store: HubStore
    link: HubSubscriber
    http: httpx.AsyncClient
    token: str

    async def client_as(self, name: str, role: str) -> httpx.AsyncClient:
        """Another client on the same app, with a new operator's token (close it)."""
        token = await create_operator(self.store, name, role)
        return httpx.AsyncClient(
            transport=self.http._transport,
            base_url="http://hub",
            headers={"Authorization": f"Bearer {token}"},
        )


@asynccontextmanager
async def running_hub(
    running: Broker,
    data_dir: Path,
    *,
    expiry_margin: float = 30.0,
    publisher: Publisher | None = None,
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
        publisher=publisher,
    )
    await link.start()
    try:
        await store.remove_operator("test-admin")  # a hub run again on the same data dir
        token = await create_operator(store, "test-admin", "admin")
        transport = httpx.ASGITransport(app=create_hub_app(link))
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://hub", headers=headers
        ) as http:
            yield RunningHub(store, link, http, token)
    finally:
        await link.stop()
        await store.close()


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    """A folder for the hub's database."""
    folder = tmp_path / "hub"
    folder.mkdir()
    return folder

"""The hub's `[broker]` TLS settings, end to end: a `hub.toml` naming a CA and the hub's client
certificate links the hub to the shipped broker setup (deploy/mosquitto: certificates required,
the ACL keyed on their CN), a room with its own certificate reaches it, and a command goes out
and its result comes back. Without its certificate the hub does not get in.

tests/sync/test_deploy_broker.py does the same with a bare MQTT client standing in for the
hub; this is the hub itself, built from its config file the way `tribune hub` builds it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.room.conftest import SimRoom
from tests.sync.conftest import free_port, linked_room
from tests.sync.test_deploy_broker import make_pki, shipped_config
from tribune.errors import ConfigError
from tribune.hub import HubStore, HubSubscriber
from tribune.hub.config import broker_link, load_hub_config

ROOM = "baku/room-1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA made as deploy/mosquitto/README.md says, with the hub's and the rooms' certificates."""
    folder = tmp_path_factory.mktemp("pki")
    make_pki(folder)
    return folder


def write_hub_toml(folder: Path, pki: Path, port: int, *, certificate: bool = True) -> Path:
    """A hub.toml beside a `tls/` folder holding the CA and (or not) the hub's key pair."""
    tls = folder / "tls"
    tls.mkdir(parents=True)
    shutil.copy(pki / "ca.pem", tls / "ca.pem")
    lines = [
        "[hub]",
        f'data_dir = "{folder / "data"}"',
        "",
        "[broker]",
        f'url = "mqtts://127.0.0.1:{port}"',
        'ca_file = "tls/ca.pem"',  # relative to hub.toml
    ]
    if certificate:
        shutil.copy(pki / "hub.pem", tls / "hub.pem")
        shutil.copy(pki / "hub.key", tls / "hub.key")
        lines += ['cert_file = "tls/hub.pem"', 'key_file = "tls/hub.key"']
    path = folder / "hub.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@asynccontextmanager
async def hub_from(path: Path) -> AsyncIterator[HubSubscriber]:
    """The hub's store and broker link as `run_hub` makes them from `path`."""
    config = load_hub_config(path)
    link = broker_link(config.broker, path.parent)
    store = HubStore(Path(config.hub.data_dir) / "hub.db")
    Path(config.hub.data_dir).mkdir(parents=True, exist_ok=True)
    await store.open()
    hub = HubSubscriber(
        store,
        link.host,
        link.port,
        tls=link.tls,
        username=link.username,
        password=link.password,
        client_id=link.client_id,
        reconnect_max=1.0,
        sweep_interval=0.1,
    )
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
        await store.close()


async def until(check: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_the_hub_links_over_tls_with_its_client_certificate(
    sim_room: SimRoom, make_broker: Any, pki: Path, tmp_path: Path
) -> None:
    port = free_port()
    make_broker(shipped_config(pki, port))
    async with (
        hub_from(write_hub_toml(tmp_path / "hub", pki, port)) as hub,
        linked_room(
            sim_room,
            f"mqtts://127.0.0.1:{port}",
            ca_file=str(pki / "ca.pem"),
            cert_file=str(pki / "room-a.pem"),
            key_file=str(pki / "room-a.key"),
        ) as (room, link),
    ):
        await asyncio.wait_for(hub.connected.wait(), 10)
        await asyncio.wait_for(link.connected.wait(), 10)

        async def online() -> bool:
            found = await hub.store.room(ROOM, events=0)
            return found is not None and found["status"] == "online"

        await until(online)
        command_id = await hub.send_command(
            [ROOM], "scene.activate", {"scene": "class-start"}, "operator:tls", 60
        )

        async def done() -> bool:
            found = await hub.store.command(command_id)
            return found is not None and found["rooms"][ROOM]["status"] == "done"

        await until(done)
        assert room.desired["projector"]["power"] == "on"


async def test_without_its_certificate_the_hub_does_not_get_in(
    make_broker: Any, pki: Path, tmp_path: Path
) -> None:
    port = free_port()
    make_broker(shipped_config(pki, port))
    async with hub_from(write_hub_toml(tmp_path / "hub", pki, port, certificate=False)) as hub:
        await asyncio.sleep(1.5)  # the broker drops it after the TLS handshake, again and again
        assert not hub.connected.is_set()


def test_unreadable_tls_files_are_a_config_error(pki: Path, tmp_path: Path) -> None:
    path = write_hub_toml(tmp_path / "hub", pki, 8883)
    (path.parent / "tls" / "hub.key").write_text("not a key\n")
    config = load_hub_config(path)
    with pytest.raises(ConfigError, match="broker TLS files"):
        broker_link(config.broker, path.parent)
    (path.parent / "tls" / "hub.key").unlink()
    with pytest.raises(ConfigError, match="broker TLS files"):
        broker_link(config.broker, path.parent)


def test_a_certificate_without_a_key_or_tls_files_on_plain_mqtt_are_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.toml"
    for broker, words in (
        ('url = "mqtts://h:8883"\ncert_file = "c.pem"', "cert_file and key_file together"),
        ('url = "mqtt://h:1883"\nca_file = "ca.pem"', "need an mqtts:// url"),
    ):
        path.write_text(f"[broker]\n{broker}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=words):
            load_hub_config(path)

"""The shipped broker setup (deploy/mosquitto/) on a real Mosquitto: certificates, ACL, sessions.

The broker runs `tribune.conf` as shipped, with only its port and its folder changed, and the
shipped `acl`; the certificates come from the shipped `ca.cnf`, made as its README says.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.room.conftest import SimRoom
from tests.sync.conftest import Broker, free_port, linked_room
from tribune.sync.topics import iso

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
ETC = "/etc/mosquitto/tribune/"  # where tribune.conf expects its files
LISTENER = "listener 8883\n"
A = "tribune/v1/baku/room-1"
B = "tribune/v1/baku/room-2"
# The certificates: file name → CN (a room's CN is its id; `/` is escaped in openssl's -subj).
CLIENTS = {"hub": "hub", "room-a": "baku\\/room-1", "room-b": "baku\\/room-2"}
# The test broker is 127.0.0.1, not the name ca.cnf's `[server]` carries.
SERVER_EXT = """[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
"""


def persistent(seconds: int = 600) -> dict[str, Any]:
    """Client options for a session the broker keeps `seconds` after a disconnect."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = seconds
    return {"clean_start": False, "properties": props}


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def _issue(folder: Path, name: str, cn: str, *extra: str) -> None:
    """A P-256 key and a certificate from the CA for `/CN=cn`."""
    _openssl(
        folder,
        *("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
        *("-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr"),
    )
    _openssl(
        folder,
        *("ca", "-config", "ca.cnf", "-batch", "-days", "2"),
        *("-in", f"{name}.csr", "-out", f"{name}.pem", *extra),
    )


def make_pki(folder: Path) -> None:
    """The CA as README.md makes it, a server certificate, the clients' and an empty CRL."""
    shutil.copy(DEPLOY / "ca.cnf", folder)
    (folder / "issued").mkdir()
    (folder / "index.txt").touch()
    (folder / "serial").write_text("1000\n")
    (folder / "crlnumber").write_text("1000\n")
    _openssl(
        folder,
        *("req", "-config", "ca.cnf", "-x509", "-new", "-newkey", "ec"),
        *("-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"),
        *("-subj", "/CN=Tribune test CA", "-extensions", "ca_root"),
        *("-keyout", "ca.key", "-out", "ca.pem"),
    )
    (folder / "server.ext").write_text(SERVER_EXT)
    _issue(folder, "server", "127.0.0.1", "-extfile", "server.ext", "-extensions", "server")
    for name, cn in CLIENTS.items():
        _issue(folder, name, cn)
    _openssl(folder, "ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem")
    shutil.copy(DEPLOY / "acl", folder)


def shipped_config(folder: Path, port: int) -> str:
    """tribune.conf with its files in `folder` and its listener on 127.0.0.1:`port`."""
    text = (DEPLOY / "tribune.conf").read_text()
    assert LISTENER in text
    config = text.replace(LISTENER, f"listener {port} 127.0.0.1\n").replace(ETC, f"{folder}/")
    settings = [line for line in config.splitlines() if not line.startswith("#")]
    assert not [line for line in settings if "/etc/" in line]  # every file it names is ours
    return config


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CA and its certificates for the module (openssl takes a moment)."""
    folder = tmp_path_factory.mktemp("pki")
    make_pki(folder)
    return folder


@dataclass
class Shipped:
    """The broker running the shipped config, and a way to connect as `hub`, `room-a`..."""

    broker: Broker
    tls_port: int
    pki: Path

    def tls(self, name: str | None) -> ssl.SSLContext:
        """Trusts the test CA; shows `name`'s certificate (None: no certificate)."""
        context = ssl.create_default_context(cafile=self.pki / "ca.pem")
        if name is not None:
            context.load_cert_chain(self.pki / f"{name}.pem", self.pki / f"{name}.key")
        return context

    def client(self, name: str | None, timeout: float = 5, **options: Any) -> aiomqtt.Client:
        """An MQTT 5 client on the TLS listener."""
        return aiomqtt.Client(
            "127.0.0.1",
            self.tls_port,
            protocol=aiomqtt.ProtocolVersion.V5,
            tls_context=self.tls(name),
            timeout=timeout,
            **options,
        )


@pytest.fixture
def shipped(make_broker: Any, pki: Path) -> Shipped:
    """Mosquitto with tribune.conf and acl as shipped (port and paths aside)."""
    tls_port = free_port()
    return Shipped(make_broker(shipped_config(pki, tls_port)), tls_port, pki)


@dataclass
class Inbox:
    """What one client received: (topic, payload bytes)."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def payloads(self, topic: str) -> list[bytes]:
        """Payloads received on `topic`."""
        return [p for t, p in self.messages if t == topic]

    def has(self, payload: bytes) -> bool:
        """Whether `payload` arrived on any topic."""
        return any(p == payload for _, p in self.messages)

    async def wait_for(self, check: Any, timeout: float = 5.0) -> None:
        """Until `check()` is true."""
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)


@asynccontextmanager
async def collecting(client: aiomqtt.Client, *topics: str) -> AsyncIterator[Inbox]:
    """Subscribe (QoS 1) to `topics` and collect what arrives while the block runs."""
    inbox = Inbox()
    for topic in topics:
        await client.subscribe(topic, qos=1)

    async def collect() -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            inbox.messages.append((str(message.topic), message.payload))

    task = asyncio.create_task(collect())
    try:
        yield inbox
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def command(cid: str, scene: str) -> bytes:
    """A `scene.activate` command with a deadline a minute away."""
    deadline = iso(datetime.now(UTC) + timedelta(minutes=1))
    body = {
        "id": cid,
        "action": "scene.activate",
        "args": {"scene": scene},
        "issued_by": "operator:test",
        "deadline": deadline,
    }
    return json.dumps(body).encode()


async def test_a_room_and_the_hub_talk_over_tls_with_their_certificates(
    sim_room: SimRoom, shipped: Shipped
) -> None:
    pem = shipped.pki
    async with (
        shipped.client("hub") as hub,
        collecting(hub, "tribune/v1/#") as heard,
        linked_room(
            sim_room,
            f"mqtts://127.0.0.1:{shipped.tls_port}",
            ca_file=str(pem / "ca.pem"),
            cert_file=str(pem / "room-a.pem"),
            key_file=str(pem / "room-a.key"),
        ) as (room, link),
    ):
        await asyncio.wait_for(link.connected.wait(), 5)
        await heard.wait_for(lambda: heard.payloads(f"{A}/status") and heard.payloads(f"{A}/state"))
        assert json.loads(heard.payloads(f"{A}/status")[0])["status"] == "online"
        await hub.publish(f"{A}/cmd", command("deploy-1", "class-start"), qos=1)
        await heard.wait_for(lambda: heard.payloads(f"{A}/cmd/result"))
        result = json.loads(heard.payloads(f"{A}/cmd/result")[0])
        assert (result["id"], result["status"]) == ("deploy-1", "done")
        assert room.desired["projector"]["power"] == "on"
        await heard.wait_for(lambda: heard.payloads(f"{A}/events"))
        assert any(
            json.loads(p)["type"] == "audit" and json.loads(p)["data"]["action"] == "scene.activate"
            for p in heard.payloads(f"{A}/events")
        )


async def test_a_room_writes_only_its_own_topics_and_reads_only_its_own_commands(
    shipped: Shipped,
) -> None:
    async with (
        shipped.client("hub") as hub,
        shipped.client("room-a") as room_a,
        shipped.client("room-b") as room_b,
        collecting(hub, "tribune/v1/#") as at_hub,
        # Room A asks for room B's commands, and for everything.
        collecting(room_a, f"{B}/cmd", "tribune/v1/#") as at_a,
        collecting(room_b, f"{B}/cmd") as at_b,
    ):
        for topic in ("status", "state", "events", "cmd/result", "cmd"):
            await room_a.publish(f"{B}/{topic}", b"forged", qos=1)
        await room_a.publish(f"{A}/cmd", b"forged", qos=1)
        await room_b.publish(f"{A}/cmd", b"forged", qos=1)
        # Allowed ones after the forbidden ones: once these arrive, those would have too.
        for topic in ("status", "state", "events", "cmd/result"):
            await room_a.publish(f"{A}/{topic}", f"a-{topic}".encode(), qos=1)
        await hub.publish(f"{B}/cmd", b"for-b", qos=1)
        await hub.publish(f"{A}/cmd", b"for-a", qos=1)
        await at_hub.wait_for(lambda: at_hub.has(b"a-cmd/result"))
        await at_a.wait_for(lambda: at_a.has(b"for-a"))
        await at_b.wait_for(lambda: at_b.has(b"for-b"))
        await asyncio.sleep(0.1)
    for topic in ("status", "state", "events", "cmd/result"):
        assert at_hub.payloads(f"{A}/{topic}") == [f"a-{topic}".encode()]
    assert not at_hub.has(b"forged"), at_hub.messages
    assert {p for _, p in at_a.messages} == {b"for-a"}, at_a.messages
    assert at_b.messages == [(f"{B}/cmd", b"for-b")]


async def test_no_client_certificate_no_connection(shipped: Shipped) -> None:
    # TLS 1.3: the broker's refusal comes after the client's handshake, as a timeout here.
    with pytest.raises(aiomqtt.MqttError):
        async with shipped.client(None, timeout=1):
            pass
    # The test fixture's own plain listener: no anonymous access there either.
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", shipped.broker.port, username="hub", timeout=5):
            pass


async def test_commands_for_an_offline_room_outlive_a_restart_and_a_borrowed_client_id(
    shipped: Shipped,
) -> None:
    def room_b() -> aiomqtt.Client:
        return shipped.client("room-b", identifier="tribune-baku-room-2", **persistent())

    async with room_b() as first:
        await first.subscribe(f"{B}/cmd", qos=1)
    async with shipped.client("hub") as hub:
        await hub.publish(f"{B}/cmd", b"while-away", qos=1)
    # Room A connects with room B's client id: the broker uses A's name instead, so room B's
    # session (and the command waiting in it) stays room B's.
    async with (
        shipped.client("room-a", identifier="tribune-baku-room-2", **persistent()) as room_a,
        collecting(room_a, "tribune/v1/#") as at_a,
    ):
        await asyncio.sleep(0.3)
    assert not at_a.messages
    # The test broker saves its sessions anyway; production relies on tribune.conf for it.
    assert "\npersistence true\n" in (DEPLOY / "tribune.conf").read_text()
    shipped.broker.stop()
    shipped.broker.start()
    async with room_b() as again, collecting(again) as at_b:
        await at_b.wait_for(lambda: at_b.has(b"while-away"))

"""Credentials against a real Mosquitto: a per-room password and ACL, a client certificate."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiomqtt

from tests.room.conftest import SimRoom
from tests.sync.conftest import free_port, linked_room, listening

ACL = """
user hub
topic readwrite tribune/v1/#

user baku-room-1
topic write tribune/v1/baku/room-1/status
topic write tribune/v1/baku/room-1/state
topic write tribune/v1/baku/room-1/events
topic write tribune/v1/baku/room-1/cmd/result
topic read tribune/v1/baku/room-1/cmd

user baku-room-2
topic write tribune/v1/baku/room-2/#
"""


async def test_the_acl_stops_room_a_publishing_under_room_b(
    sim_room: SimRoom, make_broker: Any, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwd"
    for i, (user, password) in enumerate(
        [("hub", "hub-secret"), ("baku-room-1", "room1-secret"), ("baku-room-2", "room2-secret")]
    ):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwords), user, password], check=True)
    (tmp_path / "acl").write_text(ACL)
    broker = make_broker(
        f"allow_anonymous false\npassword_file {passwords}\nacl_file {tmp_path / 'acl'}\n"
    )
    (sim_room.data_dir / "mqtt-password").write_text("room1-secret\n")
    hub = {
        "hostname": "127.0.0.1",
        "port": broker.port,
        "username": "hub",
        "password": "hub-secret",
        "protocol": aiomqtt.ProtocolVersion.V5,
    }
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(**hub) as watcher:
        await watcher.subscribe("tribune/v1/#", qos=1)

        async def collect() -> None:
            async for message in watcher.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                seen.append((str(message.topic), payload))

        task = asyncio.create_task(collect())
        async with linked_room(
            sim_room, broker.url, username="baku-room-1", password_file="mqtt-password"
        ) as (_, link):
            await asyncio.wait_for(link.connected.wait(), 5)  # its own prefix works
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="baku-room-1",
                password="room1-secret",
                protocol=aiomqtt.ProtocolVersion.V5,
                identifier="intruder",
            ) as room_a:
                await room_a.publish("tribune/v1/baku/room-2/state", b"forged", qos=1)
                await room_a.publish("tribune/v1/baku/room-2/cmd", b"forged", qos=1)
                await room_a.publish("tribune/v1/baku/room-1/cmd", b"forged", qos=1)
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="baku-room-2",
                password="room2-secret",
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as room_b:
                await room_b.publish("tribune/v1/baku/room-2/state", b"genuine", qos=1)
            for _ in range(50):
                if any(p == b"genuine" for _, p in seen):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
        task.cancel()
    topics = {t for t, _ in seen}
    assert "tribune/v1/baku/room-1/status" in topics
    assert ("tribune/v1/baku/room-2/state", b"genuine") in seen
    assert not any(p == b"forged" for _, p in seen), seen


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> None:
    """A local CA, a server certificate for 127.0.0.1 and a room's client certificate."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=tribune test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    for name, subject, ext in [
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("room", "/CN=baku-room-1", "extendedKeyUsage=clientAuth"),
    ]:
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=folder,
        )
        (folder / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
            cwd=folder,
        )


async def test_tls_with_a_client_certificate(
    sim_room: SimRoom, make_broker: Any, tmp_path: Path
) -> None:
    pki = sim_room.data_dir / "pki"
    pki.mkdir()
    await asyncio.to_thread(make_certificates, pki)
    tls_port = free_port()
    broker = make_broker(
        "allow_anonymous true\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\nuse_identity_as_username true\n"
    )
    async with (
        listening(broker.port, "tribune/v1/baku/room-1/status") as seen,
        linked_room(
            sim_room,
            f"mqtts://127.0.0.1:{tls_port}",
            ca_file="pki/ca.pem",
            cert_file="pki/room.pem",
            key_file="pki/room.key",
        ) as (_, link),
    ):
        await asyncio.wait_for(link.connected.wait(), 10)
        await seen.wait_for(lambda: any(s["status"] == "online" for s in seen.on("status")))

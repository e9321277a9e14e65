"""Cisco RoomOS xAPI terminal simulator over real TCP and a pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.sim.sim_clients import PtyClient, TcpClient
from tribune.sim import RunningSimulator, start_simulator

OK = b"** end\r\n\r\nOK\r\n"
ERROR = b"** end\r\n\r\nERROR\r\n"


@pytest.fixture
async def codec() -> AsyncIterator[RunningSimulator]:
    async with start_simulator(
        "cisco-roomos", tcp=("127.0.0.1", 0), pty=True, baud=115200, speed=10
    ) as sim:
        yield sim


async def ask(client: PtyClient | TcpClient, request: bytes) -> bytes:
    await client.send(request)
    reply = b""
    while not reply.endswith((b"\r\nOK\r\n", b"\r\nERROR\r\n")):
        reply += await client.read_until(b"\r\n")
    return reply


async def test_dial_rings_then_connects_and_hangs_up(codec: RunningSimulator) -> None:
    client = await TcpClient.connect(codec.port)
    assert await ask(client, b"xStatus Call\r\n") == OK
    assert await ask(client, b'xCommand Dial Number: "room42@example.com"\r\n') == (
        b"*r DialResult (status=OK): \r\n*r DialResult CallId: 1\r\n"
        b"*r DialResult ConferenceId: 1\r\n" + OK
    )
    assert await ask(client, b"xStatus Call 1 Status\r\n") == b"*s Call 1 Status: Dialling\r\n" + OK
    await asyncio.sleep(0.1)  # 0.5 s dialling at speed 10
    assert await ask(client, b"xstatus call 1 status\r\n") == (
        b"*s Call 1 Status: Connecting\r\n" + OK
    )
    assert await ask(client, b"xStatus SystemUnit State NumberOfActiveCalls\r\n") == (
        b"*s SystemUnit State NumberOfActiveCalls: 0\r\n" + OK
    )
    await asyncio.sleep(0.35)  # 3 s ringing at speed 10
    assert await ask(client, b"xStatus SystemUnit State NumberOfActiveCalls\r\n") == (
        b"*s SystemUnit State NumberOfActiveCalls: 1\r\n" + OK
    )
    status = await ask(client, b"xStatus Call\r\n")
    assert b"*s Call 1 Status: Connected\r\n" in status
    assert b'*s Call 1 RemoteNumber: "room42@example.com"\r\n' in status
    assert await ask(client, b"xCommand Call Disconnect\r\n") == (
        b"*r CallDisconnectResult (status=OK): \r\n" + OK
    )
    assert await ask(client, b"xCommand Call Disconnect\r\n") == (
        b"*r CallDisconnectResult (status=Error): \r\n"
        b'*r CallDisconnectResult Reason: "No active call(s) found"\r\n' + ERROR
    )
    await client.close()


async def test_mute_preset_and_system_unit_over_serial(codec: RunningSimulator) -> None:
    port = PtyClient(codec.path, baud=115200)
    try:
        assert await ask(port, b"xCommand Audio Microphones Mute\r") == (
            b"*r MicrophonesMuteResult (status=OK): \r\n" + OK
        )
        assert await ask(port, b"xStatus Audio Microphones Mute\r") == (
            b"*s Audio Microphones Mute: On\r\n" + OK
        )
        assert await ask(port, b"xCommand Audio Microphones Unmute\r") == (
            b"*r MicrophonesUnmuteResult (status=OK): \r\n" + OK
        )
        assert await ask(port, b"xCommand Audio Volume Set Level: 70\r") == (
            b"*r AudioVolumeSetResult (status=OK): \r\n" + OK
        )
        assert await ask(port, b"xStatus Audio Volume\r") == b"*s Audio Volume: 70\r\n" + OK
        assert await ask(port, b"xCommand Camera Preset Activate PresetId: 2\r") == (
            b"*r PresetActivateResult (status=OK): \r\n" + OK
        )
        assert await ask(port, b"xCommand Camera Preset Activate PresetId: 9\r") == (
            b"*r PresetActivateResult (status=Error): \r\n*r PresetActivateResult Reason: "
            b'"Preset not found"\r\n' + ERROR
        )
        assert await ask(port, b"xStatus SystemUnit Software Version\r") == (
            b'*s SystemUnit Software Version: "ce9.15.3.17 f1e26a5ef10 2021-06-29"\r\n' + OK
        )
        unit = await ask(port, b"xStatus SystemUnit\r")
        assert b'*s SystemUnit ProductId: "Cisco Webex Room Kit"\r\n' in unit
        assert b'*s SystemUnit Hardware Module SerialNumber: "FOC2247N0XY"\r\n' in unit
        assert (await ask(port, b"xStatus Bogus Thing\r")).endswith(ERROR)
        assert (await ask(port, b"xCommand Bogus\r")).startswith(b"*r Result (status=Error)")
        await port.send(b"hello\r")
        assert await port.read_until(b"\r\n") == b"Command not recognized.\r\n"
    finally:
        port.close()


async def test_feedback_one_byte_at_a_time_and_busy(codec: RunningSimulator) -> None:
    client = await TcpClient.connect(codec.port)
    other = await TcpClient.connect(codec.port)
    await client.send_slowly(b"xFeedback Register /Status/Call\n")
    assert await client.read_until(b"OK\r\n") == OK
    assert await ask(client, b"xFeedback Register /Event/CallDisconnect\r\n") == OK
    await ask(other, b'xCommand Dial Number: "1234"\r\n')
    assert await client.read_until(b"** end\r\n") == b"*s Call 1 Status: Dialling\r\n** end\r\n"
    assert await client.read_until(b"** end\r\n") == (b"*s Call 1 Status: Connecting\r\n** end\r\n")
    assert await client.read_until(b"** end\r\n") == (
        b"*s Call 1 AnswerState: Answered\r\n** end\r\n"
    )
    assert await client.read_until(b"** end\r\n") == b"*s Call 1 Status: Connected\r\n** end\r\n"
    await ask(other, b"xCommand Call Disconnect CallId: 1\r\n")
    disconnect = await client.read_until(b"** end\r\n")
    assert disconnect.startswith(b"*e CallDisconnect CauseValue: 1\r\n")
    assert await other.read_nothing(0.1) == b""  # not registered: no feedback
    codec.faults.busy = True
    assert (await ask(client, b"xStatus Call\r\n")).endswith(ERROR)
    await client.close()
    await other.close()

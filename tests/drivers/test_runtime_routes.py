"""Switcher ties the runtime learns on its own: front-panel reports never pass for replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tribune.drivers.runtime import DeviceRuntime, Source
from tribune.profiles.schema import Profile


def switcher_profile(route: dict[str, Any]) -> Profile:
    """A three-output switcher profile with this `route` capability."""
    return Profile.model_validate(
        {
            "id": "test-switcher",
            "name": "test switcher",
            "kind": "switcher",
            "vendor": "test",
            "protocol": "test protocol",
            "codec": "line",
            "codec_options": {"terminator": "", "accept": ["\r\n"]},
            "timing": {"reply_timeout": 0.5, "retries": 0},
            "capabilities": {"route": {"outputs": ["1", "2", "3"], **route}},
        }
    )


# Extron SIS: the view answers the bare input; the tie answers `Out2 In1 All`.
SIS = switcher_profile(
    {
        "get": {"send": "{output}%", "reply": r"0*(?P<value>\d+)$"},
        "set": {
            "send": "{input}*{output}!",
            "reply": r"Out0*(?P<output>\d+) In0*(?P<input>\d+) All",
        },
    }
)
# Kramer Protocol 3000: the view answers `~01@VID 3>1`, the front panel reports the same form.
P3000 = switcher_profile(
    {
        "get": {"send": "#VID? {output}", "reply": r"~\d+@VID (?P<value>\d+)>(?P<output>\d+)"},
        "set": {
            "send": "#VID {input}>{output}",
            "reply": r"~\d+@VID (?P<input>\d+)>(?P<output>\d+) OK",
        },
    }
)

Script = Callable[[bytes], bytes]


@pytest.fixture
async def switcher() -> AsyncIterator[tuple[list[Script], int]]:
    """A TCP switcher that answers each command with the next scripted reply."""
    script: list[Script] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while command := await reader.read(64):
            writer.write(script.pop(0)(command))
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield script, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_front_panel_tie_before_the_reply_is_not_the_reply(
    switcher: tuple[list[Script], int],
) -> None:
    script, port = switcher
    # Someone ties input 4 to output 2 on the front panel just as our tie to output 2 arrives.
    script.append(lambda _: b"Out02 In04 All\r\nOut2 In1 All\r\n")
    script.append(lambda _: b"Out3 In2 All\r\n3\r\n")  # front panel again, then the view reply
    rt = DeviceRuntime("sw", SIS, f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        await rt.set("route", {"2": "1"})
        assert rt.state["route"].value == {"2": "1"}
        assert await rt.get("route", output="1") == {"1": "3"}
        assert rt.state["route"].value == {"1": "3", "2": "1", "3": "2"}
        script.append(lambda _: b"Out3 In4 All\r\n")
        await rt.set("route", {"3": "4"})  # the other outputs keep their ties
        assert rt.state["route"].value == {"1": "3", "2": "1", "3": "4"}
    finally:
        await rt.stop()


async def test_unsolicited_tie_updates_the_route(switcher: tuple[list[Script], int]) -> None:
    script, port = switcher
    script.append(lambda _: b"2\r\n")
    rt = DeviceRuntime("sw", SIS, f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("route", output="3") == {"3": "2"}
        script.append(lambda _: b"Out03 In01 All\r\nOut9 In1 All\r\nReconfig\r\n4\r\n")
        assert await rt.get("route", output="1") == {"1": "4"}
        reading = rt.state["route"]
        assert reading.value == {"1": "4", "3": "1"}  # output 9 does not exist: ignored
    finally:
        await rt.stop()
    assert reading.source is Source.REPLY


async def test_a_view_answers_only_for_its_own_output(switcher: tuple[list[Script], int]) -> None:
    script, port = switcher
    script.append(lambda _: b"~01@VID 3>2\r\n~01@VID 4>1\r\n")
    rt = DeviceRuntime("sw", P3000, f"tcp://127.0.0.1:{port}", poll=False)
    await rt.start()
    try:
        assert await rt.get("route", output="1") == {"1": "4"}
        assert rt.state["route"].value == {"1": "4", "2": "3"}
    finally:
        await rt.stop()

"""Values from people and programs never become extra device commands; odd ports fail cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.errors import LinkError, NotSupportedError
from tribune.profiles.loader import ProfileLoader
from tribune.sim import start_simulator


@pytest.fixture(scope="module")
def loader() -> ProfileLoader:
    return ProfileLoader()


@pytest.mark.parametrize(
    "route",
    [{"1": "4*2!3*3!1"}, {"1": "2\r1*3!"}, {"1*2!": "2"}, {"1": ""}, {"1": "x"}],
)
def test_route_values_cannot_carry_commands(loader: ProfileLoader, route: dict[str, str]) -> None:
    runtime = DeviceRuntime("switcher", loader.load("extron-sis").profile, "tcp://127.0.0.1:9")
    cap = runtime.compiled.capability("route")
    with pytest.raises(NotSupportedError):
        runtime.compiled.normalize(cap, route)


def test_route_numbers_are_canonical(loader: ProfileLoader) -> None:
    runtime = DeviceRuntime("switcher", loader.load("extron-sis").profile, "tcp://127.0.0.1:9")
    cap = runtime.compiled.capability("route")
    assert runtime.compiled.normalize(cap, {"01": "02"}) == {"1": "2"}
    assert runtime.compiled.same_value(cap, {"1": "2"}, {"1": "2", "2": "1"})


@pytest.mark.parametrize(
    "number", ['1001"\rxCommand Audio Microphones Mute\r', "1001\n", "a b", "x" * 65, ""]
)
async def test_action_parameters_cannot_carry_commands(loader: ProfileLoader, number: str) -> None:
    runtime = DeviceRuntime("codec", loader.load("cisco-roomos").profile, "tcp://127.0.0.1:9")
    with pytest.raises(NotSupportedError, match="may hold only"):
        await runtime.action("dial", {"number": number})


async def test_a_sip_address_is_a_fine_number(loader: ProfileLoader) -> None:
    async with start_simulator("cisco-roomos", tcp=("127.0.0.1", 0), speed=50) as sim:
        runtime = DeviceRuntime(
            "codec", loader.load("cisco-roomos").profile, f"tcp://127.0.0.1:{sim.port}", poll=False
        )
        await runtime.start()
        try:
            await runtime.action("dial", {"number": "room-1@baku.example.az"})
        finally:
            await runtime.stop()


async def test_a_port_that_refuses_its_line_settings_is_an_error_not_a_hang(
    loader: ProfileLoader, tmp_path: Path
) -> None:
    """A pty cannot do parity on this kernel: opening it 8E1 fails inside termios."""
    async with start_simulator("nec-projector", pty=True, link=str(tmp_path / "tty")) as sim:
        profile = loader.load("sony-projector").profile  # 38400 8E1
        runtime = DeviceRuntime("projector", profile, str(sim.link), poll=False)
        await runtime.start()
        try:
            # Either the kernel refuses the settings (a link error, reported) or the port takes
            # them; what must not happen is a request that never ends.
            outcome = await asyncio.wait_for(
                asyncio.gather(runtime.get("power"), return_exceptions=True), 5
            )
            if isinstance(outcome[0], LinkError):
                assert runtime.health.status in (HealthStatus.ERROR, HealthStatus.OFFLINE)
        finally:
            await runtime.stop()

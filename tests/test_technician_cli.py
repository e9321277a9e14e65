"""The technician CLI as a technician runs it: a real process against a real simulator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tribune.sim import Power, RunningSimulator, start_simulator

REPO = Path(__file__).resolve().parent.parent
PROFILES = sorted(str(p) for p in (REPO / "firmware-profiles").glob("*/*.yaml"))


async def tribune(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m tribune ARGS`; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tribune",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def projector() -> AsyncIterator[RunningSimulator]:
    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=10, password="secret") as s:
        yield s


def port_of(sim: RunningSimulator) -> str:
    return f"socket://127.0.0.1:{sim.port}"


async def test_send_power_on_then_query_warming_then_on(projector: RunningSimulator) -> None:
    port = port_of(projector)
    dev = ["--profile", "pjlink", "--port", port, "--password", "secret"]
    code, out, err = await tribune("send", *dev, "power", "on")
    assert code == 0, err
    code, out, _ = await tribune("query", *dev, "power")
    assert (code, out.strip()) == (0, "warming")
    for _ in range(50):  # warm-up is 30 s at speed 10
        code, out, _ = await tribune("query", *dev, "power")
        if out.strip() == "on":
            break
        await asyncio.sleep(0.2)
    assert (code, out.strip()) == (0, "on")


async def test_password_from_environment(projector: RunningSimulator) -> None:
    code, out, err = await tribune(
        "query",
        "--profile",
        "pjlink",
        "--port",
        port_of(projector),
        "--json",
        "lamp_hours",
        env={"TRIBUNE_DEVICE_PASSWORD": "secret"},
    )
    assert code == 0, err
    assert json.loads(out)["value"] >= 0


async def test_wrong_password_exits_3(projector: RunningSimulator) -> None:
    code, _, err = await tribune(
        "query", "--profile", "pjlink", "--port", port_of(projector), "--password", "x", "power"
    )
    assert code == 3
    assert "authentication failed" in err


async def test_unreachable_exits_4() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    code, _, err = await tribune(
        "query", "--profile", "pjlink", "--port", f"tcp://127.0.0.1:{port}", "power"
    )
    assert code == 4
    assert "refused" in err


async def test_refused_command_exits_5(projector: RunningSimulator) -> None:
    # The simulated projector has no storage input: PJLink answers ERR2 (out of parameter).
    projector.sim.power.force(Power.ON)
    dev = ["--profile", "pjlink", "--port", port_of(projector), "--password", "secret"]
    code, _, err = await tribune("send", *dev, "input", "storage1")
    assert code == 5
    assert "ERR2" in err


async def test_input_while_off_is_refused_at_once(projector: RunningSimulator) -> None:
    """ERR3 in standby will not pass by waiting: say so instead of retrying for minutes."""
    dev = ["--profile", "pjlink", "--port", port_of(projector), "--password", "secret"]
    code, _, err = await asyncio.wait_for(tribune("send", *dev, "input", "digital1"), 10)
    assert code == 5
    assert "turn it on first" in err


async def test_invalid_value_exits_2(projector: RunningSimulator) -> None:
    dev = ["--profile", "pjlink", "--port", port_of(projector), "--password", "secret"]
    code, _, err = await tribune("send", *dev, "input", "hdmi9")
    assert code == 2
    assert "not one of" in err


async def test_validate_shipped_profiles() -> None:
    code, out, err = await tribune("profile", "validate", *PROFILES)
    assert code == 0, out + err
    assert out.count(": ok") == len(PROFILES)


async def test_validate_misspelt_field_names_file_line_field(tmp_path: Path) -> None:
    source = (REPO / "firmware-profiles" / "projector" / "pjlink.yaml").read_text()
    lines = source.splitlines()
    line_no = next(i for i, line in enumerate(lines) if line.startswith("timing:")) + 1
    lines[line_no - 1] = "timnig:"
    bad = tmp_path / "projector" / "pjlink.yaml"
    bad.parent.mkdir()
    bad.write_text("\n".join(lines) + "\n")
    code, out, _ = await tribune("profile", "validate", str(bad))
    assert code == 2
    assert out.startswith(f"{bad}:{line_no}: timnig")
    assert "did you mean 'timing'" in out


async def test_profile_list_and_show() -> None:
    code, out, _ = await tribune("profile", "list", "--json")
    assert code == 0
    ids = {row["id"] for row in json.loads(out)}
    assert {"pjlink", "pjlink-class2"} <= ids
    code, out, _ = await tribune("profile", "show", "pjlink")
    assert code == 0
    assert "power" in out
    assert "PJLink" in out
    code, _, _err = await tribune("profile", "show", "no-such-profile")
    assert code == 2


async def test_help_documents_exit_codes() -> None:
    code, out, _ = await tribune("send", "--help")
    assert code == 0
    for line in ("3  authentication failed", "4  no reply", "5  the device refused"):
        assert line in out
    code, _, _ = await tribune("send", "--no-such-flag")
    assert code == 2

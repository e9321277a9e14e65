"""Run `python -m tribune` as a technician would, beside simulators in the test's event loop."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PROFILES = REPO / "firmware-profiles"


@dataclass(frozen=True, slots=True)
class Run:
    """A finished `tribune` process."""

    code: int
    out: str
    err: str


async def tribune(*args: str, env: dict[str, str] | None = None, timeout: float = 50) -> Run:
    """Run `python -m tribune ARGS` without blocking the loop the simulators run on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tribune",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())

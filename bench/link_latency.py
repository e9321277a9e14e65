"""Link latency benchmark: prints one JSON object on stdout (`--quick` for a CI smoke run).

    .venv/bin/python bench/link_latency.py [--iterations N] [--quick] [--cprofile FILE]

What is measured, every figure from `time.perf_counter_ns`, after a warm-up:

- `first_byte_ms`: a `DeviceRuntime` on a real pty (`os.openpty()`; the runtime opens the slave
  path through pyserial) and a serial profile from `PTY_CASES` (the first that runs). The
  benchmark plays the device on the master rather than using a simulator's pty, so the stamp is
  exact: a reader registered with `loop.add_reader` stamps the first byte of each request and
  answers each command line as the profile expects, so no request times out. Measured from just
  before `runtime.get(...)` to that stamp. The reader runs in the runtime's own loop, so the
  stamp is taken at the loop's next select after the write, where any asyncio code would see
  it. A pty does not pace bytes at the baud rate: this is software latency only. The profile's
  `gap` is set to 0 (a deliberate pause after each reply, 50-100 ms, not latency); polls are off.
- `pjlink_roundtrip_ms` / `pjlink_roundtrip_auth_ms`: `await runtime.get("power")` against the
  PJLink simulator over TCP, without and with a password (the digest only prefixes the first
  command of a connection, so both should match once connected).
- `raw_socket_ms`: the same exchange with bare asyncio streams on one kept-open connection
  (greeting handled by hand, `%1POWR ?\\r` written, read until `\\r`): the floor for asyncio.
- `pypjlink_ms`: the third-party synchronous `pypjlink2` client, `Projector.get_power()`.

For a fair comparison all PJLink clients talk to the same kind of simulator: a separate process
(this script with `--serve-sim`, running `tribune.sim.start_simulator`), so the simulator never
shares a loop or a GIL with the client being timed (it can run on the other core), and the
blocking pypjlink client can run in this process without stalling it. The clients run one after
the other on one simulator, never at once; the password run gets its own simulator.

Budget: PJLink round trip p50 at most 1 ms above the raw-socket p50; first byte p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tribune.drivers.runtime import DeviceRuntime
from tribune.errors import TribuneError
from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import Profile

HOST = "127.0.0.1"
PASSWORD = "bench-secret"
DEFAULT_ITERATIONS = 500
QUICK_ITERATIONS = 50
BUDGET = {"first_byte_p99_ms": 10.0, "overhead_vs_raw_p50_ms": 1.0}

Stats = dict[str, float | int]


def summarize(samples_ns: list[int]) -> Stats:
    """p50/p99/max in milliseconds (nearest rank) and the sample count."""
    ordered = sorted(samples_ns)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1e6

    return {
        "p50": round(rank(50), 4),
        "p99": round(rank(99), 4),
        "max": round(ordered[-1] / 1e6, 4),
        "n": len(ordered),
    }


# --- first byte on a real pty ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PtyCase:
    """A serial profile the pty device can play: what to ask and how to answer each line."""

    profile_id: str
    capability: str
    terminator: bytes
    answer: Callable[[bytes], bytes]


def _kramer_answer(line: bytes) -> bytes:
    """Protocol 3000: `#MUTE? 1` gets `~01@MUTE 1,0`; anything else is not available (ERR 002)."""
    return b"~01@MUTE 1,0\r\n" if line == b"#MUTE? 1" else b"~01@ERR 002\r\n"


def _epson_answer(line: bytes) -> bytes:
    """ESC/VP21: `PWR?` gets `PWR=01` then the `:` prompt; the wake-up CR gets a bare prompt."""
    return b"PWR=01\r:" if line == b"PWR?" else b":"


# Tried in order until one runs: a plain line protocol first, then Epson's prompt protocol.
PTY_CASES = (
    PtyCase("kramer-p3000", "mute", b"\r", _kramer_answer),
    PtyCase("epson-escvp21", "power", b"\r", _epson_answer),
)


class PtyDevice:
    """The device end of a real pty: answers each command line, stamps each request's first byte."""

    def __init__(self, case: PtyCase) -> None:
        self.case = case
        self.master, self._slave = os.openpty()
        # Holding the slave open keeps the master readable (no EIO) while the runtime reconnects.
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.first_byte_ns: int | None = None
        self._buffer = bytearray()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start answering in `loop`."""
        loop.add_reader(self.master, self._on_readable)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop answering and close both ends."""
        loop.remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)

    def take_first_byte(self) -> int:
        """When the first byte since the last call arrived (`perf_counter_ns`)."""
        stamp, self.first_byte_ns = self.first_byte_ns, None
        if stamp is None:
            raise RuntimeError("the runtime answered without writing to the pty")
        return stamp

    def _on_readable(self) -> None:
        now = time.perf_counter_ns()
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        if data and self.first_byte_ns is None:
            self.first_byte_ns = now
        self._buffer += data
        terminator = self.case.terminator
        while (end := self._buffer.find(terminator)) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + len(terminator)]
            os.write(self.master, self.case.answer(line))


def without_gap(profile: Profile) -> Profile:
    """The profile with no pause between exchanges."""
    timing = profile.timing.model_copy(update={"gap": 0.0})
    return profile.model_copy(update={"timing": timing})


async def first_byte_samples(
    case: PtyCase, profile: Profile, iterations: int, warmup: int
) -> list[int]:
    """Nanoseconds from each `runtime.get(...)` call to its first byte on the pty master."""
    device = PtyDevice(case)
    loop = asyncio.get_running_loop()
    device.attach(loop)
    runtime = DeviceRuntime("bench-pty", profile, device.path, poll=False)
    samples: list[int] = []
    try:
        await runtime.start()
        for i in range(warmup + iterations):
            started = time.perf_counter_ns()
            await runtime.get(case.capability)
            first_byte = device.take_first_byte()
            if i >= warmup:
                samples.append(first_byte - started)
    finally:
        await runtime.stop()
        device.detach(loop)
    return samples


async def measure_first_byte(iterations: int, warmup: int) -> tuple[Stats, str]:
    """First byte on the wire with the first case of `PTY_CASES` that runs; its profile id."""
    loader = ProfileLoader()
    problems = []
    for case in PTY_CASES:
        try:
            profile = without_gap(loader.load(case.profile_id).profile)
            samples = await first_byte_samples(case, profile, iterations, warmup)
        except TribuneError as exc:  # a profile that changed under the benchmark: try the next
            problems.append(f"{case.profile_id}: {exc}")
            continue
        return summarize(samples), case.profile_id
    raise RuntimeError("no serial profile runs on the pty: " + "; ".join(problems))


# --- PJLink clients ----------------------------------------------------------------------------


@contextlib.contextmanager
def simulator_process(password: str | None) -> Iterator[int]:
    """A PJLink simulator in its own process; yields its TCP port."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-sim"]
    if password is not None:
        command += ["--password", password]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the simulator did not start (said {line!r})")
        yield int(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the simulator exits at end of input
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def serve_simulator(password: str | None) -> None:
    """Serve the PJLink simulator on a free port (printed first) until stdin closes."""
    from tribune.sim import start_simulator

    async with start_simulator("pjlink", tcp=(HOST, 0), password=password) as sim:
        sys.stdout.write(f"{sim.port}\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        await stdin.read()


async def time_async(once: Callable[[], Awaitable[object]], iterations: int, warmup: int) -> Stats:
    """Time `iterations` awaits of `once()` after `warmup` untimed ones."""
    for _ in range(warmup):
        await once()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter_ns()
        await once()
        samples.append(time.perf_counter_ns() - started)
    return summarize(samples)


async def measure_runtime(
    port: int, password: str | None, iterations: int, warmup: int, cprofile: Path | None
) -> Stats:
    """`await runtime.get("power")` on a PJLink runtime (the connection opens during warm-up)."""
    profile = ProfileLoader().load("pjlink").profile
    url = f"tcp://{HOST}:{port}"
    runtime = DeviceRuntime("bench-pjlink", profile, url, password=password, poll=False)
    await runtime.start()
    profiler = cProfile.Profile() if cprofile is not None else None

    async def once() -> object:
        return await runtime.get("power")

    try:
        for _ in range(warmup):  # connects, and authenticates when a password is set
            await once()
        if profiler is not None:
            profiler.enable()
        stats = await time_async(once, iterations, 0)
    finally:
        if profiler is not None:
            profiler.disable()
        await runtime.stop()
    if profiler is not None and cprofile is not None:
        profiler.dump_stats(cprofile)
    return stats


async def measure_raw_socket(
    port: int, password: str | None, iterations: int, warmup: int
) -> Stats:
    """The floor: the same exchange with bare asyncio streams on one kept-open connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        greeting = (await reader.readuntil(b"\r")).decode("ascii").split()
        prefix = b""
        if greeting[1] == "1":
            secret = (greeting[2] + (password or "")).encode("ascii")
            prefix = hashlib.md5(secret, usedforsecurity=False).hexdigest().encode("ascii")

        async def once() -> bytes:
            nonlocal prefix
            writer.write(prefix + b"%1POWR ?\r")
            prefix = b""
            await writer.drain()
            reply = await reader.readuntil(b"\r")
            if not reply.startswith(b"%1POWR="):
                raise RuntimeError(f"unexpected reply {reply!r}")
            return reply

        return await time_async(once, iterations, warmup)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def measure_pypjlink(port: int, iterations: int, warmup: int) -> Stats:
    """The synchronous third-party client (`pypjlink2`) on one connection."""
    from pypjlink import Projector

    with Projector.from_address(HOST, port, timeout=5) as projector:
        projector.authenticate(None)
        for _ in range(warmup):
            projector.get_power()
        samples = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            projector.get_power()
            samples.append(time.perf_counter_ns() - started)
    return summarize(samples)


# --- the report --------------------------------------------------------------------------------


def run(iterations: int, cprofile: Path | None) -> dict[str, Any]:
    """Run every measurement and build the report."""
    warmup = max(10, iterations // 10)
    first_byte, pty_profile = asyncio.run(measure_first_byte(iterations, warmup))
    with simulator_process(None) as port:
        roundtrip = asyncio.run(measure_runtime(port, None, iterations, warmup, cprofile))
        raw = asyncio.run(measure_raw_socket(port, None, iterations, warmup))
        pypjlink = measure_pypjlink(port, iterations, warmup)
    with simulator_process(PASSWORD) as port:
        roundtrip_auth = asyncio.run(measure_runtime(port, PASSWORD, iterations, warmup, None))
    overhead = round(float(roundtrip["p50"]) - float(raw["p50"]), 4)
    within = (
        float(first_byte["p99"]) < BUDGET["first_byte_p99_ms"]
        and overhead <= BUDGET["overhead_vs_raw_p50_ms"]
    )
    return {
        "first_byte_ms": first_byte,
        "first_byte_profile": pty_profile,
        "pjlink_roundtrip_ms": roundtrip,
        "pjlink_roundtrip_auth_ms": roundtrip_auth,
        "raw_socket_ms": raw,
        "pypjlink_ms": pypjlink,
        "overhead_vs_raw_p50_ms": overhead,
        "ratio_to_pypjlink_p50": round(float(roundtrip["p50"]) / float(pypjlink["p50"]), 3),
        "budget": BUDGET,
        "within_budget": within,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    """Parse flags; print the report as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, metavar="N")
    parser.add_argument("--quick", action="store_true", help=f"N={QUICK_ITERATIONS} (CI smoke)")
    parser.add_argument(
        "--cprofile", type=Path, metavar="FILE", help="cProfile the PJLink runtime round trips"
    )
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--password", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sim:
        asyncio.run(serve_simulator(args.password))
        return 0
    iterations = QUICK_ITERATIONS if args.quick else args.iterations
    if iterations < 1:
        parser.error("--iterations must be at least 1")
    report = run(iterations, args.cprofile)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

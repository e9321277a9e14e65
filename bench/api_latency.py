"""Room service latency and idle cost, end to end: prints one JSON object on stdout.

    .venv/bin/python bench/api_latency.py [--iterations N] [--idle-seconds S] [--quick]
                                          [--cprofile FILE]

Three processes besides this one, so no two parties share an event loop: the demo room's
simulators (this script with `--serve-sims`), the service (`python -m tribune serve` on the demo
room's config, written with `tribune.demo.DEMO_TOML`) and, for the idle figures, `python -m
tribune demo`. Every port is a free loopback port picked here; every process started here is
stopped on the way out, on error too (SIGTERM, then SIGKILL after 5 s).

The room is the demo's six devices, with one change: the Extron switcher is not a simulator's pty
but a real pty whose master this script plays (`ExtronLine`, in a thread with a blocking
`select`): it stamps the first byte of every command with `time.perf_counter_ns` and answers
with the Extron simulator's own command table, so the runtime accepts each reply, reads back
after each set and sees the same device its polls see. A pty does not pace bytes at the baud
rate: these are software latencies. The other five devices are the demo's simulators, polled
as in the demo, so the service is not idle apart from the benchmark's traffic.

- `tap_to_wire_ms`: the panel tap. On one loopback HTTP/1.1 keep-alive connection (`http.client`,
  marked as the panel with `X-Tribune-Origin: panel`), `PATCH /api/v1/room/desired` toggles the
  switcher's audio mute; measured from just before the request is written to the first byte of
  `1Z`/`0Z` on the pty master. That path holds the durable write of the intent and its audit
  entry (SQLite, `synchronous=FULL`, so an fsync on the data dir's filesystem, reported as
  `data_dir_filesystem`). Each tap waits for the set's read-back and then for the profile's
  pacing `gap` to pass, so a tap queues behind another exchange only when a poll happens to run
  (as on a real lectern); `tap_to_wire_clear_line_ms` leaves those taps out and
  `taps_behind_other_traffic` counts them.
- `reply_to_ws_ms`: the device speaks first. The played switcher reports a front-panel volume
  change (`Vol42` CR LF, alternating with `Vol57`), stamped just before `os.write`; measured to
  the WebSocket client (`/api/v1/ws`, websockets' sync client) receiving the `device` event
  whose reported volume is that value.
- `idle`: `tribune demo` (its six polled simulated devices in the same process) left alone for
  `--idle-seconds` once every device is online and the first reads are done: CPU as utime + stime
  from `/proc/PID/stat` (children excluded) over wall time, and VmRSS at the end.
  `idle.service_only` is the same for the latency run's `tribune serve` process over the same
  window (the two windows run at once, both processes idle), whose simulators live elsewhere.

Budget: tap -> wire p99 < 10 ms, reply -> WebSocket p99 < 20 ms, idle CPU < 2 % of one core,
RSS < 120 MB (both for `tribune demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from websockets.sync.client import connect as ws_connect

from tribune.demo import DEMO_TOML
from tribune.profiles.loader import ProfileLoader
from tribune.sim.extron import COMMAND_CHARS, CRLF, ExtronSimulator

HOST = "127.0.0.1"
DEFAULT_ITERATIONS = 300
DEFAULT_IDLE_SECONDS = 60.0
QUICK_ITERATIONS = 20
QUICK_IDLE_SECONDS = 3.0
DEMO_SPEED = 10.0  # `tribune demo`'s default
BUDGET = {
    "tap_to_wire_p99_ms": 10.0,
    "reply_to_ws_p99_ms": 20.0,
    "idle_cpu_percent_of_one_core": 2.0,
    "idle_rss_mb": 120.0,
}
SWITCHER = "switcher"
VOLUMES = (42, 57)  # neither ends in 0 or 1, so no mute pattern could take them
STARTUP_SECONDS = 30.0
REPLY_SECONDS = 5.0

Stats = dict[str, float | int]


def summarize(samples_ns: list[int]) -> Stats:
    """p50/p99/max in milliseconds (nearest rank) and the sample count."""
    if not samples_ns:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    ordered = sorted(samples_ns)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1e6

    return {
        "p50": round(rank(50), 4),
        "p99": round(rank(99), 4),
        "max": round(ordered[-1] / 1e6, 4),
        "n": len(ordered),
    }


# --- the switcher, played on a real pty --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heard:
    """One command from the service: when its first byte arrived and when it was answered."""

    first_byte_ns: int
    command: str
    answered_ns: int


class ExtronLine:
    """The Extron switcher's end of a real pty, played in a thread, every command stamped."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        # Holding the slave open keeps the master readable (no EIO) while the service reconnects.
        self.path = os.ttyname(self._slave)
        self.sim = ExtronSimulator()
        self.heard: list[Heard] = []
        self._changed = threading.Condition()
        self._write_lock = threading.Lock()
        self._partial = ""
        self._partial_started = 0
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="extron-line", daemon=True)

    def __enter__(self) -> ExtronLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop_write, b"x")
        self._thread.join(5)
        for fd in (self.master, self._slave, self._stop_read, self._stop_write):
            os.close(fd)

    def front_panel_volume(self, level: int) -> int:
        """Turn the volume knob: the switcher reports `Vol{level}`; returns the write's stamp."""
        self.sim.state.volume = level
        with self._write_lock:
            stamp = time.perf_counter_ns()
            os.write(self.master, f"Vol{level}".encode() + CRLF)
        return stamp

    def wait_for(self, command: str, start: int, timeout: float) -> int:
        """Index of the first `command` heard from index `start` on."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.heard)):
                    if self.heard[index].command == command:
                        return index
                start = max(start, len(self.heard))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the service did not send {command!r} to the switcher")
                self._changed.wait(left)

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.master, self._stop_read], [], [])
            now = time.perf_counter_ns()
            if self._stop_read in ready:
                return
            try:
                data = os.read(self.master, 4096)
            except OSError:
                continue
            # As the switcher parses: a command runs when its command character arrives.
            for char in data.decode("latin-1"):
                if char in "\r\n":
                    continue
                if not self._partial:
                    self._partial_started = now
                self._partial += char
                if char.upper() in COMMAND_CHARS:
                    self._answer(self._partial)
                    self._partial = ""

    def _answer(self, command: str) -> None:
        reply = self.sim.execute(command[:-1] + command[-1].upper()).encode() + CRLF
        with self._write_lock:
            os.write(self.master, reply)
            answered = time.perf_counter_ns()
        with self._changed:
            self.heard.append(Heard(self._partial_started, command, answered))
            self._changed.notify_all()


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def child(command: list[str], log_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process (output to `log_path`), stopped by SIGTERM (then SIGKILL) on the way out."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def died(proc: subprocess.Popen[str], log_path: Path, what: str) -> RuntimeError:
    """The error for a child that stopped or never got ready, with the end of its log."""
    tail = log_path.read_text(errors="replace")[-2000:]
    return RuntimeError(f"{what} is not ready (exit code {proc.poll()}); its log ends:\n{tail}")


def get_json(port: int, path: str) -> Any:
    """GET a JSON document from the local API (no token: a loopback client)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        connection.close()


def wait_until_online(proc: subprocess.Popen[str], port: int, log_path: Path, what: str) -> int:
    """Wait until the service answers and every device is online; the number of devices."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise died(proc, log_path, what)
        with contextlib.suppress(OSError, http.client.HTTPException, RuntimeError):
            devices = get_json(port, "/api/v1/room")["devices"]
            if devices and all(device["online"] for device in devices.values()):
                return len(devices)
        time.sleep(0.2)
    raise died(proc, log_path, what)


def serve_sims(folder: Path) -> None:
    """`--serve-sims`: the demo's simulators but the switcher; their ports as JSON, until EOF."""
    from tribune.sim import start_simulator

    async def run() -> None:
        async with contextlib.AsyncExitStack() as stack:
            ports: dict[str, str] = {}
            for name, sim_id in (
                ("projector", "epson-escvp21"),
                ("board", "smart-board"),
                ("codec", "cisco-roomos"),
                ("monitor", "samsung-mdc"),
            ):
                sim = await stack.enter_async_context(
                    start_simulator(sim_id, speed=DEMO_SPEED, pty=True, link=str(folder / name))
                )
                ports[name] = str(sim.link)
            pjlink = await stack.enter_async_context(
                start_simulator("pjlink", speed=DEMO_SPEED, tcp=(HOST, 0))
            )
            ports["projector2"] = f"tcp://{HOST}:{pjlink.port}"
            sys.stdout.write(json.dumps(ports) + "\n")
            sys.stdout.flush()
            loop = asyncio.get_running_loop()
            stdin = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
            await stdin.read()

    asyncio.run(run())


# --- measurements ------------------------------------------------------------------------------


@dataclass
class TapResult:
    """Panel tap to first byte: every sample, and those that found the line clear."""

    all_ns: list[int]
    clear_ns: list[int]


def measure_taps(line: ExtronLine, port: int, iterations: int, warmup: int) -> TapResult:
    """Toggle the switcher's mute over HTTP; time each request to its command's first byte."""
    gap_ns = int(ProfileLoader().load("extron-sis").profile.timing.gap * 1e9)
    connection = http.client.HTTPConnection(HOST, port, timeout=REPLY_SECONDS)
    headers = {"Content-Type": "application/json", "X-Tribune-Origin": "panel"}
    result = TapResult([], [])
    try:
        for i in range(warmup + iterations):
            mute = not line.sim.state.audio_mute
            body = json.dumps({SWITCHER: {"mute": "on" if mute else "off"}})
            set_command = f"{int(mute)}Z"
            start = len(line.heard)
            started = time.perf_counter_ns()
            connection.request("PATCH", "/api/v1/room/desired", body, headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 202:
                raise RuntimeError(f"PATCH: {response.status} {answer[:300]!r}")
            found = line.wait_for(set_command, start, REPLY_SECONDS)
            # The runtime reads the value back after a set: wait for it, then out of its gap.
            line.wait_for("Z", found + 1, REPLY_SECONDS)
            time.sleep(gap_ns / 1e9 + 0.01)
            if i < warmup:
                continue
            sample = line.heard[found].first_byte_ns - started
            result.all_ns.append(sample)
            previous = line.heard[found - 1] if found > 0 else None
            waited = found > start or (
                previous is not None and previous.answered_ns > started - gap_ns - 5_000_000
            )
            if not waited:
                result.clear_ns.append(sample)
    finally:
        connection.close()
    return result


def measure_reply_to_ws(line: ExtronLine, port: int, iterations: int, warmup: int) -> list[int]:
    """Front-panel volume changes on the pty; time each to its WebSocket event."""
    samples: list[int] = []
    url = f"ws://{HOST}:{port}/api/v1/ws"
    with ws_connect(url, open_timeout=REPLY_SECONDS, max_size=None) as ws:
        first = json.loads(ws.recv(timeout=REPLY_SECONDS))
        if first.get("type") != "snapshot":
            raise RuntimeError(f"the WebSocket did not start with a snapshot: {first!r}")
        for i in range(warmup + iterations):
            level = VOLUMES[i % 2]
            if line.sim.state.volume == level:
                level = VOLUMES[(i + 1) % 2]
            written = line.front_panel_volume(level)
            while True:
                text = ws.recv(timeout=REPLY_SECONDS)
                received = time.perf_counter_ns()
                message = json.loads(text)
                if message.get("type") != "event" or message.get("kind") != "device":
                    continue
                data = message["data"]
                volume = data.get("reported", {}).get("volume", {}).get("value")
                if data.get("id") == SWITCHER and str(volume) == str(level):
                    break
            if i >= warmup:
                samples.append(received - written)
            time.sleep(0.005)
    return samples


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (all its threads, no children), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """VmRSS of process `pid` in MB."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return math.nan


def measure_idle(pids: dict[str, int], seconds: float) -> dict[str, dict[str, float]]:
    """CPU (% of one core) and RSS of each process over the same `seconds` of wall time."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return {
        name: {
            "cpu_percent_of_one_core": round(100 * (cpu_seconds(pid) - before[name]) / wall, 3),
            "rss_mb": round(rss_mb(pid), 1),
            "seconds": round(wall, 1),
        }
        for name, pid in pids.items()
    }


def filesystem_of(path: Path) -> str:
    """The type of the filesystem holding `path` (from /proc/mounts)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    with contextlib.suppress(OSError):
        for row in Path("/proc/mounts").read_text().splitlines():
            parts = row.split()
            mount = parts[1]
            if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(
                mount
            ) >= len(best):
                best, kind = mount, parts[2]
    return kind


# --- the report --------------------------------------------------------------------------------


def run(iterations: int, idle_seconds: float, quick: bool, cprofile: Path | None) -> dict[str, Any]:
    """Start everything, measure, stop everything; the report."""
    warmup = max(5, iterations // 10)
    settle = 1.0 if quick else 5.0
    python = [sys.executable]
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tribune-bench-")))
        sims_log = scratch / "sims.log"
        sims = stack.enter_context(
            child([*python, str(Path(__file__).resolve()), "--serve-sims", str(scratch)], sims_log)
        )
        assert sims.stdout is not None
        announced = sims.stdout.readline()
        if not announced.strip():
            raise died(sims, sims_log, "the simulators")
        ports = json.loads(announced)
        line = stack.enter_context(ExtronLine())
        config = scratch / "room.toml"
        config.write_text(DEMO_TOML.format(switcher=line.path, **ports), encoding="utf-8")
        service_port = free_port()
        service_log = scratch / "service.log"
        profiler = ["-m", "cProfile", "-o", str(cprofile)] if cprofile is not None else []
        service = stack.enter_context(
            child(
                [*python, *profiler, "-m", "tribune", "serve", "--config", str(config),
                 "--data-dir", str(scratch / "service-data"), "--port", str(service_port)],
                service_log,
            )
        )  # fmt: skip
        wait_until_online(service, service_port, service_log, "tribune serve")
        time.sleep(settle)  # the first round of polls
        taps = measure_taps(line, service_port, iterations, warmup)
        replies = measure_reply_to_ws(line, service_port, iterations, warmup)

        demo_port = free_port()
        demo_log = scratch / "demo.log"
        demo = stack.enter_context(
            child(
                [*python, "-m", "tribune", "demo", "--port", str(demo_port),
                 "--data-dir", str(scratch / "demo-data"), "--speed", str(DEMO_SPEED)],
                demo_log,
            )
        )  # fmt: skip
        devices = wait_until_online(demo, demo_port, demo_log, "tribune demo")
        time.sleep(settle)
        idle = measure_idle({"demo": demo.pid, "service": service.pid}, idle_seconds)
        for proc, log_path, what in (
            (service, service_log, "tribune serve"),
            (demo, demo_log, "tribune demo"),
        ):
            if proc.poll() is not None:
                raise died(proc, log_path, what)
        data_fs = filesystem_of(scratch)

    tap_stats = summarize(taps.all_ns)
    reply_stats = summarize(replies)
    demo_idle = idle["demo"]
    within = {
        "tap_to_wire_p99_ms": float(tap_stats["p99"]) < BUDGET["tap_to_wire_p99_ms"],
        "reply_to_ws_p99_ms": float(reply_stats["p99"]) < BUDGET["reply_to_ws_p99_ms"],
        "idle_cpu_percent_of_one_core": demo_idle["cpu_percent_of_one_core"]
        < BUDGET["idle_cpu_percent_of_one_core"],
        "idle_rss_mb": demo_idle["rss_mb"] < BUDGET["idle_rss_mb"],
    }
    return {
        "tap_to_wire_ms": tap_stats,
        "tap_to_wire_clear_line_ms": summarize(taps.clear_ns),
        "taps_behind_other_traffic": len(taps.all_ns) - len(taps.clear_ns),
        "reply_to_ws_ms": reply_stats,
        "idle": {**demo_idle, "devices": devices, "service_only": {**idle["service"]}},
        "data_dir_filesystem": data_fs,
        "budget": BUDGET,
        "within_budget": all(within.values()),
        "within_each": within,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
    }


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds, so every child is stopped


def main(argv: list[str] | None = None) -> int:
    """Parse flags; print the report as one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, metavar="N")
    parser.add_argument("--idle-seconds", type=float, default=DEFAULT_IDLE_SECONDS, metavar="S")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"N={QUICK_ITERATIONS}, S={QUICK_IDLE_SECONDS:g} (CI smoke)",
    )
    parser.add_argument(
        "--cprofile", type=Path, metavar="FILE", help="run the service under cProfile into FILE"
    )
    parser.add_argument("--serve-sims", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sims is not None:
        serve_sims(args.serve_sims)
        return 0
    iterations = QUICK_ITERATIONS if args.quick else args.iterations
    idle_seconds = QUICK_IDLE_SECONDS if args.quick else args.idle_seconds
    if iterations < 1 or idle_seconds <= 0:
        parser.error("--iterations and --idle-seconds must be positive")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cprofile = args.cprofile.resolve() if args.cprofile is not None else None
    report = run(iterations, idle_seconds, args.quick, cprofile)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

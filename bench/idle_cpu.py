"""Idle cost of polling: CPU and memory of one process driving six devices, printed as JSON.

    .venv/bin/python bench/idle_cpu.py [--seconds 30] [--quick]

Six simulators (two PJLink projectors, an Epson projector, an Extron switcher, a Kramer
switcher, a Samsung display) run in a separate process, so only tribune's side is measured. This
process runs one `DeviceRuntime` per device with the shipped profiles' poll plans, waits until
every device is online and its first reads are done, then measures CPU time (user + system, from
`resource.getrusage`) over the window, and the resident set size at the end.

Budget: < 2 % of one core, RSS < 120 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

from tribune.drivers.runtime import DeviceRuntime, HealthStatus
from tribune.profiles.loader import ProfileLoader

DEVICES = [
    ("projector-1", "pjlink", "pjlink"),
    ("projector-2", "pjlink", "pjlink"),
    ("projector-3", "epson-escvp21", "epson-escvp21"),
    ("switcher-1", "extron-sis", "extron-sis"),
    ("switcher-2", "kramer-p3000", "kramer-p3000"),
    ("display-1", "samsung-mdc", "samsung-mdc"),
]
BUDGET = {"cpu_percent_of_one_core": 2.0, "rss_mb": 120.0}
BASE_PORT = 47_300


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(seconds: float) -> dict[str, object]:
    sims = []
    for i, (_, _, sim_id) in enumerate(DEVICES):
        sims.append(
            subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
                [
                    sys.executable,
                    "-m",
                    "tribune",
                    "sim",
                    sim_id,
                    "--tcp",
                    f"127.0.0.1:{BASE_PORT + i}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    runtimes: list[DeviceRuntime] = []
    try:
        await asyncio.sleep(1.5)
        loader = ProfileLoader()
        for i, (device_id, profile_id, _) in enumerate(DEVICES):
            profile = loader.load(profile_id).profile
            runtime = DeviceRuntime(device_id, profile, f"tcp://127.0.0.1:{BASE_PORT + i}")
            await runtime.start()
            runtimes.append(runtime)
        for _ in range(200):  # up to 20 s for every device to answer
            if all(rt.health.status is HealthStatus.ONLINE for rt in runtimes):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # let the first round of reads finish
        online = sum(rt.health.status is HealthStatus.ONLINE for rt in runtimes)
        cpu_before, wall_before = _cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu = _cpu_seconds() - cpu_before
        wall = time.monotonic() - wall_before
        rss = _rss_mb()
    finally:
        for runtime in runtimes:
            await runtime.stop()
        for proc in sims:
            proc.terminate()
            proc.wait(5)
    percent = 100 * cpu / wall
    return {
        "devices": len(DEVICES),
        "online": online,
        "seconds": round(wall, 1),
        "cpu_percent_of_one_core": round(percent, 3),
        "rss_mb": round(rss, 1),
        "budget": BUDGET,
        "within_budget": percent < BUDGET["cpu_percent_of_one_core"] and rss < BUDGET["rss_mb"],
    }


def main() -> int:
    """Run the measurement and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="a 5 s window (CI smoke)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    seconds = 5.0 if args.quick else args.seconds
    print(json.dumps(asyncio.run(_measure(seconds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

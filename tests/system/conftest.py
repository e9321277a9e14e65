"""The system test's fixtures: the image, the host simulator and the booted guest.

These tests boot a real Linux kernel under QEMU (TCG): minutes, not seconds. They run with
`make system-test` (TRIBUNE_SYSTEM_TEST=1) and are deselected from every other pytest run.
Without qemu or debootstrap they skip, with the reason, unless CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.system.image import Image, build_image, build_wheels, default_cache_dir
from tests.system.image import missing_tools as image_missing_tools
from tests.system.simhost import HostSimulator
from tests.system.vm import Vm

HERE = Path(__file__).resolve().parent
ENABLE = "TRIBUNE_SYSTEM_TEST"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "system: boots the guest under QEMU (make system-test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the system tests unless TRIBUNE_SYSTEM_TEST=1 (make system-test sets it)."""
    if os.environ.get(ENABLE) == "1":
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if Path(str(item.fspath)).is_relative_to(HERE) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# Each system test's outcome (test name -> "ok" or the first line of its failure), for the summary.
OUTCOMES: dict[str, str] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or report.outcome != "passed":
        if report.passed:
            OUTCOMES.setdefault(item.name, "ok")
        elif call.excinfo is not None:
            first = str(call.excinfo.value).strip().splitlines() or [call.excinfo.typename]
            OUTCOMES[item.name] = f"{report.outcome.upper()}: {first[0][:300]}"
    return report


def in_ci() -> bool:
    """CI=true: a missing tool is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_tools() -> list[str]:
    """Tools the system test needs and this machine lacks."""
    missing = image_missing_tools()
    if os.geteuid() != 0:
        missing.append("root (debootstrap, chroot)")
    return missing


@dataclass
class SystemRun:
    """Everything one run of the system test holds (the guest boots once per session)."""

    image: Image
    sim: HostSimulator
    vm: Vm
    report: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    write: object = None

    def say(self, line: str) -> None:
        """Print a line now, past pytest's capture, and keep it for the summary."""
        self.report.append(line)
        writer = self.write
        if callable(writer):
            writer(line)
        else:
            print(line)  # noqa: T201


def wheels_dir() -> Path:
    """The wheels to install: $TRIBUNE_WHEELS, else `make wheels` (dist/wheels)."""
    given = os.environ.get("TRIBUNE_WHEELS")
    if given:
        return Path(given)
    return build_wheels(log=lambda _line: None)


@pytest.fixture(scope="session")
def system(request: pytest.FixtureRequest) -> Iterator[SystemRun]:
    """The booted guest, with the projector simulator on the host."""
    missing = missing_tools()
    if missing:
        reason = (
            f"system test needs {', '.join(missing)} (apt-get install debootstrap "
            "qemu-system-x86 qemu-utils e2fsprogs)"
        )
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def write(line: str) -> None:
        """Print past pytest's output capture (it redirects fd 1 while a test runs)."""
        suspended = capture.global_and_fixture_disabled() if capture is not None else None
        with suspended or contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line, flush=True)  # noqa: T201

    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    wheels = wheels_dir()
    wheel_seconds = time.monotonic() - started
    write(f"[system] wheels: {wheels} ({wheel_seconds:.0f} s)")
    image = build_image(wheels, cache=cache, log=lambda line: write(f"[system]   {line}"))
    write(
        f"[system] image {image.key}: {'built' if image.built else 'from the cache'} "
        f"in {image.seconds:.0f} s"
    )
    run_dir = cache / "runs" / time.strftime("%Y%m%d-%H%M%S")
    shutil.rmtree(run_dir, ignore_errors=True)
    sim = HostSimulator()
    sim.start()
    vm = Vm(image, run_dir, simulator_port=sim.port)
    run = SystemRun(image, sim, vm, write=write)
    run.timings["wheels"] = wheel_seconds
    run.timings["image"] = image.seconds
    try:
        seconds = vm.start()
        write(f"[system] boot 1: the guest answered after {seconds:.0f} s (console: "
              f"{vm.console_log})")  # fmt: skip
        yield run
    finally:
        vm.stop()
        sim.stop()
        boots = ", ".join(f"{s:.0f} s" for s in vm.boot_seconds)
        write(
            f"[system] wheels {wheel_seconds:.0f} s, image {image.seconds:.0f} s "
            f"({'built' if image.built else 'cached'}), boots to the agent: {boots}; "
            f"total {time.monotonic() - started:.0f} s"
        )
        checks = [line for line in run.report if line.startswith("[system] CHECK")]
        for name, outcome in sorted(OUTCOMES.items()):
            if outcome != "ok":
                number = name.split("_")[1] if name.count("_") > 1 else "?"
                checks.append(f"[system] CHECK {number} {outcome}")
        for line in sorted(checks):
            write(line)
        _prune_runs(cache / "runs", keep=5)


def _prune_runs(runs: Path, keep: int) -> None:
    folders = sorted((p for p in runs.glob("*") if p.is_dir()), reverse=True)
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)

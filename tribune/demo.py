"""`tribune demo`: a room of simulated devices driven by real device runtimes.

Starts simulators (a PJLink projector on TCP, a SMART board on a pty, an Extron switcher on TCP),
one `DeviceRuntime` each, and a read-only status page on http://127.0.0.1:8080 that shows what
the runtimes report. The full room service and touch panel replace this page in later releases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import asdict
from importlib import resources
from typing import Any

from tribune.drivers.runtime import DeviceRuntime
from tribune.profiles.loader import ProfileLoader
from tribune.sim import RunningSimulator, launch_simulator

log = logging.getLogger(__name__)

DEMO_DEVICES: list[dict[str, Any]] = [
    {"id": "projector", "profile": "pjlink", "sim": "pjlink", "link": "tcp", "password": "demo"},
    {"id": "board", "profile": "smart-board", "sim": "smart-board", "link": "pty"},
    {"id": "switcher", "profile": "extron-sis", "sim": "extron-sis", "link": "tcp"},
]


def device_snapshot(runtime: DeviceRuntime) -> dict[str, Any]:
    """What the status page shows of one device."""
    health = asdict(runtime.health)
    return {
        "id": runtime.id,
        "profile": runtime.profile.id,
        "name": runtime.profile.name,
        "port": runtime.port,
        "health": {k: str(v) if hasattr(v, "value") else v for k, v in health.items()},
        "state": {
            name: {"value": r.value, "at": r.at, "source": str(r.source)}
            for name, r in runtime.state.items()
        },
    }


def build_app(runtimes: list[DeviceRuntime]) -> Any:
    """The status page and its JSON."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="tribune demo", docs_url=None, redoc_url=None)
    page = resources.files("tribune").joinpath("demo_page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/api/v1/devices")
    async def devices() -> list[dict[str, Any]]:
        return [device_snapshot(rt) for rt in runtimes]

    return app


def _quiet_server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the demo handles SIGINT/SIGTERM itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


async def run_demo(host: str = "127.0.0.1", port: int = 8080, speed: float = 5.0) -> int:
    """Run the demo room until SIGINT/SIGTERM."""
    import uvicorn

    server_class = _quiet_server_class()
    loader = ProfileLoader()
    sims: list[RunningSimulator] = []
    runtimes: list[DeviceRuntime] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for spec in DEMO_DEVICES:
            options: dict[str, Any] = {}
            if "password" in spec:
                options["password"] = spec["password"]
            if spec["link"] == "tcp":
                sim = await launch_simulator(
                    spec["sim"], tcp=("127.0.0.1", 0), speed=speed, **options
                )
                url = f"tcp://127.0.0.1:{sim.port}"
            else:
                sim = await launch_simulator(spec["sim"], pty=True, speed=speed, **options)
                url = sim.path
            sims.append(sim)
            profile = loader.load(spec["profile"]).profile
            runtime = DeviceRuntime(spec["id"], profile, url, password=spec.get("password"))
            await runtime.start()
            runtimes.append(runtime)
            log.info("demo: %s (%s) on %s", spec["id"], profile.name, url)
        config = uvicorn.Config(
            build_app(runtimes), host=host, port=port, log_level="warning", lifespan="off"
        )
        server = server_class(config)
        serving = asyncio.create_task(server.serve())
        log.warning("demo: status page on http://%s:%d (Ctrl-C stops)", host, port)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        waiter.cancel()
    finally:
        for runtime in runtimes:
            await runtime.stop()
        for sim in sims:
            await sim.aclose()
    return 0

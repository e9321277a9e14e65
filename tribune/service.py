"""`tribune serve`: the room service — devices, reconciliation, schedules, local API and panel.

Everything runs in one event loop: device runtimes, reconcilers, the scheduler and uvicorn. The
SQLite store has its own thread. SIGTERM/SIGINT stop it cleanly (usage counters flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tribune.config import RoomConfig, load_config
from tribune.drivers.transport import quiet_serial_faults
from tribune.errors import ConfigError
from tribune.liveness import RoomHealth
from tribune.profiles.store import ProfileStore
from tribune.room import Room
from tribune.scheduler import SceneTarget, ScheduleEntry, Scheduler, parse_when
from tribune.store import Store
from tribune.systemd import Notifier, watch_service

log = logging.getLogger(__name__)


def schedule_entries(config: RoomConfig) -> list[ScheduleEntry]:
    """The config's `[[schedule]]` entries, parsed."""
    return [
        ScheduleEntry(
            id=entry.id,
            recurrence=parse_when(entry.when),
            when=entry.when,
            target=SceneTarget(entry.scene),
            grace=timedelta(minutes=entry.grace_minutes),
            enabled=entry.enabled,
        )
        for entry in config.schedule
    ]


@dataclass
class Service:
    """A running room service (for `serve`, the demo and tests)."""

    room: Room
    scheduler: Scheduler
    app: Any
    port: int
    keys: Any = None  # the KeyService, when [buttons] has keypads


def _server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the service handles SIGINT/SIGTERM."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket for the API, or a clear error when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror} (is another tribune running?)"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def panel_dir() -> Path | None:
    """The touch panel's static files, when this build has them."""
    folder = Path(__file__).resolve().parent / "api" / "panel"
    return folder if folder.is_dir() else None


async def run_service(
    config: RoomConfig,
    data_dir: Path,
    *,
    config_dir: Path,
    host: str | None = None,
    port: int | None = None,
    room_factory: Callable[[RoomConfig, Store], Room] | None = None,
    started: Callable[[Service], Awaitable[None]] | None = None,
    input_source: Any = None,
) -> int:
    """Run the room service until SIGINT/SIGTERM; returns the exit code.

    `input_source`: where keypads come from (default `/dev/input`; tests pass a fake).
    """
    import uvicorn

    from tribune.api import Tokens, create_app

    bind_host = host or config.api.host
    bind_port = port if port is not None else config.api.port
    # The port first: a second service must fail before it touches a single device.
    sock = await asyncio.to_thread(_bind, bind_host, bind_port)
    bind_port = sock.getsockname()[1]
    notifier = Notifier()  # systemd (Type=notify): READY, STATUS, WATCHDOG, STOPPING
    notifier.status(f"starting room {config.room.id}")
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    tokens = await asyncio.to_thread(Tokens.load_or_create, data_dir)
    store = Store(data_dir / "tribune.db")
    await store.open()
    if room_factory is not None:
        room = room_factory(config, store)
    else:
        # Building the room reads profiles and password files: off the event loop. Profiles
        # installed in the data dir override the shipped ones.
        room = await asyncio.to_thread(
            Room, config, store, base_dir=config_dir, profiles=ProfileStore(data_dir)
        )

    async def run_entry(entry: ScheduleEntry, due: datetime) -> None:
        await room.activate_scene(entry.target.scene, who="schedule", actor=entry.id)

    scheduler = Scheduler(
        schedule_entries(config), ZoneInfo(config.room.timezone), run_entry, last_runs=store
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_serial_faults)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[Any]] = []
    link: Any = None
    keys: Any = None
    try:
        await room.start()
        if config.buttons.keypads:
            keys = await _start_keys(room, config, input_source)
        tasks.append(asyncio.create_task(scheduler.run_forever(), name="scheduler"))
        if config.sync is not None:
            from tribune.sync import SyncClient

            link = SyncClient(room, config.sync, base_dir=config_dir, schedule=scheduler.update)
            await link.start()  # returns at once: the link comes up (or not) on its own
        app = create_app(
            room,
            tokens=tokens,
            allowed_hosts=config.api.allowed_hosts,
            panel_dir=panel_dir(),
            flasher=link.commands.flasher if link is not None else None,
        )
        server = _server_class()(
            uvicorn.Config(
                app,
                host=bind_host,
                port=bind_port,
                log_level="warning",
                log_config=None,  # its records go through ours: one format, one journal
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="http")
        tasks.append(serving)
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # the port is taken: raise the reason
        log.warning(
            "room %s: serving on http://%s:%d (%d devices)",
            room.id,
            bind_host,
            bind_port,
            len(room.runtimes),
        )
        health = RoomHealth(room, lambda: link).health()
        tasks.append(asyncio.create_task(watch_service(notifier, health), name="systemd"))
        if started is not None:
            await started(Service(room, scheduler, app, bind_port, keys))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
    finally:
        notifier.stopping()
        sock.close()
        if link is not None:
            await link.stop()
        if keys is not None:
            await keys.stop()  # closes the keypads: their grab ends with the service
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await room.stop()
        await store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        notifier.close()
    return 0


async def _start_keys(room: Room, config: RoomConfig, source: Any) -> Any:
    """The lectern keys (tribune/inputs); they find their keypads by themselves."""
    try:
        from tribune.inputs.service import KeyService
    except ImportError as exc:  # python-evdev is Linux only
        log.error("buttons: not started: %s", exc)
        return None
    keys = KeyService(room, config.buttons, source=source)
    await keys.start()
    return keys


async def serve(config_path: Path, data_dir: Path, port: int | None = None) -> int:
    """`tribune serve --config room.toml`."""
    config = load_config(config_path)
    config_dir = await asyncio.to_thread(lambda: config_path.resolve().parent)
    return await run_service(config, data_dir, config_dir=config_dir, port=port)

"""`run_hub`: the hub's store, its MQTT link and its API in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from tribune.hub.api import Thresholds, create_hub_app
from tribune.hub.config import BrokerLink, HubConfig
from tribune.hub.publisher import Publisher
from tribune.hub.store import HubStore
from tribune.hub.subscriber import HubSubscriber
from tribune.systemd import Health, Notifier, watch_service

log = logging.getLogger(__name__)


def hub_health(hub: HubSubscriber, port: int, serving: Callable[[], bool]) -> Health:
    """For systemd: ready once `serving()`; healthy while the broker link's tasks run."""

    def problem() -> str | None:
        return None if hub.running else "the hub's broker link task has ended"

    def status() -> str:
        linked = "broker linked" if hub.connected.is_set() else "broker not linked"
        return f"serving the hub on port {port}: {linked}"

    return Health(ready=serving, problem=problem, status=status)


async def run_hub(config: HubConfig, link: BrokerLink) -> int:
    """Serve until SIGINT/SIGTERM; the exit code."""
    import uvicorn

    settings = config.hub
    store = HubStore(Path(settings.data_dir) / "hub.db")
    await store.open()
    if not await store.operators():
        log.warning(
            "hub: no operators yet: make the first with "
            "`tribune hub token create NAME --role admin --data-dir %s`",
            settings.data_dir,
        )
    publisher = await asyncio.to_thread(Publisher.load_or_create, Path(settings.data_dir))
    hub = HubSubscriber(
        store,
        link.host,
        link.port,
        tls=link.tls,
        username=link.username,
        password=link.password,
        client_id=link.client_id,
        expiry_margin=config.commands.expiry_margin_s,
        publisher=publisher,
    )
    await hub.start()
    host, port = settings.host, settings.port
    thresholds = Thresholds(
        lamp_hours=config.fleet.lamp_hours_threshold,
        filter_hours=config.fleet.filter_hours_threshold,
    )

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: they re-raise the signal, skipping cleanup."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = QuietServer(
        uvicorn.Config(
            create_hub_app(hub, thresholds),
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # its records go through ours: one format, one journal
            proxy_headers=False,
        )
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    # systemd (Type=notify): READY once the page answers, STATUS, WATCHDOG while healthy.
    notifier = Notifier()
    health = hub_health(hub, port, lambda: bool(server.started))
    watch = asyncio.create_task(watch_service(notifier, health), name="systemd")
    try:
        log.warning("hub: fleet page and API on http://%s:%d/", host, port)
        await server.serve()
    finally:
        notifier.stopping()
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await hub.stop()
        await store.close()
        notifier.close()
    return 0

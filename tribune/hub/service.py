"""`run_hub`: the hub's store, its MQTT link and its API in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from tribune.hub.api import create_hub_app
from tribune.hub.store import HubStore
from tribune.hub.subscriber import HubSubscriber

log = logging.getLogger(__name__)


def parse_broker(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of `mqtt://host[:1883]` or `mqtts://host[:8883]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {url!r}: use mqtts://host:8883 or mqtt://host:1883")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


async def run_hub(broker: str, port: int, data_dir: Path, host: str = "127.0.0.1") -> int:
    """Serve until SIGINT/SIGTERM; the exit code."""
    import uvicorn

    broker_host, broker_port, tls = parse_broker(broker)
    store = HubStore(data_dir / "hub.db")
    await store.open()
    hub = HubSubscriber(
        store, broker_host, broker_port, tls=ssl.create_default_context() if tls else None
    )
    await hub.start()

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: they re-raise the signal, skipping cleanup."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = QuietServer(
        uvicorn.Config(create_hub_app(hub), host=host, port=port, log_level="warning")
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    try:
        log.warning("hub: API on http://%s:%d/api/v1 (loopback clients only)", host, port)
        await server.serve()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await hub.stop()
        await store.close()
    return 0

"""aiomqtt's socket callback for writes, made safe for a socket that closes before it runs.

paho calls `on_socket_register_write` when it has bytes to send; aiomqtt 2.x answers with
`loop.call_soon_threadsafe(loop.add_writer, sock.fileno(), ...)`, which runs on a later turn of
the loop. When the link breaks in between (a broker restart while the outbox drains), paho has
closed the socket by then: the writer goes on a closed descriptor ("Exception in callback ...
Bad file descriptor" in the log) or, worse, on whatever was opened next with the same number —
a device's TCP link, a pty — replacing that socket's own writer and polling it for ever. Here
the deferred registration first checks that the socket is still the client's and open.

Like `acks.py`, this reaches aiomqtt's paho client; the pinned aiomqtt's attributes are checked
when the client is made.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiomqtt


def guard_sockets(client: aiomqtt.Client) -> None:
    """Replace `client`'s write registration with one that checks the socket (before connect)."""
    paho = getattr(client, "_client", None)
    loop: asyncio.AbstractEventLoop | None = getattr(client, "_loop", None)
    if paho is None or loop is None or not hasattr(client, "_disconnected"):
        raise RuntimeError("this aiomqtt has no paho client, loop or disconnect future")

    def register_write(paho_client: Any, userdata: Any, sock: Any) -> None:
        def writable() -> None:
            # As aiomqtt's: a failed write is the link breaking (the future is per connect).
            try:
                paho_client.loop_write()
            except Exception as exc:
                disconnected: asyncio.Future[None] = client._disconnected
                if not disconnected.done():
                    disconnected.set_exception(exc)

        def add_writer() -> None:
            if paho_client.socket() is sock and sock.fileno() >= 0:
                loop.add_writer(sock.fileno(), writable)

        # paho may call this from the thread that runs its connect: the loop does the rest.
        loop.call_soon_threadsafe(add_writer)

    paho.on_socket_register_write = register_write

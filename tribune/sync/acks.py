"""Acknowledge a QoS 1 message only once it is safe: stored (hub) or recorded (room).

By default paho (under aiomqtt) sends PUBACK as soon as a message arrives, before the
application has done anything with it: a process stopped or killed with messages still queued
loses them, since the broker considers them delivered. With manual acknowledgement the broker
keeps an unacknowledged message in the session and sends it again on the next connect, and our
receivers deduplicate (the hub by (room, seq) and command id, the room by command id).

aiomqtt 2.x does not expose paho's manual-ack switch, so this reaches its paho client; the
pinned aiomqtt's attribute is checked when the client is made.
"""

from __future__ import annotations

from typing import Any

import aiomqtt


def manual_acks(client: aiomqtt.Client) -> None:
    """Switch `client` to manual acknowledgement (before it connects)."""
    paho = getattr(client, "_client", None)
    if paho is None or not hasattr(paho, "manual_ack_set"):
        raise RuntimeError("this aiomqtt has no paho client with manual_ack_set")
    paho.manual_ack_set(True)


def ack(client: aiomqtt.Client, message: Any) -> None:
    """Acknowledge `message` (QoS 1/2) on `client`; a no-op when the link is already gone."""
    if getattr(message, "qos", 0) > 0:
        client._client.ack(message.mid, message.qos)  # see the module text

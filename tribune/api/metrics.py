"""`GET /api/v1/metrics`: the room in Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from tribune.drivers.runtime import LATENCY_BUCKETS, HealthStatus
from tribune.room import Room

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_DEVICE_ON = re.compile(r"^device\.(?P<name>.+)\.on_seconds$")
_SOURCE = re.compile(r"^source\.(?P<name>.+)\.seconds$")


def render_metrics(room: Room, counters: Mapping[str, float]) -> str:
    """Devices online, command latency, errors, usage counters and convergence, as text."""
    out = _Exposition()
    out.family("tribune_room_converged", "gauge", "1 when every device is where the room wants it")
    out.sample("tribune_room_converged", {"room": room.id}, int(room.converged))
    out.family("tribune_events_seq", "counter", "Room events published since start")
    out.sample("tribune_events_seq", {"room": room.id}, room.bus.seq)
    # For leak checks (bench/soak.py): a task left behind by every reconnect shows here.
    out.family("tribune_asyncio_tasks", "gauge", "Tasks alive in the service's event loop")
    out.sample("tribune_asyncio_tasks", {"room": room.id}, len(asyncio.all_tasks()))

    out.family("tribune_device_online", "gauge", "1 when the device answers")
    for device_id, runtime in room.runtimes.items():
        online = runtime.health.status is HealthStatus.ONLINE
        out.sample("tribune_device_online", {"device": device_id}, int(online))
    for device_id in room.broken:
        out.sample("tribune_device_online", {"device": device_id}, 0)

    name = "tribune_device_command_latency_seconds"
    out.family(name, "histogram", "Time from a command sent to the device's reply")
    for device_id, runtime in room.runtimes.items():
        stats = runtime.stats
        for bound, count in zip(LATENCY_BUCKETS, stats.buckets, strict=True):
            out.sample(f"{name}_bucket", {"device": device_id, "le": str(float(bound))}, count)
        out.sample(f"{name}_bucket", {"device": device_id, "le": "+Inf"}, stats.count)
        out.sample(f"{name}_sum", {"device": device_id}, stats.total)
        out.sample(f"{name}_count", {"device": device_id}, stats.count)

    out.family("tribune_device_errors_total", "counter", "Failed exchanges with the device")
    for device_id, runtime in room.runtimes.items():
        out.sample("tribune_device_errors_total", {"device": device_id}, runtime.stats.errors)

    device_on = {m["name"]: v for k, v in counters.items() if (m := _DEVICE_ON.match(k))}
    source_on = {m["name"]: v for k, v in counters.items() if (m := _SOURCE.match(k))}
    other = {k: v for k, v in counters.items() if not _DEVICE_ON.match(k) and not _SOURCE.match(k)}
    out.family("tribune_device_on_seconds_total", "counter", "Seconds the device was powered on")
    for device_id, value in device_on.items():
        out.sample("tribune_device_on_seconds_total", {"device": device_id}, value)
    out.family("tribune_source_seconds_total", "counter", "Seconds each source was on show")
    for source, value in source_on.items():
        out.sample("tribune_source_seconds_total", {"source": source}, value)
    if other:
        out.family("tribune_usage_total", "counter", "Other usage counters")
        for counter, value in other.items():
            out.sample("tribune_usage_total", {"name": counter}, value)
    return out.text()


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{pairs}}} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))

"""The soak's bookkeeping and its checks: the intents sent and what they ask of the room, the
service's readings, its log, the room's and the hub's databases, and the invariants over them.
`bench/soak.py` fills these in; nothing here does I/O on the room but read its files.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak_room import POWERED, ROOM_ID, SCENES, Simulators, source_desired

from tribune.sim import Power

Key = tuple[str, ...]

# --- intents and what they ask ----------------------------------------------------------------


@dataclass
class Intent:
    """One intent sent by the harness, and what came of it."""

    kind: str  # scene | source | volume | mute | hub-scene | hub-patch
    who: str  # panel | api | hub
    action: str  # the audit entry's action
    effects: dict[Key, str]
    started: float
    ended: float | None = None  # when its outcome was known (or could no longer change)
    acked: bool = False
    applied: bool | None = None  # False: refused or expired; None: not known
    audit_id: int | None = None
    detail: str = ""


def scene_effects(scene: str) -> dict[Key, str]:
    """The desired values activating `scene` sets, per (device, capability[, output])."""
    body = SCENES[scene]
    effects: dict[Key, str] = {}
    if body["source"] is not None:
        effects.update(source_effects(body["source"]))
    for device, caps in body["desired"].items():
        for capability, value in caps.items():
            effects[(device, capability)] = str(value)
    return effects


def source_effects(source: str) -> dict[Key, str]:
    """The desired values selecting `source` sets, and the room's source."""
    effects: dict[Key, str] = {("room", "source"): source}
    for device, caps in source_desired(source).items():
        for output, number in caps["route"].items():
            effects[(device, "route", output)] = number
    return effects


def candidates(intents: list[Intent]) -> dict[Key, set[str]]:
    """Per key, the values that may be the room's last word: an intent may be the last to set a
    key unless an acknowledged intent setting it was sent after its outcome was known."""
    touched: dict[Key, list[Intent]] = {}
    for intent in intents:
        if intent.applied is False:
            continue
        for key in intent.effects:
            touched.setdefault(key, []).append(intent)
    result: dict[Key, set[str]] = {}
    for key, setters in touched.items():
        latest_acked = max((i.started for i in setters if i.acked), default=-math.inf)
        result[key] = {
            i.effects[key]
            for i in setters
            if (i.ended if i.ended is not None else math.inf) >= latest_acked
        }
    return result


# --- the service's readings and its log -----------------------------------------------------


@dataclass
class Sample:
    """One reading of the service process."""

    pid: int
    life_s: float  # since this process started
    at_s: float  # since the run started
    rss_kb: int
    fds: int
    bus_seq: int | None = None  # `tribune_events_seq`: events this life published
    anon_kb: int | None = None  # RssAnon: the heap's part of rss_kb (the rest: mapped files)


# RSS moves in pages and in steps (a new high of the heap's fluctuations stays resident), so
# consecutive samples are not independent: the slope's standard error is Newey-West's, with
# Bartlett weights over this many seconds of lags.
SLOPE_LAG_S = 60.0


def measured_lives(samples: list[Sample], warmup: float, replay: int) -> list[list[Sample]]:
    """Each life's samples past its warm-up (lives with fewer than 5 such samples left out).

    A life's warm-up is its first `warmup` seconds and the time until its bus has published
    `replay` events: the bus keeps its last `REPLAY_EVENTS` for WebSocket clients to resume
    from (each a device snapshot), so memory grows by design until that buffer is full and
    has turned over once (the caller passes twice its size)."""
    lives: dict[int, list[Sample]] = {}
    for sample in samples:
        if sample.life_s >= warmup and (sample.bus_seq or 0) >= replay:
            lives.setdefault(sample.pid, []).append(sample)
    return [life for life in lives.values() if len(life) >= 5]


def rss_slope(
    samples: list[Sample], warmup: float, replay: int
) -> tuple[float | None, float | None, int]:
    """Pooled within-life least-squares slope of RSS (kB/min), its standard error, samples.

    Each life has its own intercept; the error is autocorrelation-robust (`SLOPE_LAG_S`)."""
    groups: list[tuple[list[float], list[float]]] = []
    sxx = sxy = 0.0
    for life in measured_lives(samples, warmup, replay):
        xs = [s.at_s / 60 for s in life]
        ys = [float(s.rss_kb) for s in life]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        dx, dy = [x - mx for x in xs], [y - my for y in ys]
        groups.append((dx, dy))
        sxy += sum(x * y for x, y in zip(dx, dy, strict=True))
        sxx += sum(x * x for x in dx)
    used = sum(len(dx) for dx, _ in groups)
    if sxx == 0:
        return None, None, used
    slope = sxy / sxx
    # Newey-West: the variance of sum(dx * residual), its autocovariances weighted down
    # linearly to zero at SLOPE_LAG_S, within each life (lives are independent).
    variance = 0.0
    for dx, dy in groups:
        scores = [x * (y - slope * x) for x, y in zip(dx, dy, strict=True)]
        step_s = (dx[-1] - dx[0]) * 60 / (len(dx) - 1)
        lags = min(len(scores) - 1, round(SLOPE_LAG_S / step_s)) if step_s > 0 else 0
        variance += sum(u * u for u in scores)
        for lag in range(1, lags + 1):
            weight = 1 - lag / (lags + 1)
            variance += 2 * weight * sum(a * b for a, b in zip(scores[lag:], scores, strict=False))
    return slope, math.sqrt(max(variance, 0.0)) / sxx, used


def rss_settling(samples: list[Sample], warmup: float, replay: int) -> dict[str, Any] | None:
    """The longest measured life past its warm-up: how long, how much RSS it gained (median of
    its last minute less that of its first) and how much of that was anonymous memory (the
    heap, not pages of mapped files), and the slope of each third of it — a leak keeps its
    pace, an allocator settling (new highs ever rarer) slows down."""
    lives = measured_lives(samples, warmup, replay)
    if not lives:
        return None
    life = max(lives, key=lambda one: one[-1].at_s - one[0].at_s)
    first, last = life[0].at_s, life[-1].at_s
    head = [s for s in life if s.at_s <= first + 60]
    tail = [s for s in life if s.at_s >= last - 60]
    span = last - first
    thirds: list[float | None] = []
    for part in range(3):
        low, high = first + span * part / 3, first + span * (part + 1) / 3
        window = [s for s in life if low <= s.at_s <= high]
        slope, _, _ = rss_slope(window, 0.0, 0)
        thirds.append(None if slope is None else round(slope, 2))
    anon_head = [s.anon_kb for s in head if s.anon_kb is not None]
    anon_tail = [s.anon_kb for s in tail if s.anon_kb is not None]
    return {
        "minutes": round(span / 60, 1),
        "growth_kb": round(
            _median([s.rss_kb for s in tail]) - _median([s.rss_kb for s in head]), 1
        ),
        "anon_growth_kb": round(_median(anon_tail) - _median(anon_head), 1)
        if anon_head and anon_tail
        else None,
        "slope_by_third_kb_per_min": thirds,
    }


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def lives_summary(samples: list[Sample]) -> list[dict[str, Any]]:
    """Per life of the service: when it started, how long it ran, its RSS and fds."""
    lives: dict[int, list[Sample]] = {}
    for sample in samples:
        lives.setdefault(sample.pid, []).append(sample)
    return [
        {
            "started_s": round(life[0].at_s - life[0].life_s, 1),
            "seconds": round(life[-1].life_s, 1),
            "rss_kb": [life[0].rss_kb, life[-1].rss_kb, max(s.rss_kb for s in life)],
            "fds": [min(s.fds for s in life), max(s.fds for s in life)],
            "events": life[-1].bus_seq,
        }
        for life in lives.values()
    ]


def rss_curve(samples: list[Sample], every: float = 30.0) -> list[tuple[float, int, int | None]]:
    """The longest life's RSS: (seconds into the life, kB, events published) every `every` s."""
    lives: dict[int, list[Sample]] = {}
    for sample in samples:
        lives.setdefault(sample.pid, []).append(sample)
    if not lives:
        return []
    longest = max(lives.values(), key=lambda life: life[-1].life_s)
    curve: list[tuple[float, int, int | None]] = []
    for sample in longest:
        if not curve or sample.life_s - curve[-1][0] >= every:
            curve.append((round(sample.life_s, 1), sample.rss_kb, sample.bus_seq))
    return curve


LOG_RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+)\s+(?P<name>[\w.]+): (?P<text>.*)$"
)


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


@dataclass
class LogScan:
    """What a service log holds beyond the ordinary."""

    unhandled: int = 0  # tracebacks, and asyncio's "exception in callback / never retrieved"
    unhandled_samples: list[str] = field(default_factory=list)
    error_records: int = 0  # other ERROR/CRITICAL records (no traceback)
    error_samples: list[str] = field(default_factory=list)


def scan_log(text: str) -> LogScan:
    """Count unhandled exceptions (a traceback, or asyncio's own report of one) and the other
    ERROR records in a service log; keep the first lines of a few of each."""
    scan = LogScan()
    record: list[str] = []

    def close() -> None:
        if not record:
            return
        head = LOG_RECORD.match(record[0])
        # One per traceback (a chained exception prints two for one error).
        tracebacks = sum(line.startswith("Traceback (most recent call last)") for line in record)
        tracebacks -= sum(line.startswith(CHAINED) for line in record)
        level = head["level"] if head else "RAW"
        if head and head["name"] == "asyncio" and level == "ERROR":
            tracebacks = max(tracebacks, 1)
        if tracebacks > 0:
            scan.unhandled += tracebacks
            last = next((line for line in reversed(record) if line and line[0] != " "), "")
            keep_sample(scan.unhandled_samples, f"{record[0][24:]} | {last}")
        elif level in ("ERROR", "CRITICAL"):
            scan.error_records += 1
            keep_sample(scan.error_samples, record[0][24:])

    for line in text.splitlines():
        if LOG_RECORD.match(line) or line.startswith("--- soak:"):
            close()
            record = [line]
        else:
            record.append(line)
    close()
    return scan


def keep_sample(samples: list[str], line: str) -> None:
    """Keep `line` unless 40 are kept or one of the same shape (digits aside) is."""
    shape = re.sub(r"\d+", "N", line)[:160]
    if len(samples) < 40 and shape not in {re.sub(r"\d+", "N", s)[:160] for s in samples}:
        samples.append(line[:300])


def read_room_db(path: Path) -> dict[str, Any]:
    """The room's counters, outbox and audit log, read-only."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        outbox = [
            row[0] for row in db.execute("SELECT seq FROM outbox WHERE seq IS NOT NULL").fetchall()
        ]
        waiting = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        audit = {
            int(row[0]): (str(row[1]), str(row[2]), str(row[3]))
            for row in db.execute("SELECT id, who, action, result FROM audit")
        }
        dropped = db.execute(
            "SELECT value FROM counters WHERE name = 'sync.outbox.dropped'"
        ).fetchone()
    finally:
        db.close()
    return {
        "event_seq": int(meta.get("sync.event_seq", 0)),
        "outbox_seqs": outbox,
        "outbox_rows": waiting,
        "audit": audit,
        "dropped": int(dropped[0]) if dropped else 0,
    }


def read_hub_events(path: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """The hub's events of the room: (seq, type, payload)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT seq, type, payload FROM events WHERE room = ? ORDER BY seq", (ROOM_ID,)
        ).fetchall()
    finally:
        db.close()
    return [(int(seq), str(kind), json.loads(payload)) for seq, kind, payload in rows]


# --- the invariants ------------------------------------------------------------------------------


def check_events(
    room: dict[str, Any], hub: list[tuple[int, str, dict[str, Any]]]
) -> dict[str, Any]:
    """Lost, duplicated and pending events, and audit entries the hub never heard of."""
    n = room["event_seq"]
    held = {seq for seq, _, _ in hub}
    pending = set(room["outbox_seqs"])
    missing = sorted(set(range(1, n + 1)) - held - pending)
    dropped_alerts = sum(
        int(payload["data"].get("dropped", 0))
        for _, kind, payload in hub
        if kind == "alert" and payload["data"].get("code") == "outbox.dropped"
    )
    audit_seen: Counter[tuple[int, str]] = Counter()
    for _, kind, payload in hub:
        if kind in ("audit", "help"):
            data = payload["data"]
            audit_seen[(int(data["id"]), str(data["result"]))] += 1
    # The hub keys events by (room, seq): a seq sent twice is kept once (`seq_conflicts` and
    # `events_redelivered` count what arrived). What can be doubled is an audit entry's word,
    # the same (entry, result) queued under two seqs.
    duplicated = sum(c - 1 for c in audit_seen.values() if c > 1)
    # Each entry's present result must have reached the hub (a later `done` or `converged` too).
    not_in_hub = sorted(
        entry for entry, (_, _, result) in room["audit"].items()
        if (entry, result) not in audit_seen
    )  # fmt: skip
    return {
        "events": n,
        "events_lost": max(0, len(missing) - dropped_alerts),
        "events_missing_seqs": missing[:20],
        "events_dropped_by_outbox": dropped_alerts,
        "events_duplicated": duplicated,
        "events_pending": len(pending),
        "audit_entries": len(room["audit"]),
        "audit_missing_in_hub": len(not_in_hub),
        "audit_missing_in_hub_ids": not_in_hub[:20],
    }


def check_audit(intents: list[Intent], audit: dict[int, tuple[str, str, str]]) -> list[str]:
    """Acknowledged intents whose audit entry is not there as they were sent."""
    missing: list[str] = []
    for intent in intents:
        if not intent.acked:
            continue
        entry = audit.get(intent.audit_id or -1)
        if entry is None or entry[0] != intent.who or entry[1] != intent.action:
            missing.append(f"{intent.kind} by {intent.who}: audit {intent.audit_id} -> {entry}")
    return missing


def check_convergence(
    room: dict[str, Any] | None, intents: list[Intent], sims: Simulators
) -> dict[str, Any]:
    """The room's own word, its desired state against the intents, the devices themselves."""
    if room is None:
        return {"room_converged": False, "all_online": False, "desired_mismatches": ["no room"]}
    devices = room["devices"]
    desired_bad: list[str] = []
    for key, allowed in sorted(candidates(intents).items()):
        if key == ("room", "source"):
            value = room["source"]
        elif len(key) == 3:
            value = (devices[key[0]]["desired"].get(key[1]) or {}).get(key[2])
        else:
            value = devices[key[0]]["desired"].get(key[1])
        if isinstance(value, bool):  # on/off capabilities are booleans once typed
            value = "on" if value else "off"
        if value is None or str(value) not in allowed:
            desired_bad.append(f"{'.'.join(key)} = {value!r}, want one of {sorted(allowed)}")
    device_bad: list[str] = []
    for name in POWERED:
        want = devices[name]["desired"].get("power")
        state = sims.running[name].sim.power.state
        if want is not None and state is not (Power.ON if want == "on" else Power.OFF):
            device_bad.append(f"{name}: power {state.value}, desired {want}")
    switcher = sims.running["switcher"].state
    desired = devices["switcher"]["desired"]
    for output, number in (desired.get("route") or {}).items():
        if switcher.video[int(output) - 1] != int(number):
            device_bad.append(f"switcher: output {output} shows {switcher.video[int(output) - 1]}")
    if "volume" in desired and switcher.volume != int(desired["volume"]):
        device_bad.append(f"switcher: volume {switcher.volume}, desired {desired['volume']}")
    if "mute" in desired and switcher.audio_mute != (desired["mute"] in (True, "on")):
        device_bad.append(f"switcher: mute {switcher.audio_mute}, desired {desired['mute']}")
    return {
        "room_converged": bool(room["converged"]),
        "all_online": all(d["online"] for d in devices.values()),
        "offline": sorted(n for n, d in devices.items() if not d["online"]),
        "not_converged": {
            n: d["status"]
            for n, d in devices.items()
            if any(s != "converged" for s in d["status"].values())
        },
        "desired_mismatches": desired_bad,
        "device_mismatches": device_bad,
    }

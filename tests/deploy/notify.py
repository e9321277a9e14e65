"""A stand-in for systemd's notification socket: a real AF_UNIX datagram socket read on a thread."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Message:
    """One datagram as systemd would receive it."""

    at: float  # time.monotonic() when it was received
    fields: dict[str, str]

    def __contains__(self, key: str) -> bool:
        return key in self.fields


class NotifySocket:
    """Listens where `$NOTIFY_SOCKET` points: a path, or an abstract name (`@...`)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if folder is None:
            name = f"tribune-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = folder / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.sock.settimeout(0.1)
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.partition("=")[::2] for line in data.decode().splitlines())
            with self._lock:
                self.messages.append(Message(time.monotonic(), fields))

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def with_key(self, key: str, since: float = 0.0) -> list[Message]:
        return [m for m in self.received() if key in m and m.at >= since]

    def statuses(self) -> list[str]:
        return [m.fields["STATUS"] for m in self.received() if "STATUS" in m]

    def wait_for(self, key: str, timeout: float = 10.0, since: float = 0.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.with_key(key, since)
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no {key} within {timeout} s; got {self.received()}")

    def wait_status(self, part: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status in self.statuses():
                if part in status:
                    return status
            time.sleep(0.02)
        raise AssertionError(f"no STATUS with {part!r} within {timeout} s: {self.statuses()}")

    def environ(self, watchdog: float | None = None, pid: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.env_value}
        if watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(watchdog * 1_000_000))
        if pid is not None:
            env["WATCHDOG_PID"] = str(pid)
        return env

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def process_environ(notify: NotifySocket, watchdog: float | None) -> dict[str, str]:
    """This process's environment plus the notify variables, for a child service."""
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update(notify.environ(watchdog))
    return env

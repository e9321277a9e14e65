"""The system test's agent inside the guest: runs the host's commands, answers with the output.

Runs as root under systemd (tribune-test-agent.service), with the guest's own Python (stdlib
only). It talks over the virtio-serial port `org.tribune.agent`, one JSON object a line:

- host: `{"id": 7, "cmd": "systemctl is-active tribune", "timeout": 30}`
- agent: `{"id": 7, "rc": 0, "out": "active\\n", "seconds": 0.4}`

`{"id": 1, "op": "hello"}` answers the boot id and uptime, so the host knows which boot it
talks to. Commands run one at a time, stdout and stderr together, under `/bin/sh -c`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

PORT = "/dev/virtio-ports/org.tribune.agent"


def boot_id() -> str:
    """This boot's id (changes at every boot)."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
        return f.read().strip()


def uptime() -> float:
    """Seconds since the kernel started."""
    with open("/proc/uptime", encoding="ascii") as f:
        return float(f.read().split()[0])


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one request."""
    answer: dict[str, Any] = {"id": request.get("id")}
    if request.get("op") == "hello":
        answer.update(boot_id=boot_id(), uptime=uptime(), rc=0, out="")
        return answer
    started = time.monotonic()
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", str(request.get("cmd", ""))],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=float(request.get("timeout", 60)),
            check=False,
        )
        answer.update(rc=done.returncode, out=done.stdout.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else ""
        answer.update(rc=-1, out=out + "\n(agent: timed out)")
    answer["seconds"] = round(time.monotonic() - started, 3)
    return answer


def main() -> int:
    """Serve the port until killed."""
    while not os.path.exists(PORT):
        time.sleep(0.2)
    fd = os.open(PORT, os.O_RDWR)
    buffer = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            time.sleep(0.2)
            continue
        if not chunk:  # the host is not connected: nothing to read yet
            time.sleep(0.2)
            continue
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError:
                continue
            data = (json.dumps(handle(request)) + "\n").encode()
            while data:
                try:
                    data = data[os.write(fd, data) :]
                except OSError as exc:
                    sys.stderr.write(f"agent: write failed: {exc}\n")
                    break


if __name__ == "__main__":
    raise SystemExit(main())

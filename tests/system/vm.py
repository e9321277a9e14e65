"""Boot the guest under QEMU (TCG) and talk to it: QMP, the test agent, the console log.

The machine: `qemu-system-x86_64 -accel tcg -smp 2 -m 1024 -kernel -initrd`, root on a qcow2
overlay of the cached raw disk (the cache stays clean; the overlay lives as long as the test,
across the guest's reboots). Devices:

- `qemu-xhci` at PCI slot 5 with `usb-serial` on its port 1 (an FTDI 0403:6001: ftdi_sio,
  /dev/ttyUSB0) whose chardev is a TCP client of the simulator on the host, and `usb-kbd` on
  port 2 (a real evdev device), driven with QMP `send-key`;
- ttyS0, the console, to a log file (agetty is masked in the guest: it would hang it up);
- virtio-serial port `org.tribune.agent` to a unix socket: the test agent (guest/agent.py);
- QMP on a unix socket.

With `-no-reboot`, a reboot inside the guest ends QEMU: `Vm.reboot()` then boots the same disk
again (the projector simulator keeps running on the host, as the real one does in the room).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.system.image import Image

XHCI_ADDR = 5  # PCI slot of the xHCI controller: udev's ID_PATH pci-0000:00:05.0-usb-0:N:1.0
SERIAL_PORT = 1  # the USB-serial adapter's port on it
KEYBOARD_PORT = 2
ADAPTER_SERIAL = "TRIBSYS1"  # the adapter's USB serial number (/dev/serial/by-id/...)
KERNEL_CMDLINE = (
    "root=/dev/vda rw console=ttyS0,115200 loglevel=4 net.ifnames=0 panic=-1 "
    "systemd.mask=serial-getty@ttyS0.service systemd.show_status=1"
)


def _die_with_parent() -> None:
    """In QEMU's child before exec: SIGKILL it when the test process dies (no stray guests)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


PR_SET_PDEATHSIG = 1


class VmError(RuntimeError):
    """The guest did not do what was expected in time (the console tail is in the message)."""


@dataclass
class Result:
    """A command's outcome in the guest."""

    rc: int
    out: str
    seconds: float

    def __str__(self) -> str:
        return self.out


class Qmp:
    """A QMP client on a unix socket (one command at a time; events are kept)."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.events: list[dict[str, Any]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._file = self._sock.makefile("rwb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise VmError(f"not a QMP greeting: {greeting}")
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise VmError("QMP closed (QEMU exited?)")
        message: dict[str, Any] = json.loads(line)
        return message

    def command(self, name: str, **arguments: Any) -> Any:
        """Run one command; its `return` value, or VmError with QMP's error."""
        request: dict[str, Any] = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self._file.write(json.dumps(request).encode() + b"\n")
        self._file.flush()
        while True:
            message = self._read()
            if "event" in message:
                self.events.append(message)
                continue
            if "error" in message:
                raise VmError(f"QMP {name}: {message['error']}")
            return message.get("return")

    def send_key(self, *qcodes: str, hold_ms: int = 200) -> None:
        """Press and release keys (QEMU qcodes: `f1`, `ctrl`, `a`...) on the guest's keyboard."""
        keys = [{"type": "qcode", "data": code} for code in qcodes]
        self.command("send-key", keys=keys, **{"hold-time": hold_ms})

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()


class Agent:
    """The test agent in the guest, over the virtio-serial port's unix socket."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self._sock.setblocking(False)
        self._buffer = b""
        self._ids = itertools.count(1)

    def _send(self, request: dict[str, Any]) -> None:
        data = json.dumps(request).encode() + b"\n"
        self._sock.setblocking(True)
        try:
            self._sock.sendall(data)
        finally:
            self._sock.setblocking(False)

    def _receive(self, want: int, deadline: float) -> dict[str, Any] | None:
        """The answer with id `want`, or None at the deadline (older answers are dropped)."""
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                try:
                    answer: dict[str, Any] = json.loads(line)
                except ValueError:
                    continue
                if answer.get("id") == want:
                    return answer
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._sock], [], [], min(left, 1.0))
            if ready:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise VmError("the agent's socket closed (QEMU exited?)")
                self._buffer += chunk

    def hello(self, timeout: float) -> dict[str, Any]:
        """Wait until the agent answers (the guest is up); its boot id and uptime."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ident = next(self._ids)
            self._send({"id": ident, "op": "hello"})
            answer = self._receive(ident, min(deadline, time.monotonic() + 3.0))
            if answer is not None:
                return answer
        raise VmError(f"the guest's agent did not answer within {timeout:.0f} s")

    def run(self, cmd: str, timeout: float = 60.0) -> Result:
        """Run `cmd` (sh -c) in the guest as root; its exit code and output."""
        ident = next(self._ids)
        self._send({"id": ident, "cmd": cmd, "timeout": timeout})
        answer = self._receive(ident, time.monotonic() + timeout + 15.0)
        if answer is None:
            raise VmError(f"no answer from the guest for {cmd!r} within {timeout + 15:.0f} s")
        return Result(int(answer.get("rc", -1)), str(answer.get("out", "")), answer["seconds"])

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(OSError):
            self._sock.close()


class Vm:
    """The guest: `start()` boots it, `run()` runs commands in it, `stop()` ends QEMU."""

    def __init__(self, image: Image, workdir: Path, *, simulator_port: int) -> None:
        self.image = image
        self.workdir = workdir
        self.simulator_port = simulator_port
        self.boots = 0
        self.boot_seconds: list[float] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.qmp: Qmp | None = None
        self.agent: Agent | None = None
        self.boot_id = ""
        workdir.mkdir(parents=True, exist_ok=True)
        self.overlay = workdir / "overlay.qcow2"
        qemu_img = shutil.which("qemu-img") or "qemu-img"
        subprocess.run(
            [qemu_img, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.disk),
             str(self.overlay)],
            check=True,
        )  # fmt: skip

    @property
    def console_log(self) -> Path:
        """The current boot's console (ttyS0) log."""
        return self.workdir / f"console-{self.boots}.log"

    def command_line(self) -> list[str]:
        """QEMU's command line for the next boot."""
        w = self.workdir
        return [
            shutil.which("qemu-system-x86_64") or "qemu-system-x86_64",
            "-accel", "tcg",
            "-machine", "pc",
            "-cpu", "max",
            "-smp", "2",
            "-m", "1024",
            "-nographic",
            "-monitor", "none",
            "-no-reboot",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initrd),
            "-append", KERNEL_CMDLINE,
            "-drive", f"file={self.overlay},format=qcow2,if=virtio,cache=unsafe",
            "-nic", "none",
            "-chardev", f"file,id=console,path={self.console_log}",
            "-serial", "chardev:console",
            "-qmp", f"unix:{w / 'qmp.sock'},server=on,wait=off",
            "-device", "virtio-rng-pci",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=agent,path={w / 'agent.sock'},server=on,wait=off",
            "-device", "virtserialport,chardev=agent,name=org.tribune.agent",
            "-device", f"qemu-xhci,id=xhci,addr={XHCI_ADDR:#x}",
            "-chardev",
            f"socket,id=projector,host=127.0.0.1,port={self.simulator_port},reconnect=1",
            "-device",
            f"usb-serial,chardev=projector,serial={ADAPTER_SERIAL},bus=xhci.0,port={SERIAL_PORT}",
            "-device", f"usb-kbd,id=keypad,bus=xhci.0,port={KEYBOARD_PORT}",
        ]  # fmt: skip

    def start(self, timeout: float = 300.0) -> float:
        """Boot; returns once the agent answers (seconds it took)."""
        if self.process is not None:
            raise VmError("already running")
        self.boots += 1
        for name in ("qmp.sock", "agent.sock"):
            with contextlib.suppress(FileNotFoundError):
                (self.workdir / name).unlink()
        started = time.monotonic()
        stderr = (self.workdir / f"qemu-{self.boots}.stderr").open("wb")
        self.process = subprocess.Popen(
            self.command_line(),
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        stderr.close()
        try:
            self.qmp = Qmp(self.workdir / "qmp.sock")
            self.agent = Agent(self.workdir / "agent.sock")
            hello = self.agent.hello(timeout)
        except (OSError, VmError) as exc:
            raise VmError(f"boot {self.boots} failed: {exc}\n{self.diagnostics()}") from None
        self.boot_id = str(hello.get("boot_id", ""))
        seconds = time.monotonic() - started
        self.boot_seconds.append(seconds)
        return seconds

    def run(self, cmd: str, timeout: float = 60.0) -> Result:
        """Run `cmd` in the guest (as root)."""
        if self.agent is None:
            raise VmError("the guest is not running")
        return self.agent.run(cmd, timeout)

    def check(self, cmd: str, timeout: float = 60.0) -> str:
        """Run `cmd`; its output, or VmError when it fails."""
        result = self.run(cmd, timeout)
        if result.rc != 0:
            raise VmError(f"{cmd!r} exited {result.rc}:\n{result.out}")
        return result.out

    def wait_for(
        self, cmd: str, *, timeout: float, interval: float = 1.0, what: str = ""
    ) -> Result:
        """Run `cmd` until it exits 0; its last result, or VmError at the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run(cmd, timeout=max(5.0, min(60.0, deadline - time.monotonic())))
            if result.rc == 0:
                return result
            if time.monotonic() > deadline:
                raise VmError(
                    f"{what or cmd!r}: not within {timeout:.0f} s; last output:\n{result.out}"
                )
            time.sleep(interval)

    def reboot(self, timeout: float = 300.0) -> float:
        """`systemctl reboot` in the guest; QEMU ends (-no-reboot) and boots the disk again."""
        if self.agent is not None:
            with contextlib.suppress(VmError, OSError):
                self.agent.run("systemctl reboot", timeout=10)
        self.wait_exit(timeout=120)
        return self.start(timeout)

    def wait_exit(self, timeout: float) -> None:
        """Wait for QEMU to end by itself (a shutdown in the guest); kill it at the timeout."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise VmError(
                f"the guest did not shut down within {timeout:.0f} s\n{self.diagnostics()}"
            ) from None
        self._closed()

    def stop(self) -> None:
        """End QEMU (QMP quit, then SIGKILL)."""
        process = self.process
        if process is None:
            return
        if self.qmp is not None:
            with contextlib.suppress(OSError, VmError, ValueError):
                self.qmp.command("quit")
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        self._closed()

    def _closed(self) -> None:
        if self.qmp is not None:
            self.qmp.close()
        if self.agent is not None:
            self.agent.close()
        self.qmp = None
        self.agent = None
        self.process = None

    def console_tail(self, chars: int = 12000) -> str:
        """The end of the current boot's console log."""
        try:
            text = self.console_log.read_bytes()[-chars:].decode("utf-8", "replace")
        except OSError:
            return "(no console log)"
        return text

    def diagnostics(self) -> str:
        """What to look at when something failed: QEMU's stderr, the console, the journal."""
        parts = []
        stderr = self.workdir / f"qemu-{self.boots}.stderr"
        with contextlib.suppress(OSError):
            err = stderr.read_text(errors="replace").strip()
            if err:
                parts.append(f"--- QEMU stderr ({stderr}) ---\n{err[-3000:]}")
        if self.process is not None and self.process.poll() is not None:
            parts.append(f"--- QEMU exited with {self.process.returncode} ---")
        parts.append(f"--- console ({self.console_log}), last lines ---\n{self.console_tail()}")
        if self.agent is not None and self.process is not None and self.process.poll() is None:
            with contextlib.suppress(VmError, OSError):
                journal = self.agent.run(
                    "journalctl -b --no-pager -n 80 -u tribune.service; "
                    "systemctl --no-pager status tribune.service",
                    timeout=20,
                )
                parts.append(f"--- guest journal (tribune) ---\n{journal.out[-6000:]}")
        return "\n".join(parts)

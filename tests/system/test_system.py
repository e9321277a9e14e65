"""The system test: tribune installed on a real Debian 12, booted under QEMU (docs/system-test.md).

One guest boots for the whole module (and reboots once, in the last check); the checks run in
this order and each prints one `[system] CHECK n` line with what it saw.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any, NoReturn

import pytest

from tests.system.conftest import SystemRun
from tests.system.image import STAND_IN
from tests.system.simhost import POWER_ON
from tests.system.vm import ADAPTER_SERIAL, Vm, VmError
from tribune.sim.base import Power

pytestmark = [pytest.mark.system, pytest.mark.timeout(3600)]

TRIBUNE = "/opt/tribune/venv/bin/tribune"
SERVICE_UP = 240.0  # seconds for tribune.service to be active after the guest answers (TCG)


def show(vm: Vm, *props: str) -> dict[str, str]:
    """`systemctl show -p ...` of tribune.service as a dict."""
    out = vm.check(f"systemctl show tribune.service -p {','.join(props)}")
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition("=")
        values[name] = value
    return values


def wait_active(vm: Vm, timeout: float = SERVICE_UP) -> dict[str, str]:
    """Wait for tribune.service to be active (for Type=notify: after its READY=1)."""
    vm.wait_for(
        'test "$(systemctl show -p ActiveState --value tribune.service)" = active',
        timeout=timeout,
        what="tribune.service active",
    )
    return show(vm, "ActiveState", "SubState", "Type", "MainPID", "StatusText", "NRestarts",
                "WatchdogUSec", "User", "ExecMainStartTimestampMonotonic")  # fmt: skip


def fail_with(system: SystemRun, what: str, exc: Exception) -> NoReturn:
    """Fail with the guest's console and journal attached."""
    pytest.fail(f"{what}: {exc}\n{system.vm.diagnostics()}")


API = (
    "python3 -c 'import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
    'urllib.request.Request("http://127.0.0.1:8080{path}", method="{method}"), timeout=20)'
    ".read().decode())'"
)


def api(vm: Vm, path: str, method: str = "GET") -> Any:
    """The room API inside the guest, as the panel calls it (loopback: no token)."""
    return json.loads(vm.check(API.format(path=path, method=method)))


def room_state(vm: Vm) -> dict[str, Any]:
    """`GET /api/v1/room` inside the guest."""
    room: dict[str, Any] = api(vm, "/api/v1/room")
    return room


def wait_projector_online(system: SystemRun, timeout: float = 90.0) -> dict[str, Any]:
    """The projector as the guest's API shows it, once online; fail with its last error."""
    deadline = time.monotonic() + timeout
    device: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(VmError, ValueError):
            device = room_state(system.vm)["devices"]["projector"]
            if device.get("online"):
                return device
        time.sleep(2)
    health = device.get("health", {})
    error = str(health.get("last_error"))
    fail_with(
        system,
        "the projector is not online in the guest",
        VmError(f"health {health.get('status')}: {error}{_eperm_hint(system.vm, error)}"),
    )


def _eperm_hint(vm: Vm, error: str) -> str:
    """Why a tty the service user may open gives EPERM: the unit's device cgroup (if so)."""
    if "Operation not permitted" not in error:
        return ""
    with contextlib.suppress(VmError):
        started = int(
            vm.check("systemctl show -p ExecMainStartTimestampMonotonic --value tribune").strip()
        )
        line = vm.check(
            "journalctl -b -k -o short-monotonic --no-pager | grep -m1 'usbserial: USB Serial'"
        )
        registered = float(line.split("]")[0].strip("[ "))
        if registered > started / 1e6:
            return (
                f"\n(EPERM is the device cgroup: tribune.service started at "
                f"{started / 1e6:.1f} s, usbserial registered the ttyUSB major at "
                f"{registered:.1f} s; DeviceAllow=char-ttyUSB is resolved from /proc/devices "
                "when the unit starts, so the unit must start after the module is loaded, "
                "e.g. Wants= and After=modprobe@usbserial.service)"
            )
    return ""


def test_1_service_ready(system: SystemRun) -> None:
    """systemd starts tribune.service as the tribune user, and it reported READY=1."""
    vm = system.vm
    try:
        props = wait_active(vm)
    except VmError as exc:
        fail_with(system, "tribune.service did not start", exc)
    pid = props["MainPID"]
    user = vm.check(f"stat -c %U /proc/{pid}").strip()
    status = vm.run("systemctl --no-pager status tribune.service").out
    system.say("[system] systemctl status tribune.service:\n" + status.rstrip())
    assert user == "tribune", f"MainPID {pid} runs as {user!r}"
    assert props["Type"] == "notify", f"Type={props['Type']}: READY=1 is not waited for"
    # Type=notify is active only once READY=1 came; STATUS= is what the technician reads.
    assert props["StatusText"], "no STATUS= line from the service"
    system.say(
        f"[system] CHECK 1 ok: tribune.service {props['ActiveState']}/{props['SubState']} "
        f"as user {user} (pid {pid}), Type=notify so READY=1 arrived; "
        f"StatusText={props['StatusText']!r}"
    )


def test_2_udev_projector_link(system: SystemRun) -> None:
    """The udev rule links /dev/tribune/projector to the USB-serial adapter's tty."""
    vm = system.vm
    try:
        vm.wait_for("test -e /dev/tribune/projector", timeout=60, what="/dev/tribune/projector")
    except VmError as exc:
        fail_with(system, "no /dev/tribune/projector", exc)
    target = vm.check("readlink -f /dev/tribune/projector").strip()
    rules = vm.check("grep -h -B1 'tribune/projector' /etc/udev/rules.d/*.rules")
    assert STAND_IN not in rules, f"`tribune udev-rules` wrote no rule for the projector:\n{rules}"
    info = vm.check(f"udevadm info --query=property --name={target}")
    props = dict(line.split("=", 1) for line in info.splitlines() if "=" in line)
    by_id = vm.check("ls /dev/serial/by-id/ /dev/serial/by-path/").split()
    mode = vm.check(f"stat -c '%U:%G %a' {target}").strip()
    assert re.fullmatch(r"/dev/ttyUSB\d+", target), target
    assert props.get("ID_VENDOR_ID") == "0403", props
    assert props.get("ID_MODEL_ID") == "6001", props
    assert props.get("ID_USB_DRIVER", props.get("ID_USB_INTERFACES", "")) != ""
    assert any(ADAPTER_SERIAL in name for name in by_id), by_id
    system.say(
        f"[system] CHECK 2 ok: /dev/tribune/projector -> {target} ({mode}), FTDI "
        f"{props.get('ID_VENDOR_ID')}:{props.get('ID_MODEL_ID')} on "
        f"{props.get('ID_USB_DRIVER', '?')}, ID_PATH={props.get('ID_PATH')}; the rule:\n"
        + rules.rstrip()
    )


def test_3_key_press_powers_projector(system: SystemRun) -> None:
    """F1 on the emulated keyboard (QMP send-key) -> class-start -> power-on bytes on the host."""
    vm, sim = system.vm, system.sim
    assert vm.qmp is not None
    try:
        wait_active(vm)
        vm.wait_for(
            "journalctl -b -u tribune.service --no-pager | grep -q 'keypad lectern'",
            timeout=60,
            what="the service opened the keypad",
        )
    except VmError as exc:
        fail_with(system, "the keypad was not opened", exc)
    projector = wait_projector_online(system)
    assert sim.power() is Power.OFF, f"projector is {sim.power()} before the key press"
    since = time.monotonic()
    vm.qmp.send_key("f1")
    seconds = sim.wait_for(POWER_ON, since=since, timeout=60)
    if seconds is None:
        fail_with(
            system,
            "F1 pressed",
            VmError(f"no power-on frame at the simulator; received {sim.received(since).hex()}"),
        )
    deadline = time.monotonic() + 30
    while sim.power() not in (Power.WARMING, Power.ON) and time.monotonic() < deadline:
        time.sleep(0.5)
    entries = api(vm, "/api/v1/audit?limit=20")["entries"]
    by_key = [e for e in entries if e.get("actor") == "lectern:KEY_F1"]
    assert by_key, f"no audit entry by lectern:KEY_F1: {entries}"
    audit = f"{by_key[-1]['who']} {by_key[-1]['actor']} {by_key[-1]['action']}"
    system.say(
        f"[system] CHECK 3 ok: QMP send-key f1 -> host simulator received "
        f"{POWER_ON.hex(' ')} (NEC POWER ON) after {seconds:.1f} s through ftdi_sio "
        f"(projector {projector['health']['connection']}); "
        f"projector {sim.power().value}; the room's audit: {audit}"
    )


def test_4_usb_scan(system: SystemRun) -> None:
    """`tribune usb scan` in the guest lists 0403:6001 with its tty and the probe hint."""
    vm = system.vm
    result = vm.run(f"{TRIBUNE} usb scan", 120)  # as the technician runs it (sudo)
    out = result.out
    system.say(f"[system] tribune usb scan (exit {result.rc}):\n" + out.rstrip())
    assert result.rc == 0, out
    assert "0403:6001" in out, out
    assert "/dev/ttyUSB" in out, out
    hint = next((line.strip() for line in out.splitlines() if "tribune detect --port" in line), "")
    assert hint, f"no hint to probe the adapter (`tribune detect --port ...`):\n{out}"
    system.say(f"[system] CHECK 4 ok: usb scan lists 0403:6001 with /dev/ttyUSB0; hint: {hint}")


def test_5_watchdog_restarts_frozen_service(system: SystemRun) -> None:
    """SIGSTOP freezes the service; systemd's watchdog kills it and restarts it."""
    vm = system.vm
    try:
        before = wait_active(vm)
    except VmError as exc:
        fail_with(system, "tribune.service not active", exc)
    usec = _usec(before["WatchdogUSec"])
    assert usec > 0, f"no WatchdogSec on tribune.service ({before['WatchdogUSec']})"
    watchdog = usec / 1e6
    pid = before["MainPID"]
    frozen_at = float(vm.check(f"date +%s.%N; kill -STOP {pid}").split()[0])
    try:
        vm.wait_for(
            f'test "$(systemctl show -p MainPID --value tribune.service)" != {pid} && '
            'test "$(systemctl show -p ActiveState --value tribune.service)" = active',
            timeout=watchdog + SERVICE_UP,
            interval=2,
            what="tribune.service restarted",
        )
    except VmError as exc:
        fail_with(system, "the frozen service was not restarted", exc)
    after = show(vm, "MainPID", "NRestarts", "ActiveState")
    journal = vm.check(
        "journalctl -b -u tribune.service --no-pager -o short-unix "
        f"--since @{int(frozen_at) - 1} | grep -i -m5 'watchdog\\|killed\\|dumped\\|abort'"
    )
    timeout_line = next((ln for ln in journal.splitlines() if "atchdog" in ln), "")
    assert timeout_line, f"no watchdog timeout in the journal:\n{journal}"
    killed_after = float(timeout_line.split()[0]) - frozen_at
    restarted = int(after["NRestarts"]) - int(before["NRestarts"])
    assert restarted >= 1, (before, after)
    assert killed_after <= watchdog + 2.0, f"watchdog fired {killed_after:.1f} s after SIGSTOP"
    system.say(
        f"[system] CHECK 5 ok: SIGSTOP pid {pid} -> watchdog timeout after {killed_after:.1f} s "
        f"(WatchdogSec={watchdog:.0f}), restarted as pid {after['MainPID']} "
        f"(NRestarts {before['NRestarts']} -> {after['NRestarts']}); journal: "
        f"{timeout_line.split(' ', 2)[-1]}"
    )


def _usec(text: str) -> int:
    """systemd's `20s` / `1min 30s` (or plain microseconds) as microseconds."""
    if text.isdigit():
        return int(text)
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)\s*(min|ms|us|s|h)", text):
        total += float(number) * {"h": 3600, "min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return int(total * 1e6)


def test_6_reboot_restores_desired_state(system: SystemRun) -> None:
    """After a reboot (and a mains cut on the projector) the desired state is re-applied."""
    vm, sim = system.vm, system.sim
    old_boot = vm.boot_id
    try:
        wait_active(vm)
        before = room_state(vm)["devices"]["projector"]["desired"].get("power")
    except (VmError, KeyError, ValueError) as exc:
        fail_with(system, "the room's state before the reboot", VmError(str(exc)))
    note = ""
    if before != "on":  # check 3 did not get there: start the class as the panel would
        api(vm, "/api/v1/scenes/class-start/activate", "POST")
        note = " (class-start set through the API: the key press did not)"
    vm.run("systemctl reboot", timeout=10)
    try:
        vm.wait_exit(timeout=180)
    except VmError as exc:
        fail_with(system, "the guest did not shut down", exc)
    sim.switch_off()  # the room lost power overnight: the projector is in standby
    since = time.monotonic()
    seconds = vm.start()
    system.say(f"[system] boot {vm.boots}: the guest answered after {seconds:.0f} s")
    assert vm.boot_id != old_boot
    try:
        wait_active(vm)
    except VmError as exc:
        fail_with(system, "tribune.service after the reboot", exc)
    on_after = sim.wait_for(POWER_ON, since=since, timeout=90)
    if on_after is None:
        wait_projector_online(system, timeout=5)  # fails with the projector's last error
        fail_with(system, "after the reboot", VmError("no power-on frame at the simulator"))
    device = wait_projector_online(system)
    desired = device.get("desired", {}).get("power")
    assert desired == "on", f"desired projector power after the reboot: {desired!r}"
    system.say(
        f"[system] CHECK 6 ok: rebooted (boot id {old_boot[:8]} -> {vm.boot_id[:8]}); the "
        f"projector, switched off meanwhile, got {POWER_ON.hex(' ')} again {on_after:.0f} s "
        f"after QEMU started; desired projector.power={desired} restored from the store{note}"
    )

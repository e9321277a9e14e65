"""`tribune doctor`: check a live installation and say what to fix.

Each check is ok, a problem (with the fix), or skipped (with why). Access is judged for the
service's user as tribune.service runs it (user `tribune`, groups tribune, dialout, input,
plugdev), from the owner, group and mode bits, whoever runs the doctor. Everything it looks at
goes through `System`, so the tests can set the scene; a check that fails unexpectedly is a
problem saying so, never a traceback.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tribune.errors import ConfigError

SERVICE_USER = "tribune"
SERVICE_GROUPS = ("dialout", "input", "plugdev")  # tribune.service's SupplementaryGroups=
UNIT = "tribune.service"
HUB_UNIT = "tribune-hub.service"
MIN_FREE_BYTES = 200 * 1024 * 1024
MIN_FREE_SHARE = 0.05
MIN_YEAR = 2024
RULES = "70-tribune.rules"

Status = Literal["ok", "problem", "skipped"]


@dataclass
class Check:
    """One finding."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """For --json."""
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class Account:
    """A user and the group ids its processes have."""

    uid: int
    gids: frozenset[int]


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603 - a fixed argument list, no shell
    except (OSError, subprocess.SubprocessError) as exc:
        return 127, str(exc)
    return done.returncode, done.stdout.strip()


def _service_account(name: str) -> tuple[Account | None, list[str]]:
    """The service user with its unit's groups, and the groups that do not exist."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return None, []
    gids = {user.pw_gid}
    missing = []
    for group in (name, *SERVICE_GROUPS):
        try:
            gids.add(grp.getgrnam(group).gr_gid)
        except KeyError:
            missing.append(group)
    return Account(user.pw_uid, frozenset(gids)), missing


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _ntp_synchronized(run: Callable[[list[str]], tuple[int, str]]) -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    code, out = run(["timedatectl", "show", "--property=NTPSynchronized", "--value"])
    return out == "yes" if code == 0 else None


@dataclass
class System:
    """What the doctor looks at (tests pass their own)."""

    root: Path = Path("/")  # where /opt/tribune and /etc/udev live
    run: Callable[[list[str]], tuple[int, str]] = _run
    systemd_running: Callable[[], bool] = lambda: Path("/run/systemd/system").is_dir()
    account: Callable[[str], tuple[Account | None, list[str]]] = _service_account
    stat: Callable[[str], os.stat_result] = os.stat
    disk_usage: Callable[[str], Any] = shutil.disk_usage
    connect: Callable[[str, int, float], None] = _connect
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ntp_synchronized: Callable[[], bool | None] = field(default=lambda: _ntp_synchronized(_run))


def _mode_allows(st: os.stat_result, account: Account, want: int) -> bool:
    """Whether `account` has the `want` bits (4 read, 2 write, 1 execute) on a file."""
    if st.st_uid == account.uid:
        bits = (st.st_mode >> 6) & 7
    elif st.st_gid in account.gids:
        bits = (st.st_mode >> 3) & 7
    else:
        bits = st.st_mode & 7
    return bits & want == want


def _owner(st: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group} {stat.filemode(st.st_mode)}"


class Doctor:
    """Runs the checks for one room config (or only the install when there is none)."""

    def __init__(self, config_path: Path, data_dir: Path, system: System | None = None) -> None:
        self.config_path = config_path
        self.data_dir = data_dir
        self.sys = system or System()
        self.checks: list[Check] = []
        self.account: Account | None = None

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> None:
        """Record a finding."""
        self.checks.append(Check(name, status, detail, fix))

    def run(self) -> list[Check]:
        """Every check, in the order a technician would look."""
        config = None
        for name, step in (
            ("install", self.check_install),
            ("units", self.check_units),
            ("user", self.check_user),
            ("config", self.check_config),
        ):
            try:
                result = step()
            except Exception as exc:  # never a traceback: say what could not be checked
                self.add(name, "problem", f"could not check: {exc!r}")
                result = None
            if name == "config":
                config = result
        later: list[tuple[str, Callable[[], Any]]] = [
            ("data dir", self.check_data_dir),
            ("clock", self.check_clock),
        ]
        if config is not None:
            later[:0] = [
                ("profiles", lambda: self.check_profiles(config)),
                ("ports", lambda: self.check_ports(config)),
                ("broker", lambda: self.check_broker(config)),
                ("hub key", lambda: self.check_hub_key(config)),
            ]
        for name, step in later:
            try:
                step()
            except Exception as exc:
                self.add(name, "problem", f"could not check: {exc!r}")
        return self.checks

    # --- the install and systemd ------------------------------------------------------------

    def check_install(self) -> None:
        """/opt/tribune/venv points at a release; the previous one is kept for rollback."""
        opt = self.sys.root / "opt/tribune"
        link = opt / "venv"
        if not link.is_symlink():
            self.add(
                "install",
                "problem",
                f"{link} is missing: not installed by deploy/install.sh",
                "install with deploy/install.sh --wheels DIR (docs/install.md)",
            )
            return
        target = os.readlink(link)
        if not (opt / target / "bin" / "tribune").exists():
            self.add(
                "install",
                "problem",
                f"{link} -> {target}, which has no bin/tribune",
                "deploy/install.sh --rollback, or install again",
            )
            return
        previous = opt / "previous"
        kept = f"; previous {os.readlink(previous)}" if previous.is_symlink() else ""
        self.add("install", "ok", f"{link} -> {target}{kept}")

    def _units(self) -> list[str]:
        hub = (self.sys.root / "etc/tribune/hub.toml").exists()
        return [UNIT, HUB_UNIT] if hub else [UNIT]

    def check_units(self) -> None:
        """Each unit enabled and active (when systemd runs here)."""
        if not self.sys.systemd_running():
            self.add("units", "skipped", "systemd is not running here")
            return
        for unit in self._units():
            _, active = self.sys.run(["systemctl", "is-active", unit])
            _, enabled = self.sys.run(["systemctl", "is-enabled", unit])
            short = unit.removesuffix(".service")
            if active == "active" and enabled == "enabled":
                self.add(f"unit {unit}", "ok", "active, enabled")
                continue
            fix = f"systemctl status {short}; journalctl -u {short} -b"
            if enabled != "enabled":
                fix = f"systemctl enable --now {short}; " + fix
            self.add(
                f"unit {unit}", "problem", f"{active or 'unknown'}, {enabled or 'unknown'}", fix
            )

    def check_user(self) -> None:
        """The service user exists, with the groups its unit names."""
        account, missing = self.sys.account(SERVICE_USER)
        self.account = account
        if account is None:
            self.add(
                "user",
                "problem",
                f"no user {SERVICE_USER!r}",
                "deploy/install.sh makes it (useradd --system tribune)",
            )
            return
        if missing:
            self.add(
                "user",
                "problem",
                f"groups missing: {', '.join(missing)} (the unit will not start without them)",
                f"groupadd --system {missing[0]} (for each)",
            )
            return
        self.add("user", "ok", f"{SERVICE_USER} (groups tribune, {', '.join(SERVICE_GROUPS)})")

    # --- the room ---------------------------------------------------------------------------

    def check_config(self) -> Any:
        """room.toml loads and its values suit the profiles (as `tribune config check`)."""
        from tribune.config import line_of, load_config
        from tribune.room import check_config_values

        if not self.config_path.exists():
            self.add(
                "config",
                "problem",
                f"{self.config_path} is missing",
                f"write it (examples/), then `tribune config check {self.config_path}`",
            )
            return None
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self.add("config", "problem", str(exc), "fix the line named, then restart tribune")
            return None
        except OSError as exc:
            self.add(
                "config",
                "problem",
                f"{self.config_path}: {exc.strerror}",
                "run the doctor as root (sudo tribune doctor)",
            )
            return None
        loader = self._loader()
        problems = check_config_values(config, loader)
        if config.buttons.keypads:
            from tribune.inputs.check import check_button_values

            problems += check_button_values(config, loader)
        text = self.config_path.read_text(encoding="utf-8")
        for path, reason in problems:
            line = line_of(text, path)
            where = f"{self.config_path}:{line}" if line else str(self.config_path)
            self.add("config", "problem", f"{where}: {'.'.join(path)}: {reason}")
        if not problems:
            self.add(
                "config",
                "ok",
                f"{self.config_path}: room {config.room.id}, {len(config.devices)} devices",
            )
        return config

    def _loader(self) -> Any:
        from tribune.profiles.store import ProfileStore

        return ProfileStore(self.data_dir).loader()

    def check_profiles(self, config: Any) -> None:
        """Every device's profile loads (installed profiles over the shipped ones)."""
        loader = self._loader()
        for device_id, device in config.devices.items():
            try:
                loaded = loader.load(device.profile)
            except ConfigError as exc:
                self.add(
                    f"profile {device_id}",
                    "problem",
                    str(exc),
                    "tribune profile list; tribune profile install FILE",
                )
                continue
            self.add(f"profile {device_id}", "ok", f"{loaded.profile.id} ({loaded.path})")

    def check_ports(self, config: Any) -> None:
        """Each device node is there and the service user can read and write it."""
        uses_links = False
        for device_id, device in config.devices.items():
            port = str(device.port)
            if port.startswith("usb://"):
                self.add(f"port {device_id}", "skipped", f"{port}: see `tribune usb scan`")
            elif port.startswith("/"):
                uses_links = uses_links or port.startswith("/dev/tribune/")
                self._node(f"port {device_id}", port, device_id)
            else:
                self.add(f"port {device_id}", "skipped", f"{port}: a network device")
        for pad_id, pad in config.buttons.keypads.items():
            if pad.path is not None:
                self._node(f"keypad {pad_id}", pad.path)
            else:
                self.add(
                    f"keypad {pad_id}",
                    "skipped",
                    "found by name/vid:pid: see `tribune buttons list`",
                )
        rules = self.sys.root / "etc/udev/rules.d" / RULES
        if uses_links and not rules.exists():
            self.add(
                "udev rules",
                "problem",
                f"room.toml uses /dev/tribune/ links but {rules} is missing",
                f"tribune udev-rules --config {self.config_path} --write",
            )

    def _node(self, name: str, path: str, device_id: str = "DEVICE") -> None:
        try:
            st = self.sys.stat(path)
        except FileNotFoundError:
            fix = "plug the adapter in (ls -l /dev/serial/by-path/)"
            if path.startswith("/dev/tribune/"):
                fix += "; if it is plugged in, the udev rule is missing or names another socket: "
                fix += (
                    f"tribune udev-rules --config {self.config_path} "
                    f"--node {device_id}=/dev/ttyUSBn --write"
                )
            self.add(name, "problem", f"{path} is missing", fix)
            return
        except OSError as exc:
            self.add(name, "problem", f"{path}: {exc.strerror}")
            return
        if not stat.S_ISCHR(st.st_mode):
            self.add(name, "problem", f"{path} is not a device node", "check the port in room.toml")
            return
        if self.account is None:
            self.add(name, "ok", f"{path}: {_owner(st)} (no service user to judge access for)")
            return
        if _mode_allows(st, self.account, 6):
            self.add(name, "ok", f"{path}: {_owner(st)}")
            return
        self.add(
            name,
            "problem",
            f"{path}: {_owner(st)}: the service user cannot read and write it",
            "install the udev rules (deploy/install.sh; tribune udev-rules --write), then "
            "udevadm trigger --action=change",
        )

    def check_broker(self, config: Any) -> None:
        """The hub's broker answers a TCP connect, when the room syncs."""
        if config.sync is None:
            self.add("broker", "skipped", "no [sync]: the room runs on its own")
            return
        host, port = config.sync.host, config.sync.port
        try:
            self.sys.connect(host, port, 3.0)
        except OSError as exc:
            self.add(
                "broker",
                "problem",
                f"{config.sync.broker}: {exc.strerror or exc}",
                "check the network, the firewall (outgoing TCP to it) and [sync] broker",
            )
            return
        self.add("broker", "ok", f"{config.sync.broker} answers")

    def check_hub_key(self, config: Any) -> None:
        """The hub's public key is set, loads, and the service user can read it: without it
        the room runs whatever reaches its `cmd` topic (and refuses profile pushes)."""
        from tribune.sync.signing import load_public_key

        if config.sync is None:
            self.add("hub key", "skipped", "no [sync]: the room takes no hub commands")
            return
        fix = (
            "on the hub: tribune hub publisher-key > hub.pem; copy it here (e.g. "
            "/etc/tribune/hub.pem) and set [sync] hub_key_file"
        )
        if config.sync.hub_key_file is None:
            self.add(
                "hub key",
                "problem",
                "[sync] hub_key_file is not set: commands are trusted to the broker, "
                "profile pushes refused",
                fix,
            )
            return
        path = (self.config_path.parent / config.sync.hub_key_file).expanduser()
        try:
            load_public_key(path.read_bytes())
        except OSError as exc:
            self.add("hub key", "problem", f"{path}: {exc.strerror or exc}", fix)
            return
        except ValueError as exc:
            self.add("hub key", "problem", f"{path}: {exc}", fix)
            return
        if self.account is not None:
            st = self.sys.stat(str(path))
            if not _mode_allows(st, self.account, 4):
                self.add(
                    "hub key",
                    "problem",
                    f"{path}: {_owner(st)}: the service user cannot read it (every hub "
                    "command would be refused)",
                    f"chmod 0644 {path}",
                )
                return
        self.add("hub key", "ok", f"{path}: the hub's Ed25519 key; only its signed commands run")

    # --- the machine ------------------------------------------------------------------------

    def check_data_dir(self) -> None:
        """The data dir exists, the service user can write it, and the disk has room."""
        path = str(self.data_dir)
        try:
            st = self.sys.stat(path)
        except FileNotFoundError:
            self.add(
                "data dir",
                "problem",
                f"{path} is missing",
                "systemctl start tribune makes it (StateDirectory=), or deploy/install.sh",
            )
            return
        if self.account is not None and not _mode_allows(st, self.account, 3):
            self.add(
                "data dir",
                "problem",
                f"{path}: {_owner(st)}: the service user cannot write it",
                f"chown -R {SERVICE_USER}:{SERVICE_USER} {path}",
            )
        else:
            self.add("data dir", "ok", f"{path}: {_owner(st)}")
        usage = self.sys.disk_usage(path)
        free_mb = usage.free // (1024 * 1024)
        if usage.free < MIN_FREE_BYTES or usage.free < usage.total * MIN_FREE_SHARE:
            self.add(
                "disk",
                "problem",
                f"{free_mb} MB free of {usage.total // (1024 * 1024)} MB",
                "free space: journalctl --vacuum-size=200M; apt-get clean",
            )
        else:
            self.add("disk", "ok", f"{free_mb} MB free")

    def check_clock(self) -> None:
        """A sane year, and NTP synchronised (schedules and certificates need the time)."""
        now = self.sys.now()
        if now.year < MIN_YEAR:
            self.add(
                "clock",
                "problem",
                f"the clock says {now:%Y-%m-%d %H:%M} UTC",
                "timedatectl set-ntp true (or timedatectl set-time 'YYYY-MM-DD HH:MM')",
            )
            return
        synced = self.sys.ntp_synchronized()
        if synced is False:
            self.add(
                "clock",
                "problem",
                f"{now:%Y-%m-%d %H:%M} UTC, not synchronised by NTP",
                "timedatectl set-ntp true; an NTP server in /etc/systemd/timesyncd.conf",
            )
            return
        how = "NTP synchronised" if synced else "NTP state unknown (no answer from timedatectl)"
        self.add("clock", "ok", f"{now:%Y-%m-%d %H:%M} UTC, {how}")


def render(checks: list[Check]) -> str:
    """The human report."""
    label = {"ok": "ok", "problem": "PROBLEM", "skipped": "skipped"}
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{label[check.status]:<8} {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<8} {'':<{width}}  fix: {check.fix}")
    problems = sum(c.status == "problem" for c in checks)
    lines.append(
        f"{problems} problem{'s' if problems != 1 else ''} found" if problems else "all good"
    )
    return "\n".join(lines) + "\n"

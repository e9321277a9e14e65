"""Build the system test's guest: a minimal Debian 12 with tribune installed, as a raw ext4 disk.

Two cached layers under the cache dir (`$TRIBUNE_SYSTEM_CACHE`, default
/var/tmp/tribune-system-test), each keyed by a hash of its inputs:

- `base-<key>/rootfs`: `debootstrap --variant=minbase` of bookworm with `PACKAGES`, from the
  Debian mirror apt already uses on this machine (the slow part: several minutes, done once);
- `image-<key>/`: `disk.raw` (ext4 made with `mkfs.ext4 -d`: no loop device, no mount),
  `vmlinuz` and `initrd.img` for `qemu -kernel/-initrd`. Its key covers the base, the wheels,
  the units and udev rules in systemd/, deploy/, the guest files in tests/system/guest/ and
  this file. tribune is installed from the wheels in a chroot at image time, venv included
  (pip under emulation would take minutes at every boot).

`python -m tests.system.image [--wheels DIR]` builds (or finds) the image and prints its paths.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST = Path(__file__).resolve().parent / "guest"
SUITE = "bookworm"
# What the guest needs: init and udev, the kernel (its initramfs-tools come with it), Python for
# tribune's venv, kmod and usbutils (lsusb) for a technician's look, libusb for `tribune usb
# scan` (pyusb), tzdata for the room's time zone.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "udev",
    "linux-image-amd64",
    "python3",
    "python3-venv",
    "kmod",
    "usbutils",
    "libusb-1.0-0",
    "tzdata",
)
# Bump to rebuild the base layer when the way it is made changes (not its package list).
BASE_RECIPE = "1"
DISK_SIZE = "3G"
KEEP_IMAGES = 2  # older image-* dirs are removed after a build

Log = Callable[[str], None]


def default_cache_dir() -> Path:
    """Where the layers are kept (`$TRIBUNE_SYSTEM_CACHE` or /var/tmp/tribune-system-test)."""
    return Path(os.environ.get("TRIBUNE_SYSTEM_CACHE", "/var/tmp/tribune-system-test"))


def missing_tools() -> list[str]:
    """The host tools the build and the boot need that are not on PATH."""
    tools = ("debootstrap", "mkfs.ext4", "qemu-system-x86_64", "qemu-img", "chroot", "unshare")
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [tool for tool in tools if shutil.which(tool, path=search) is None]


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if found is None:
        raise BuildError(f"{name} is not installed")
    return found


class BuildError(RuntimeError):
    """The image could not be built (the message says which step and why)."""


@dataclass(frozen=True)
class Image:
    """A built guest: boot it with `-kernel kernel -initrd initrd`, root on `disk` (raw)."""

    key: str
    disk: Path
    kernel: Path
    initrd: Path
    built: bool  # False when it came from the cache
    seconds: float  # how long finding or building it took


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (the main archive, not security)."""
    candidates: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    files = sorted(sources.glob("*.sources")) if sources.is_dir() else []
    for path in files:
        for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
            if SUITE in fields.get("suites", "").split() and "deb" in fields.get("types", ""):
                candidates.extend(fields.get("uris", "").split())
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                candidates.append(parts[1])
    for uri in candidates:
        if "security" not in uri:
            return uri.rstrip("/")
    override = os.environ.get("TRIBUNE_SYSTEM_MIRROR")
    if override:
        return override
    raise BuildError(f"no Debian {SUITE} mirror in /etc/apt/sources.list(.d)")


def _hash(parts: Iterable[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:16]


def _tree_parts(root: Path) -> Iterator[str | bytes]:
    """Names and contents of every file under `root` (sorted), for a hash."""
    if not root.exists():
        yield f"missing {root.name}"
        return
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        if "__pycache__" in path.parts:
            continue
        yield str(path.relative_to(root.parent))
        yield path.read_bytes()


def base_key(mirror: str) -> str:
    """The base layer's key: suite, packages, mirror and recipe."""
    return _hash([SUITE, *PACKAGES, mirror, BASE_RECIPE])


def image_key(base: str, wheels: Path) -> str:
    """The image's key: the base, the wheels, units, rules, install script and guest files."""
    parts: list[str | bytes] = [base]
    for tree in (
        wheels,
        REPO / "systemd",
        REPO / "deploy",
        GUEST,
        Path(__file__).resolve(),
    ):
        parts.extend(_tree_parts(tree))
    return _hash(parts)


def _run(cmd: list[str], log: Log, *, timeout: float, what: str, cwd: Path | None = None) -> str:
    log(f"$ {shlex.join(cmd)}")
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        raise BuildError(f"{what}: timed out after {timeout:.0f} s\n{out[-4000:]}") from None
    if done.returncode != 0:
        raise BuildError(f"{what}: exit {done.returncode}\n{done.stdout[-6000:]}")
    return done.stdout


def chroot(rootfs: Path, script: str, log: Log, *, timeout: float = 900, what: str = "") -> str:
    """Run a shell script in the guest's root, with /proc, /sys and /dev mounted.

    The mounts live in a private mount namespace (`unshare -m`): they go with it, even when
    the script is killed, and never show on the host.
    """
    inner = (
        "set -e\n"
        f"R={shlex.quote(str(rootfs))}\n"
        'mount -t proc proc "$R/proc"\n'
        'mount -t sysfs sysfs "$R/sys"\n'
        'mount --rbind /dev "$R/dev"\n'
        'mount -t tmpfs tmpfs "$R/run"\n'
        'exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root '
        "LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -euxc "
        f"{shlex.quote(script)}\n"
    )
    return _run(
        [_tool("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", inner],
        log,
        timeout=timeout,
        what=what or "chroot",
    )


def build_base(cache: Path, log: Log) -> tuple[str, Path]:
    """The debootstrapped root (cached); returns its key and path."""
    mirror = apt_mirror()
    key = base_key(mirror)
    done = cache / f"base-{key}"
    rootfs = done / "rootfs"
    if (done / "ok").exists():
        log(f"base {key}: cached ({rootfs})")
        return key, rootfs
    work = cache / f"tmp-base-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log(f"base {key}: debootstrap {SUITE} from {mirror} (several minutes)")
    _run(
        [
            _tool("debootstrap"),
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(work / "rootfs"),
            mirror,
        ],
        log,
        timeout=3000,
        what="debootstrap",
    )
    # apt's package lists and downloaded .debs are not needed in the guest.
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (work / "rootfs" / junk).glob("*"):
            if path.is_file():
                path.unlink()
    (work / "ok").write_text(f"{SUITE} {' '.join(PACKAGES)} {mirror}\n")
    shutil.rmtree(done, ignore_errors=True)
    work.rename(done)
    return key, rootfs


# Where QEMU puts the USB-serial adapter (tests/system/vm.py: the xHCI controller at PCI slot
# 5, the adapter on its port 1): udev's ID_PATH for the adapter's interface, and the by-path
# name the installer is given for the projector (read as it is: nothing is plugged in at
# image time, as on a PC being prepared before it goes to the room).
PROJECTOR_ID_PATH = "pci-0000:00:05.0-usb-0:1:1.0"
PROJECTOR_BY_PATH = f"/dev/serial/by-path/{PROJECTOR_ID_PATH}-port0"
STAND_IN = "Stand-in written by the system test"

InstallStep = Callable[[Path, Path, Log], None]


def build_image(
    wheels: Path,
    *,
    cache: Path | None = None,
    log: Log = print,
    install: InstallStep | None = None,
) -> Image:
    """The guest image for `wheels` (built, or found in the cache)."""
    started = time.monotonic()
    cache = cache or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if not any(wheels.glob("tribune-*.whl")):
        raise BuildError(f"no tribune wheel in {wheels}")
    with _locked(cache / ".lock"):  # one build at a time per cache (two runs, one machine)
        return _build_image(wheels, cache, log, install, started)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_image(
    wheels: Path, cache: Path, log: Log, install: InstallStep | None, started: float
) -> Image:
    base, base_root = build_base(cache, log)
    key = image_key(base, wheels)
    done = cache / f"image-{key}"
    image = Image(key, done / "disk.raw", done / "vmlinuz", done / "initrd.img", False, 0.0)
    if (done / "ok").exists():
        log(f"image {key}: cached ({done})")
        with contextlib.suppress(OSError):
            os.utime(done)  # most recently used: kept by the pruning below
        return _timed(image, started, built=False)
    work = cache / f"tmp-image-{key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs = work / "rootfs"
    log(f"image {key}: copying the base")
    _run(["cp", "-a", str(base_root), str(rootfs)], log, timeout=600, what="copy the base")
    configure_guest(rootfs, log)
    (install or install_tribune)(rootfs, wheels, log)
    kernel, initrd = _boot_files(rootfs)
    shutil.copy2(kernel, work / "vmlinuz")
    shutil.copy2(initrd, work / "initrd.img")
    log(f"image {key}: mkfs.ext4 -d")
    _run(
        [
            _tool("mkfs.ext4"),
            "-q",
            "-F",
            "-L",
            "tribune-root",
            "-d",
            str(rootfs),
            str(work / "disk.raw"),
            DISK_SIZE,
        ],
        log,
        timeout=900,
        what="mkfs.ext4 -d",
    )
    shutil.rmtree(rootfs)
    (work / "ok").write_text(key + "\n")
    shutil.rmtree(done, ignore_errors=True)
    work.rename(done)
    _prune(cache, keep=done)
    return _timed(image, started, built=True)


def _timed(image: Image, started: float, *, built: bool) -> Image:
    return Image(
        image.key, image.disk, image.kernel, image.initrd, built, time.monotonic() - started
    )


def _boot_files(rootfs: Path) -> tuple[Path, Path]:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise BuildError(f"no kernel or initrd in {rootfs / 'boot'} (linux-image-amd64?)")
    return kernels[-1], initrds[-1]


def _prune(cache: Path, *, keep: Path) -> None:
    """Keep the newest `KEEP_IMAGES` images (by use); remove older ones and stale temp dirs."""
    images = sorted(
        (p for p in cache.glob("image-*") if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in images[KEEP_IMAGES:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
    for stale in cache.glob("tmp-*"):  # a build that was killed (builds hold the lock)
        shutil.rmtree(stale, ignore_errors=True)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _mask(rootfs: Path, unit: str) -> None:
    link = rootfs / "etc/systemd/system" / unit
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def configure_guest(rootfs: Path, log: Log) -> None:
    """What makes the root a quiet, headless test guest (not tribune's install)."""
    log("guest: hostname, fstab, console, test agent")
    _write(rootfs / "etc/hostname", "tribune-lectern\n")
    _write(rootfs / "etc/hosts", "127.0.0.1 localhost\n127.0.1.1 tribune-lectern\n")
    _write(rootfs / "etc/fstab", "/dev/vda / ext4 rw,errors=remount-ro 0 0\n")
    # agetty would hang up ttyS0 (the console the test reads); no one logs in anyway.
    for unit in (
        "serial-getty@ttyS0.service",
        "getty@tty1.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
    ):
        _mask(rootfs, unit)
    (rootfs / "var/log/journal").mkdir(parents=True, exist_ok=True)  # kept across reboots
    _write(
        rootfs / "etc/systemd/journald.conf.d/system-test.conf",
        "[Journal]\nStorage=persistent\nForwardToConsole=yes\nMaxLevelConsole=info\n",
    )
    agent_dir = rootfs / "usr/local/lib/tribune-system-test"
    agent_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(GUEST / "agent.py", agent_dir / "agent.py")
    agent_unit = rootfs / "etc/systemd/system/tribune-test-agent.service"
    shutil.copy2(GUEST / "tribune-test-agent.service", agent_unit)
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "tribune-test-agent.service"
    if not link.is_symlink():
        link.symlink_to("/etc/systemd/system/tribune-test-agent.service")


def install_tribune(rootfs: Path, wheels: Path, log: Log) -> None:
    """Install tribune from `wheels` as a technician does on a lectern PC: deploy/install.sh.

    It runs in the chroot, offline (--wheels), with --no-start (an image being built): the
    `tribune` user, the venv under /opt/tribune, /etc/tribune/room.toml (the guest's), the
    units and udev rules shipped in the wheel, `tribune udev-rules`, `systemctl enable`.
    """
    staged = rootfs / "tmp/tribune-wheels"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(wheels, staged)
    shutil.copy2(GUEST / "room.toml", rootfs / "tmp/tribune-room.toml")
    shutil.copy2(REPO / "deploy" / "install.sh", rootfs / "tmp/tribune-install.sh")
    out = chroot(
        rootfs,
        "sh /tmp/tribune-install.sh --wheels /tmp/tribune-wheels"
        " --config /tmp/tribune-room.toml --no-start"
        f" --udev-node projector={PROJECTOR_BY_PATH}",
        log,
        what="deploy/install.sh",
    )
    log(out[-3000:])
    rules = rootfs / "etc/udev/rules.d/70-tribune.rules"
    if not rules.is_file() or "tribune/projector" not in rules.read_text(encoding="utf-8"):
        # Only so that the checks after the udev one can run; that check fails on it.
        log("install: no /dev/tribune/projector rule from `tribune udev-rules`: a stand-in")
        _write(
            rules,
            f"# {STAND_IN}: `tribune udev-rules` made none.\n"
            f'SUBSYSTEM=="tty", ENV{{ID_PATH}}=="{PROJECTOR_ID_PATH}", '
            'SYMLINK+="tribune/projector"\n',
        )
    for name in ("tribune-wheels", "tribune-room.toml", "tribune-install.sh"):
        path = rootfs / "tmp" / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def build_wheels(log: Log = print) -> Path:
    """`make wheels`: tribune's wheel and every dependency's, in dist/wheels (from PyPI)."""
    _run(["make", "-C", str(REPO), "--no-print-directory", "wheels"], log, timeout=900,
         what="make wheels")  # fmt: skip
    return REPO / "dist" / "wheels"


def main(argv: list[str] | None = None) -> int:
    """Build (or find) the image; print where it is."""
    parser = argparse.ArgumentParser(prog="python -m tests.system.image", description=__doc__)
    parser.add_argument("--wheels", type=Path, help="a wheel dir (default: make wheels)")
    parser.add_argument("--cache", type=Path, default=None, help="the cache dir")
    args = parser.parse_args(argv)
    cache = args.cache or default_cache_dir()
    wheels = args.wheels or build_wheels()
    image = build_image(wheels, cache=cache)
    state = "built" if image.built else "cached"
    print(f"{state} in {image.seconds:.0f} s: {image.disk} {image.kernel} {image.initrd}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

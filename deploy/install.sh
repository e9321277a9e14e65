#!/bin/sh
# tribune: install, upgrade or roll back on a Debian/Ubuntu lectern PC (or the hub's server).
# Offline: everything comes from a folder of wheels; nothing is fetched. docs/install.md.
#
#   deploy/install.sh --wheels DIR [--config FILE] [--udev-node DEVICE=NODE]... [--hub]
#                     [--python PYTHON] [--no-start] [--no-systemctl] [--root DIR]
#   deploy/install.sh --rollback [--no-start] [--no-systemctl] [--root DIR]
#   deploy/install.sh --status [--root DIR]
#
#   --wheels DIR    the tribune wheel and every dependency wheel (`make wheels` -> dist/wheels/);
#                   the highest tribune-*.whl in DIR is installed
#   --config FILE   install FILE as /etc/tribune/room.toml (with --hub: hub.toml), only if there
#                   is none yet: an existing config is never overwritten
#   --udev-node DEVICE=NODE
#                   passed to `tribune udev-rules --node`: room.toml's device DEVICE is the
#                   adapter at NODE, and its /dev/tribune link is keyed on that USB socket (a
#                   /dev/serial/by-path/ name works with nothing plugged in, e.g. while an image
#                   is built); repeatable. Links placed before are kept without it.
#   --hub           the central hub's server: enable tribune-hub.service, not tribune.service
#   --python P      the interpreter the venv is made with (default python3; needs python3-venv)
#   --no-start      enable the units but do not daemon-reload, restart or reload udev (an image
#                   being built, e.g. run inside `chroot IMAGE`)
#   --no-systemctl  no systemctl and no udevadm calls at all (also when they are not installed)
#   --root DIR      install under DIR instead of / (tests): no accounts are made, nothing is
#                   chowned, implies --no-systemctl, and the venv runs with this machine's python
#   --rollback      switch back to the previous release (its units and rules too) and restart;
#                   a second --rollback goes forward again
#   --status        print the current and the previous release
#
# What it does, as root: the `tribune` system user and group (plus the groups dialout, input,
# plugdev if missing); /opt/tribune/releases/VERSION/venv made with `python3 -m venv` and
# `pip install --no-index --find-links DIR tribune==VERSION`; the existing room.toml checked
# with the new release (`tribune config check`: a config it refuses stops the upgrade before
# anything is switched); the symlink /opt/tribune/venv switched atomically to the new venv
# (rename(2)), /opt/tribune/previous to the old one; releases other than these two removed;
# /etc/tribune (config, never overwritten), /var/lib/tribune (data, kept);
# /usr/local/bin/tribune -> /opt/tribune/venv/bin/tribune (for technicians); the units
# (tribune.service, tribune-hub.service to /etc/systemd/system, tribune-kiosk.service to
# /etc/systemd/user) and udev rules of the release (61-tribune-usbrelay.rules always,
# 60-tribune-input.rules only if absent: sites edit it, 70-tribune.rules generated from room.toml
# by `tribune udev-rules`); `systemctl daemon-reload`, enable, restart; `udevadm control
# --reload` and a trigger. Reinstalling the same wheel (by sha256) reuses its release; another
# build of the same version goes to releases/VERSION+SHA12 (a built release is never rebuilt in
# place). An install never creates a room.toml by itself: tribune.service has
# ConditionPathExists=/etc/tribune/room.toml and stays inactive until there is one.
#
# Exit codes: 0 done; 1 failed before the switch (the running release is untouched); 2 usage;
# 3 installed and switched, but a systemctl/udevadm step failed (its message says which).
set -eu

PREFIX=/opt/tribune
ROOT=
WHEELS=
CONFIG=
HUB=0
PYTHON=python3
START=1
SYSTEMCTL=1
ACTION=install
STEP_FAILED=0
UDEV_NODES=

say() { printf 'tribune-install: %s\n' "$*"; }
warn() { printf 'tribune-install: warning: %s\n' "$*" >&2; }
die() { printf 'tribune-install: %s\n' "$*" >&2; exit 1; }
usage() {
    printf 'tribune-install: %s\n' "$*" >&2
    sed -n '5,8p' "$0" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) [ $# -ge 2 ] || usage "--wheels wants a folder"; WHEELS=$2; shift 2 ;;
        --config) [ $# -ge 2 ] || usage "--config wants a file"; CONFIG=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || usage "--python wants an interpreter"; PYTHON=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || usage "--root wants a folder"; ROOT=${2%/}; shift 2 ;;
        --udev-node)
            [ $# -ge 2 ] || usage "--udev-node wants DEVICE=NODE"
            case "$2" in
                *=/*) ;;
                *) usage "--udev-node $2: want DEVICE=NODE, e.g. projector=/dev/serial/by-path/..." ;;
            esac
            case "$2" in *[[:space:]]*|*[*?[]*) usage "--udev-node $2: no spaces or wildcards" ;; esac
            UDEV_NODES="$UDEV_NODES --node $2"; shift 2 ;;
        --hub) HUB=1; shift ;;
        --no-start) START=0; shift ;;
        --no-systemctl) SYSTEMCTL=0; shift ;;
        --rollback) ACTION=rollback; shift ;;
        --status) ACTION=status; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) usage "unknown argument: $1" ;;
    esac
done

OPT=$ROOT$PREFIX
if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || usage "--root $ROOT: no such folder"
    SYSTEMCTL=0
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 ...)"
fi
command -v systemctl >/dev/null 2>&1 || SYSTEMCTL=0
if [ "$HUB" = 1 ]; then
    UNIT=tribune-hub.service
    CONFIG_NAME=hub.toml
else
    UNIT=tribune.service
    CONFIG_NAME=room.toml
fi
ETC=$ROOT/etc/tribune

# --- helpers ---------------------------------------------------------------------------------

# The release a venv link points at ("" when none): /opt/tribune/venv -> releases/V/venv.
release_of() {
    link=$(readlink "$1" 2>/dev/null || true)
    case "$link" in
        releases/*/venv) link=${link#releases/}; printf '%s' "${link%/venv}" ;;
    esac
}

# Point symlink $2 at $1 in one rename(2): readers see the old target or the new, never none.
switch_link() {
    ln -sfn "$1" "$2.tmp.$$"
    mv -T "$2.tmp.$$" "$2"
}

# The shipped files (units, rules) inside a release's venv.
shipped_dir() {
    for dir in "$OPT/releases/$1"/venv/lib/python3*/site-packages/tribune/_systemd; do
        if [ -d "$dir" ]; then printf '%s' "$dir"; return 0; fi
    done
    return 1
}

run_step() {
    if ! "$@"; then
        warn "failed: $*"
        STEP_FAILED=1
    fi
}

ensure_accounts() {
    if [ -n "$ROOT" ]; then
        say "--root: no accounts made"
        return 0
    fi
    for group in dialout input plugdev; do
        getent group "$group" >/dev/null || groupadd --system "$group"
    done
    getent group tribune >/dev/null || groupadd --system tribune
    if getent passwd tribune >/dev/null; then
        usermod -a -G dialout,input,plugdev tribune
    else
        useradd --system --gid tribune --groups dialout,input,plugdev \
            --home-dir /var/lib/tribune --no-create-home --shell /usr/sbin/nologin \
            --comment "tribune room service" tribune
        say "made the system user tribune"
    fi
}

make_dirs() {
    install -d -m 0755 "$OPT" "$OPT/releases" "$ETC"
    data=$ROOT/var/lib/tribune
    [ "$HUB" = 0 ] || data=$ROOT/var/lib/tribune-hub
    if [ -n "$ROOT" ]; then
        install -d -m 0750 "$data"
    else
        install -d -m 0750 -o tribune -g tribune "$data"
    fi
}

# Units and udev rules of release $1 into /etc; the `tribune` command on PATH.
install_files() {
    src=$(shipped_dir "$1") || die "release $1 has no units (tribune/_systemd): a broken wheel?"
    install -d -m 0755 "$ROOT/usr/local/bin"
    if [ -L "$ROOT/usr/local/bin/tribune" ] || [ ! -e "$ROOT/usr/local/bin/tribune" ]; then
        switch_link "$PREFIX/venv/bin/tribune" "$ROOT/usr/local/bin/tribune"
    fi
    install -d -m 0755 "$ROOT/etc/systemd/system" "$ROOT/etc/systemd/user" \
        "$ROOT/etc/udev/rules.d"
    install -m 0644 "$src/tribune.service" "$src/tribune-hub.service" "$ROOT/etc/systemd/system/"
    install -m 0644 "$src/tribune-kiosk.service" "$ROOT/etc/systemd/user/"
    rules=$ROOT/etc/udev/rules.d
    if [ -f "$src/61-tribune-usbrelay.rules" ]; then
        install -m 0644 "$src/61-tribune-usbrelay.rules" "$rules/"
    fi
    if [ -f "$src/60-tribune-input.rules" ]; then
        if [ -e "$rules/60-tribune-input.rules" ]; then
            cmp -s "$src/60-tribune-input.rules" "$rules/60-tribune-input.rules" \
                || say "kept $rules/60-tribune-input.rules (edited for this site; the release's is $src/60-tribune-input.rules)"
        else
            install -m 0644 "$src/60-tribune-input.rules" "$rules/"
        fi
    fi
    if [ "$HUB" = 0 ] && [ -f "$ETC/room.toml" ]; then
        # Stable /dev/tribune/<device> links for the room's serial devices (docs/install.md).
        # $UDEV_NODES is split on purpose: words checked above, without spaces or wildcards.
        # shellcheck disable=SC2086
        if "$OPT/releases/$1/venv/bin/tribune" udev-rules --config "$ETC/room.toml" \
            --write "$rules/70-tribune.rules" $UDEV_NODES; then
            :
        else
            warn "70-tribune.rules not (fully) written: run \`tribune udev-rules\` (docs/install.md)"
        fi
    fi
}

reload_and_restart() {
    [ "$SYSTEMCTL" = 1 ] || { say "no systemctl calls: enable and start $UNIT yourself"; return 0; }
    run_step systemctl enable "$UNIT"
    if [ "$START" = 0 ]; then
        say "enabled $UNIT; not started (--no-start)"
        return 0
    fi
    run_step systemctl daemon-reload
    if command -v udevadm >/dev/null 2>&1; then
        run_step udevadm control --reload
        run_step udevadm trigger --action=change --subsystem-match=tty \
            --subsystem-match=usb --subsystem-match=input --subsystem-match=hidraw
    fi
    if [ -f "$ETC/$CONFIG_NAME" ]; then
        run_step systemctl restart "$UNIT"
        say "restarted $UNIT: \`systemctl status $UNIT\`, \`tribune doctor\`"
    else
        say "no $ETC/$CONFIG_NAME yet: write it, then \`systemctl restart $UNIT\`"
    fi
}

finish() {
    if [ "$STEP_FAILED" = 1 ]; then
        warn "switched to $1, but a step above failed"
        exit 3
    fi
    exit 0
}

# --- status, rollback ------------------------------------------------------------------------

if [ "$ACTION" = status ]; then
    printf 'current:  %s\n' "$(release_of "$OPT/venv")"
    printf 'previous: %s\n' "$(release_of "$OPT/previous")"
    exit 0
fi

if [ "$ACTION" = rollback ]; then
    current=$(release_of "$OPT/venv")
    previous=$(release_of "$OPT/previous")
    [ -n "$previous" ] || die "no previous release to roll back to (see --status)"
    [ -x "$OPT/releases/$previous/venv/bin/tribune" ] \
        || die "previous release $previous is incomplete ($OPT/releases/$previous)"
    switch_link "releases/$previous/venv" "$OPT/venv"
    [ -z "$current" ] || switch_link "releases/$current/venv" "$OPT/previous"
    say "rolled back: $current -> $previous"
    install_files "$previous"
    reload_and_restart
    finish "$previous"
fi

# --- install / upgrade -----------------------------------------------------------------------

[ -n "$WHEELS" ] || usage "give --wheels DIR (or --rollback, --status)"
[ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
WHEELS=$(cd "$WHEELS" && pwd)
wheel=$(ls "$WHEELS"/tribune-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$wheel" ] || die "no tribune-*.whl in $WHEELS (make wheels)"
version=$(basename "$wheel" | cut -d- -f2)
[ -n "$version" ] || die "$wheel: cannot read the version from the file name"
if [ -n "$CONFIG" ]; then
    [ -f "$CONFIG" ] || die "--config $CONFIG: no such file"
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (apt-get install python3 python3-venv)"
sha=$(sha256sum "$wheel" | cut -d' ' -f1)

ensure_accounts
make_dirs

# The release folder: VERSION, or VERSION+SHA when another build of VERSION is already there
# (a built release is never rebuilt in place: it may be the one running).
built_from() { [ -f "$1/.complete" ] && grep -qx "wheel_sha256=$sha" "$1/.complete"; }
name=$version
if [ -f "$OPT/releases/$name/.complete" ] && ! built_from "$OPT/releases/$name"; then
    name=$version+$(printf '%s' "$sha" | cut -c1-12)
fi
release=$OPT/releases/$name
if built_from "$release"; then
    say "release $name is already built from this wheel: reusing it"
else
    rm -rf "$release"  # an unfinished build
    say "building $release/venv from $WHEELS (offline)"
    if ! "$PYTHON" -m venv "$release/venv" \
        || ! "$release/venv/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" \
            --disable-pip-version-check --no-cache-dir "tribune==$version" \
        || ! "$release/venv/bin/tribune" --help >/dev/null; then
        rm -rf "$release"
        die "could not build release $name (nothing was switched)"
    fi
    printf 'version=%s\nwheel=%s\nwheel_sha256=%s\nbuilt=%s\n' "$version" "$(basename "$wheel")" \
        "$sha" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$release/.complete"
fi

if [ -n "$CONFIG" ]; then
    if [ -e "$ETC/$CONFIG_NAME" ]; then
        cmp -s "$CONFIG" "$ETC/$CONFIG_NAME" \
            || say "kept $ETC/$CONFIG_NAME (it differs from $CONFIG; a config is never overwritten)"
    elif [ -n "$ROOT" ]; then
        install -m 0640 "$CONFIG" "$ETC/$CONFIG_NAME"
    else
        install -m 0640 -o root -g tribune "$CONFIG" "$ETC/$CONFIG_NAME"
    fi
fi
if [ "$HUB" = 0 ] && [ -f "$ETC/room.toml" ]; then
    # The new release must accept the room's config before anything is switched.
    if ! "$release/venv/bin/tribune" config check "$ETC/room.toml"; then
        die "release $name refuses $ETC/room.toml (above); nothing was switched"
    fi
fi

current=$(release_of "$OPT/venv")
if [ "$current" != "$name" ]; then
    switch_link "releases/$name/venv" "$OPT/venv"
    [ -z "$current" ] || switch_link "releases/$current/venv" "$OPT/previous"
    say "switched: ${current:-none} -> $name"
else
    say "current release is $name"
fi
previous=$(release_of "$OPT/previous")
for dir in "$OPT"/releases/*; do
    [ -d "$dir" ] || continue
    old=$(basename "$dir")
    if [ "$old" != "$name" ] && [ "$old" != "$previous" ]; then
        rm -rf "$dir"
        say "removed old release $old"
    fi
done

install_files "$name"
reload_and_restart
finish "$name"

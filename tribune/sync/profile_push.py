"""`profile.push`: a device profile sent by the hub, flashed into this room's devices.

The hub signs each push with its publisher key (Ed25519) over the command id, the deadline and
the profile's SHA-256; the room checks the signature against the hub's public key
(`[sync] hub_key_file`) and the text against the SHA-256 before anything else. The broker's ACL
already lets only the hub publish commands; the signature holds even if the broker does not.
A room without `hub_key_file` refuses every push.

Args: `{"profile": "<YAML text>", "sha256": "<hex>", "signature": "<base64>", "filename":
"pjlink.yaml", "device": "projector", "model": "EB-L520U", "force": false}`. The devices
flashed: `device` if given; otherwise every device whose reported `model` equals `model`; without
either, every device configured with the profile's id. Each is flashed through the same
`ProfileFlasher` as the technician API: paused, probed, installed only on a match (or `force`),
hot-swapped. One refusal makes the result `failed`, with each device's reason; a device refused
keeps its old profile.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from tribune.errors import ConfigError, ProfileError, TribuneError
from tribune.sync.signing import verify

log = logging.getLogger(__name__)

CONTEXT = b"tribune profile.push v1\n"


def push_message(command_id: str, deadline: str, sha256: str) -> bytes:
    """The bytes the hub signs and the room verifies."""
    return CONTEXT + f"{command_id}\n{deadline}\n{sha256.lower()}".encode()


def check_push(args: dict[str, Any], public_key: Any, command_id: str, deadline: str) -> str:
    """The profile text of a push whose signature and SHA-256 hold (`ValueError` otherwise)."""
    if public_key is None:
        raise ValueError("this room takes no profile pushes: [sync] hub_key_file is not set")
    text, sha256, signature = args.get("profile"), args.get("sha256"), args.get("signature")
    if not isinstance(text, str) or not text:
        raise ValueError("args.profile: want the profile's YAML text")
    if not isinstance(sha256, str) or not isinstance(signature, str):
        raise ValueError("args.sha256 and args.signature: want text")
    if not verify(public_key, signature, push_message(command_id, deadline, sha256)):
        raise ValueError("signature: not the hub's (refused; nothing changed)")
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != sha256.lower():
        raise ValueError(f"sha256: the profile's is {digest}, the hub said {sha256}")
    for key in ("device", "model", "filename"):
        if key in args and not isinstance(args[key], str):
            raise ValueError(f"args.{key}: want text")
    if "force" in args and not isinstance(args["force"], bool):
        raise ValueError("args.force: want true or false")
    return text


def target_devices(room: Any, args: dict[str, Any], profile_id: str | None) -> list[str]:
    """Which of the room's devices a push is for (see the module's text)."""
    devices: dict[str, Any] = room.runtimes
    if isinstance(args.get("device"), str):
        device = args["device"]
        if device not in devices:
            raise ValueError(f"args.device: no device {device!r} in this room")
        return [device]
    if isinstance(args.get("model"), str):
        wanted = args["model"]
        found = []
        for device_id, runtime in devices.items():
            reading = runtime.state.get("model")
            if reading is not None and str(reading.value) == wanted:
                found.append(device_id)
        if not found:
            raise ValueError(f"no device here reports model {wanted!r}")
        return found
    found = [d for d, runtime in devices.items() if runtime.profile.id == profile_id]
    if not found:
        raise ValueError(f"no device here runs profile {profile_id!r}; name args.device")
    return found


async def run_push(
    flasher: Any, room: Any, args: dict[str, Any], text: str, issued_by: str
) -> tuple[bool, dict[str, Any]]:
    """Flash `text` into the target devices one by one; (all flashed, per-device detail)."""
    from tribune.profiles.flash import ProbeRefusedError, Who
    from tribune.profiles.yamlload import load_yaml

    if flasher is None:
        raise ValueError("this room keeps no profile store: profile pushes need a data dir")
    try:
        parsed = load_yaml(text, args.get("filename") or "profile.yaml").data
    except (ConfigError, ProfileError) as exc:
        raise ValueError(f"profile: {exc}") from None
    profile_id = parsed.get("id") if isinstance(parsed, dict) else None
    devices = target_devices(room, args, profile_id if isinstance(profile_id, str) else None)
    who = Who("hub", issued_by, issued_by)
    outcomes: dict[str, Any] = {}
    all_ok = True
    for device in devices:
        try:
            outcome = await flasher.flash(
                device,
                text,
                by=who,
                filename=args.get("filename"),
                force=bool(args.get("force", False)),
                sha256=args.get("sha256"),
            )
        except ProbeRefusedError as exc:
            all_ok = False
            outcomes[device] = {"status": "refused", "reason": str(exc), "problems": exc.problems}
        except TribuneError as exc:
            all_ok = False
            outcomes[device] = {"status": "failed", "reason": str(exc)}
        else:
            outcomes[device] = {
                "status": "flashed",
                "profile": outcome.profile,
                "version": outcome.version,
                "forced": outcome.forced,
                "audit_id": outcome.audit_id,
            }
        log.warning("hub profile push to %s: %s", device, outcomes[device]["status"])
    return all_ok, {"devices": outcomes}

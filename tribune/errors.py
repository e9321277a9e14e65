"""One exception root for tribune, with a subclass per layer.

Edges convert these: the CLI to exit codes, the API to HTTP statuses, sync to command results.
"""

from __future__ import annotations


class TribuneError(Exception):
    """Root of every error tribune raises on purpose."""


class ConfigError(TribuneError):
    """A configuration or profile file is invalid; the message names file, line and field."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path or ""
        if path and line:
            where = f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class ProfileError(ConfigError):
    """A device profile does not validate."""


class NotSupportedError(TribuneError):
    """The device's profile does not declare this capability or value."""


class LinkError(TribuneError):
    """The link to a device (serial port, TCP socket) cannot be opened or was lost."""


class LinkClosedError(LinkError):
    """The peer closed the link or the port vanished."""


class ProtocolError(TribuneError):
    """Bytes on the link do not form a valid frame for the device's protocol."""


class FrameError(ProtocolError):
    """A corrupt frame; `consumed` bytes should be skipped to resynchronise."""

    def __init__(self, message: str, consumed: int) -> None:
        if consumed < 1:
            raise ValueError("a frame error must consume at least one byte")
        super().__init__(message)
        self.consumed = consumed


class DeviceError(TribuneError):
    """The device answered, but not with success."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class AuthenticationError(DeviceError):
    """The device refused our credentials (e.g. PJLink `ERRA`)."""


class DeviceRefusedError(DeviceError):
    """The device refused the command (unknown command, out of parameter, device failure)."""


class DeviceBusyError(DeviceError):
    """The device is busy (warming, cooling, switching) and asked us to retry later."""


class DeviceTimeoutError(TribuneError, TimeoutError):
    """The device did not answer within the profile's reply timeout."""

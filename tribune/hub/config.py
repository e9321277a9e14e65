"""`hub.toml`: where the hub listens, where it keeps its data, how it reaches the broker.

```toml
[hub]
data_dir = "/var/lib/tribune-hub"
host = "0.0.0.0"           # the API and the fleet page; default 127.0.0.1
port = 8090

[broker]
url = "mqtts://mqtt.egov-centres.az:8883"
username = "hub"           # or a client certificate (cert_file + key_file)
password_file = "hub-mqtt-password"
ca_file = "ca.crt"

[commands]
expiry_margin_s = 30       # no result this long after the deadline: `expired`

[fleet]
lamp_hours_threshold = 3000    # the fleet page marks lamps and filters past these as due
filter_hours_threshold = 2000
```

Files are relative to the config file. Command-line flags override the file.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from tribune.config import Strict, parse_toml, read_config_text
from tribune.errors import ConfigError


class HubSection(Strict):
    """The hub's own settings."""

    data_dir: str = "/var/lib/tribune-hub"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8090


class BrokerSection(Strict):
    """The central broker and the hub's credentials there."""

    url: Annotated[str, Field(description="mqtts://host:8883 or mqtt://host:1883")]
    client_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "tribune-hub"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_broker(value)
        return value

    @model_validator(mode="after")
    def _credentials(self) -> BrokerSection:
        if self.password_file is not None and self.username is None:
            raise ValueError("broker.password_file needs broker.username")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("broker: give cert_file and key_file together")
        if not self.url.startswith("mqtts://") and (self.ca_file or self.cert_file):
            raise ValueError("broker: ca_file/cert_file need an mqtts:// url")
        return self


class CommandsSection(Strict):
    """How the hub follows commands."""

    expiry_margin_s: Annotated[float, Field(ge=0, le=3600)] = 30.0


class FleetSection(Strict):
    """What the fleet page marks as due."""

    lamp_hours_threshold: Annotated[int, Field(ge=1)] = 3000
    filter_hours_threshold: Annotated[int, Field(ge=1)] = 2000


class HubConfig(Strict):
    """A whole `hub.toml`."""

    hub: HubSection = Field(default_factory=HubSection)
    broker: BrokerSection
    commands: CommandsSection = Field(default_factory=CommandsSection)
    fleet: FleetSection = Field(default_factory=FleetSection)


def parse_broker(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of `mqtt://host[:1883]` or `mqtts://host[:8883]`."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"broker {url!r}: bad port") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {url!r}: use mqtts://host:8883 or mqtt://host:1883")
    if parts.path not in ("", "/") or parts.username or parts.query:
        raise ValueError(f"broker {url!r}: want scheme://host[:port] and nothing else")
    tls = parts.scheme == "mqtts"
    return parts.hostname, port or (8883 if tls else 1883), tls


@dataclass(frozen=True, slots=True)
class BrokerLink:
    """What the hub's MQTT link needs, files read."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    tls: ssl.SSLContext | None


def broker_link(section: BrokerSection, base: Path) -> BrokerLink:
    """Read the password file and build the TLS context (`ConfigError` naming the file)."""
    host, port, tls = parse_broker(section.url)
    password = None
    if section.password_file is not None:
        path = (base / section.password_file).expanduser()
        try:
            password = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"broker.password_file {path}: {exc.strerror}") from None
    context = None
    if tls:
        try:
            ca = str(base / section.ca_file) if section.ca_file else None
            context = ssl.create_default_context(cafile=ca)
            if section.cert_file and section.key_file:
                context.load_cert_chain(str(base / section.cert_file), str(base / section.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"broker TLS files: {exc}") from None
    return BrokerLink(host, port, section.client_id, section.username, password, context)


def load_hub_config(path: Path) -> HubConfig:
    """Read and validate a `hub.toml`."""
    return parse_toml(HubConfig, read_config_text(path), str(path))

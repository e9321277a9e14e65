"""The API's JSON shapes (request bodies and responses), which the OpenAPI document publishes.

Response models allow extra keys: the room's snapshot may grow, and clients ignore what they
do not know. The keys named here are the contract.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CapabilityState = Literal["converged", "pending", "failed"]
ParamValue = str | int | float | bool


class Open(BaseModel):
    """A response object that may carry more keys than it names."""

    model_config = ConfigDict(extra="allow")


class Health(Open):
    """A device's health."""

    status: str = Field(description="unknown | online | offline | error")
    since: float
    last_error: str | None = None
    last_error_at: float | None = None
    last_reply_at: float | None = None
    latency_ms: float | None = None
    connection: str


class Reading(Open):
    """A reported value, when it was seen and from where (poll, reply, unsolicited, set)."""

    value: Any
    at: float
    source: str


class Device(Open):
    """One device as the room sees it."""

    id: str
    online: bool
    health: Health
    reported: dict[str, Reading]
    desired: dict[str, Any]
    capabilities: list[str]
    actions: list[str] = Field(default_factory=list)
    status: dict[str, CapabilityState] = Field(
        description="for every desired capability: converged, pending or failed"
    )
    reasons: dict[str, str] = Field(default_factory=dict, description="why pending or failed")


class Room(Open):
    """The whole room."""

    id: str
    converged: bool
    seq: int = Field(description="the event sequence number this snapshot is current to")
    devices: dict[str, Device]


class IntentAccepted(BaseModel):
    """An intent was stored (durably) and the room is now working toward it."""

    audit_id: int = Field(description="id of the intent's audit entry")
    converged: bool = Field(description="whether the whole room already is where it should be")
    status: dict[str, dict[str, CapabilityState]] = Field(
        description="the state of each capability of the devices this intent touched"
    )
    reasons: dict[str, dict[str, str]] = Field(description="why a capability is pending/failed")


class ActionDone(BaseModel):
    """A one-shot action ran and the device acknowledged it."""

    audit_id: int
    device: str
    action: str
    result: str


class RereadDone(BaseModel):
    """What a device said when every readable capability was read again."""

    audit_id: int
    device: str
    values: dict[str, Any]
    errors: dict[str, str]


class Label(BaseModel):
    """A label in the panel's three languages."""

    az: str
    en: str
    ru: str


class Scene(BaseModel):
    """A named desired state the panel shows as one button."""

    id: str
    label: Label
    order: int
    source: str | None = Field(description="the source the scene selects, if any")


class Source(BaseModel):
    """A source tile on the panel."""

    id: str
    label: Label
    order: int
    icon: str | None = None
    active: bool = Field(description="whether this is the source on show")


class AuditEntry(BaseModel):
    """Who asked what, and what came of it."""

    id: int
    at: float
    who: str = Field(description="panel | button | api | hub | schedule | cli | system")
    actor: str | None
    action: str
    detail: dict[str, Any]
    result: str


class AuditPage(BaseModel):
    """Audit entries, newest first; pass `next_before` as `before` for the older ones."""

    entries: list[AuditEntry]
    next_before: int | None


class DeviceHealth(BaseModel):
    """A device's health in one line."""

    online: bool
    status: str
    last_error: str | None


class ServiceHealth(BaseModel):
    """The service is up; how are its devices."""

    status: Literal["ok", "degraded"] = Field(description="degraded: a device is not online")
    room: str
    uptime_s: float
    converged: bool
    devices: dict[str, DeviceHealth]
    broken: dict[str, str] = Field(description="configured devices that could not be started")


class Pointer(BaseModel):
    """What this service is and where its API lives."""

    service: str
    room: str
    api: str
    openapi: str


# Request bodies
DesiredPatch = dict[str, dict[str, Any]]
ActionParams = dict[str, ParamValue]

"""Sync: the room's MQTT link to the hub (retained state, LWT, event outbox, commands)."""

from tribune.sync.client import LinkState, SyncClient
from tribune.sync.topics import Topics

__all__ = ["LinkState", "SyncClient", "Topics"]

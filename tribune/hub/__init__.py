"""The hub: every room's status, state, events and command results, and commands to rooms."""

from tribune.hub.store import HubStorage, HubStore
from tribune.hub.subscriber import HubSubscriber

__all__ = ["HubStorage", "HubStore", "HubSubscriber"]

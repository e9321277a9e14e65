"""The local HTTP API and WebSocket of a room service (and, later, the touch panel's files)."""

from tribune.api.app import create_app
from tribune.api.tokens import Grant, Principal, Tokens

__all__ = ["Grant", "Principal", "Tokens", "create_app"]

"""The technician PIN: hashed, checked in constant time, locked out after wrong tries; sessions
expire."""

from __future__ import annotations

from tribune.api.pin import hash_pin, verify_pin
from tribune.api.technician import MAX_FAILURES, WINDOW_S, TechnicianSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pin_hash_round_trip() -> None:
    hashed = hash_pin("4821", iterations=1000)
    assert verify_pin("4821", hashed)
    assert not verify_pin("4822", hashed)
    assert not verify_pin("4821", "not-a-hash")
    assert "4821" not in hashed


def test_wrong_pins_lock_out_until_the_window_passes() -> None:
    clock = Clock()
    sessions = TechnicianSessions(clock=clock)
    for _ in range(MAX_FAILURES):
        assert sessions.retry_after() == 0
        sessions.failed()
    assert sessions.retry_after() == WINDOW_S
    clock.now += WINDOW_S
    assert sessions.retry_after() == 0


def test_sessions_expire_and_close() -> None:
    clock = Clock()
    sessions = TechnicianSessions(clock=clock, ttl_s=60)
    token, ttl = sessions.open()
    assert ttl == 60
    assert sessions.identify(token) is not None
    assert sessions.identify(token + "x") is None
    clock.now += 61
    assert sessions.identify(token) is None
    token, _ = sessions.open()
    sessions.close(token)
    assert sessions.identify(token) is None

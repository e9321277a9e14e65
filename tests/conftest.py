"""Shared fixtures: profiles and a running event loop per test (pytest-asyncio auto mode)."""

from __future__ import annotations

import pytest

from tribune.profiles.loader import ProfileLoader
from tribune.profiles.schema import Profile


@pytest.fixture(scope="session")
def profiles() -> ProfileLoader:
    """The shipped profiles."""
    return ProfileLoader()


@pytest.fixture(scope="session")
def pjlink_profile(profiles: ProfileLoader) -> Profile:
    """The PJLink class 1 profile."""
    return profiles.load("pjlink").profile

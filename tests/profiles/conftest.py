"""Fixtures for the shipped-profile tests."""

from __future__ import annotations

import pytest

from tribune.profiles.loader import LoadedProfile, ProfileLoader, shipped_profiles_dir


@pytest.fixture(scope="session")
def shipped() -> dict[str, LoadedProfile]:
    """Every shipped profile, loaded and validated once, by id."""
    loader = ProfileLoader([shipped_profiles_dir()])
    return {loaded.profile.id: loaded for loaded in loader.load_all()}

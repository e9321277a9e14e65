"""Hostile profile files: whatever the content, the loader raises only its own typed error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tribune.errors import ConfigError
from tribune.profiles.loader import ProfileLoader

REPO = Path(__file__).resolve().parent.parent
PJLINK = yaml.safe_load((REPO / "firmware-profiles" / "projector" / "pjlink.yaml").read_text())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _load(tmp: Path, text: str) -> None:
    path = tmp / "projector" / "pjlink.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        ProfileLoader([tmp]).load_file(path)
    except ConfigError:
        pass


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.lists(st.sampled_from(sorted(PJLINK)), min_size=1, max_size=1), value=values)
def test_one_field_replaced_by_anything(tmp_path: Path, path: list[str], value: Any) -> None:
    """The real profile with one top-level field replaced by an arbitrary value."""
    data = dict(PJLINK)
    data[path[0]] = value
    _load(tmp_path, yaml.safe_dump(data, allow_unicode=True))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cap=st.sampled_from(sorted(PJLINK["capabilities"])), value=values)
def test_one_capability_replaced_by_anything(tmp_path: Path, cap: str, value: Any) -> None:
    data = dict(PJLINK)
    data["capabilities"] = {**PJLINK["capabilities"], cap: value}
    _load(tmp_path, yaml.safe_dump(data, allow_unicode=True))

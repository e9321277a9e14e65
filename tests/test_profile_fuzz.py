"""Hostile profile files: whatever the content, the loader raises only its own typed error, and
that error names the file and the line.

Arbitrary text and bytes, every shipped profile with its text corrupted at random, and with a
value anywhere in its tree replaced, removed or added. A profile that does load must also
compile (its templates and its codec) the way a device runtime would build it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tribune.drivers.capabilities import CompiledProfile
from tribune.drivers.codecs import make_codec
from tribune.errors import ConfigError, TribuneError
from tribune.profiles.loader import ProfileLoader, shipped_profiles_dir

SHIPPED_DIR = shipped_profiles_dir()
SHIPPED = {path.stem: path for path in ProfileLoader([SHIPPED_DIR]).paths()}
PJLINK = yaml.safe_load((SHIPPED_DIR / "projector" / "pjlink.yaml").read_text())

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["on", "(a+)+$", "{value}", "%1POWR ?", "AA ?? {value:2}", "", "\r"]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _load(tmp: Path, content: str | bytes, name: str = "pjlink", kind: str = "projector") -> None:
    """Load `content` as KIND/NAME.yaml (in a folder of its own, searched before the shipped
    one): it loads and compiles, or raises a ConfigError that names this file and a line."""
    path = Path(tempfile.mkdtemp(dir=tmp)) / kind / f"{name}.yaml"
    path.parent.mkdir()
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    error: ConfigError | None = None
    try:
        loaded = ProfileLoader([path.parent.parent, SHIPPED_DIR]).load_file(path)
    except ConfigError as exc:
        error = exc
    if error is not None:
        assert error.path == str(path), error
        if "bytes; profiles are at most" not in str(error):
            assert error.line is not None, f"no line in: {error}"
        return
    profile = loaded.profile
    try:
        CompiledProfile(profile)
    except TribuneError:
        pass  # e.g. an option without a default: the device's config must give it
    make_codec(profile.codec, profile.codec_options)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a YAML tree (mapping keys and list indexes)."""
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    """A copy of `data` with the node at `path` replaced, removed, or given a new key/item."""
    if not path:
        return value if how == "replace" else data
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        copy: Any = dict(data)
    else:
        copy = list(data)
    if rest:
        copy[head] = _mutate(copy[head], rest, how, value)
    elif how == "replace":
        copy[head] = value
    elif how == "remove":
        del copy[head]
    elif isinstance(copy[head], dict):
        copy[head] = {**copy[head], "extra_key": value}
    elif isinstance(copy[head], list):
        copy[head] = [*copy[head], value]
    else:
        copy[head] = value
    return copy


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    _load(tmp_path, text)


@FUZZ
@given(content=st.binary(max_size=300))
def test_arbitrary_bytes(tmp_path: Path, content: bytes) -> None:
    _load(tmp_path, content)


@FUZZ
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


@FUZZ
@given(profile_id=st.sampled_from(sorted(SHIPPED)), data=st.data())
def test_any_node_of_a_shipped_profile_mutated(
    tmp_path: Path, profile_id: str, data: st.DataObject
) -> None:
    """A value anywhere in a shipped profile replaced, removed or given a sibling."""
    source = SHIPPED[profile_id]
    tree = yaml.safe_load(source.read_text(encoding="utf-8"))
    path = data.draw(st.sampled_from(_paths(tree)))
    how = data.draw(st.sampled_from(["replace", "remove", "add"]))
    mutated = _mutate(tree, path, how, data.draw(values))
    text = yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    _load(tmp_path, text, profile_id, source.parent.name)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(profile_id=st.sampled_from(sorted(SHIPPED)), data=st.data())
def test_a_shipped_profile_with_its_text_corrupted(
    tmp_path: Path, profile_id: str, data: st.DataObject
) -> None:
    """Characters deleted, duplicated or inserted at a few random places of the real file."""
    source = SHIPPED[profile_id]
    text = source.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        size = data.draw(st.integers(0, 8))
        how = data.draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if how == "delete":
            text = text[:at] + text[at + size :]
        elif how == "duplicate":
            text = text[:at] + text[at : at + size] * 2 + text[at + size :]
        else:
            junk = data.draw(st.text(st.sampled_from(":-[]{}&*!|>'\"#%@`, \n\t\\?x1"), max_size=4))
            text = text[:at] + junk + text[at:]
    _load(tmp_path, text, profile_id, source.parent.name)

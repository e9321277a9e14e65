"""Hostile `room.toml` and `hub.toml`: only `ConfigError` escapes, naming the file and a line.

Arbitrary text and bytes, the shipped examples with their text corrupted, with any value in
their tree replaced, removed or added, and the shapes that used to crash the parser (deep
nesting, numbers past Python's 4300-digit limit).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tribune.config import load_config
from tribune.errors import ConfigError
from tribune.hub.config import load_hub_config

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = {path.stem: path.read_text(encoding="utf-8") for path in REPO.glob("examples/*.toml")}
HUB_TOML = """\
[hub]
data_dir = "/var/lib/tribune-hub"
host = "0.0.0.0"
port = 8090

[broker]
url = "mqtts://mqtt.example.az:8883"
cert_file = "hub.pem"
key_file = "hub.key"
ca_file = "ca.pem"

[commands]
expiry_margin_s = 30

[fleet]
lamp_hours_threshold = 3000
"""
SAMPLES = {**{f"room:{k}": v for k, v in EXAMPLES.items()}, "hub:hub": HUB_TOML}
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

Loader = Callable[[Path], object]
LOADERS: dict[str, Loader] = {"room": load_config, "hub": load_hub_config}


def _load(tmp: Path, kind: str, content: str | bytes) -> None:
    """Load `content` as a room.toml or hub.toml: it loads, or a ConfigError names the file and
    a line (a missing section or key has no line of its own: the error names the key)."""
    path = Path(tempfile.mkdtemp(dir=tmp)) / f"{kind}.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    error: ConfigError | None = None
    try:
        LOADERS[kind](path)
    except ConfigError as exc:
        error = exc
    if error is None:
        return
    assert error.path == str(path), error
    if "required key is missing" not in error.reason:
        assert error.line is not None, f"no line in: {error}"


def _toml(value: Any) -> str:
    """`value` as an inline TOML value (None has no TOML form: the key is left out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value if item is not None) + "]"
    items = (f"{json.dumps(str(k), ensure_ascii=False)} = {_toml(v)}" for k, v in value.items())
    return (
        "{"
        + ", ".join(item for item, v in zip(items, value.values(), strict=True) if v is not None)
        + "}"
    )


def _document(data: dict[str, Any]) -> str:
    """A TOML document: one line per top-level key."""
    return "".join(
        f"{json.dumps(key, ensure_ascii=False)} = {_toml(value)}\n"
        for key, value in data.items()
        if value is not None
    )


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return data
    head, rest = path[0], path[1:]
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    if rest:
        copy[head] = _mutate(copy[head], rest, how, value)
    elif how == "remove":
        del copy[head]
    elif how == "add" and isinstance(copy[head], dict):
        copy[head] = {**copy[head], "extra-key": value}
    elif how == "add" and isinstance(copy[head], list):
        copy[head] = [*copy[head], value]
    else:
        copy[head] = value
    return copy


scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(["", "on", "class-end", "daily 25:00", "mqtt://", "baku/room-1", "x" * 300]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


@FUZZ
@given(kind=st.sampled_from(sorted(LOADERS)), text=st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, kind: str, text: str) -> None:
    _load(tmp_path, kind, text)


@FUZZ
@given(kind=st.sampled_from(sorted(LOADERS)), content=st.binary(max_size=300))
def test_arbitrary_bytes(tmp_path: Path, kind: str, content: bytes) -> None:
    _load(tmp_path, kind, content)


@FUZZ
@given(sample=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_any_value_of_a_valid_file_mutated(
    tmp_path: Path, sample: str, data: st.DataObject
) -> None:
    tree = tomllib.loads(SAMPLES[sample])
    path = data.draw(st.sampled_from(_paths(tree)))
    how = data.draw(st.sampled_from(["replace", "remove", "add"]))
    mutated = _mutate(tree, path, how, data.draw(values))
    _load(tmp_path, sample.split(":")[0], _document(mutated))


@FUZZ
@given(sample=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_a_valid_file_with_its_text_corrupted(
    tmp_path: Path, sample: str, data: st.DataObject
) -> None:
    text = SAMPLES[sample]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        size = data.draw(st.integers(0, 8))
        how = data.draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if how == "delete":
            text = text[:at] + text[at + size :]
        elif how == "duplicate":
            text = text[:at] + text[at : at + size] * 2 + text[at + size :]
        else:
            junk = data.draw(st.text(st.sampled_from("[]{}=.,\"'#\n\t\\x1-+:"), max_size=4))
            text = text[:at] + junk + text[at:]
    _load(tmp_path, sample.split(":")[0], text)


def test_the_document_writer_round_trips_the_samples() -> None:
    for text in SAMPLES.values():
        tree = tomllib.loads(text)
        assert tomllib.loads(_document(tree)) == tree


ROOM = EXAMPLES["baku-training-room-1"]
HOSTILE = {
    "deep array": ROOM + "[x]\ny = " + "[" * 5000 + "]" * 5000 + "\n",
    "deep inline table": ROOM + "[x]\ny = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    "deep but parseable": ROOM + "[x]\ny = " + "[" * 200 + "]" * 200 + "\n",
    "5000-digit number": ROOM.replace("grace_minutes = 120", "grace_minutes = 1" + "0" * 5000),
    "number past 64 bits": ROOM.replace("order = 1\n", "order = 1" + "0" * 30 + "\n", 1),
    "huge file": ROOM + "# " + "x" * (1024 * 1024) + "\n",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_shapes_are_refused_quickly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "room.toml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.monotonic() - started < 1.0
    assert caught.value.path == str(path)
    assert caught.value.line is not None

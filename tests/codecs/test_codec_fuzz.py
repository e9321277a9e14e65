"""Every codec, as any profile could configure it, on hostile bytes: only our typed errors escape.

test_codec_properties.py checks framing properties of a few hand-picked configurations; this
file covers what a device (or whatever is on the other end of its cable or socket) can send to
each codec in `CODECS`, with options drawn at random and with each shipped profile's options,
split at arbitrary points, and the layer above: the profile's reply patterns and value decoding.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tribune.drivers.capabilities import CompiledProfile
from tribune.drivers.codecs import CODECS, Codec, Deframer, Frame, make_codec
from tribune.errors import ConfigError, FrameError, ProtocolError, TribuneError
from tribune.profiles.loader import LoadedProfile, ProfileLoader

SHIPPED: dict[str, LoadedProfile] = {
    loaded.profile.id: loaded for loaded in ProfileLoader().load_all()
}

# Bytes a device might send: arbitrary, plus runs built from the bytes codecs care about
# (terminators, prompts, sync and length bytes, PJLink's % and =), so frames do form.
SPECIAL = b"\r\n\x02\x03:%=>#\x00\xaa\xa9\x9a\x20\x21\xa0\xff" + b"PJLINK ERRA1%1POWR=OK"
WIRE = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(list(SPECIAL)) | st.integers(0, 255), max_size=400).map(bytes),
)

BYTE_TEXT = st.text(st.characters(max_codepoint=0x17F), max_size=4)  # some not latin-1
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 700),
    BYTE_TEXT,
    st.lists(st.integers(-1, 256) | BYTE_TEXT, max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
BYTES = st.one_of(
    st.text(st.sampled_from("\r\n\x02\x03:>#%=AB"), max_size=3),
    st.integers(0, 255),
    st.lists(st.integers(0, 255), min_size=1, max_size=3),
)
# A plausible value for each kind of option (how `CODECS` reads it), now and then a wrong one.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "_as_bytes": BYTES,
    "_as_bytes_list": st.lists(BYTES, max_size=3) | BYTES,
    "_as_int": st.integers(0, 600),
    "_as_optional_int": st.none() | st.integers(0, 20),
    "_as_str": st.sampled_from(["sum8", "or", "xor", "none", "crc"]),
}


@st.composite
def codec_options(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Options for codec `name`: plausible values for some of its own options; one time in
    five a wrong value or a stray option."""
    readers = CODECS[name][1]
    chosen = draw(st.lists(st.sampled_from(sorted(readers)), unique=True, max_size=len(readers)))
    options = {key: draw(PLAUSIBLE[readers[key].__name__]) for key in chosen}
    if name == "binary" and draw(st.integers(0, 3)):  # mostly a length it can frame with
        length = draw(st.sampled_from(["fixed_length", "length_index"]))
        options.pop("fixed_length" if length == "length_index" else "length_index", None)
        options[length] = draw(
            st.integers(2, 12) if length == "fixed_length" else st.integers(0, 4)
        )
    spoil = draw(st.integers(0, 9))
    if spoil == 0:
        options["bogus"] = draw(WRONG)
    elif spoil == 1 and readers:
        options[draw(st.sampled_from(sorted(readers)))] = draw(WRONG)
    return options


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given positions (taken modulo its length, in order)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def feed_everything(codec: Codec, chunks: list[bytes]) -> list[Frame | FrameError]:
    """Feed `chunks` through a Deframer; it may yield frames and frame errors, never raise."""
    deframer = Deframer(codec, max_buffer=1024)
    out: list[Frame | FrameError] = []
    for chunk in chunks:
        for item in deframer.feed(chunk):
            assert isinstance(item, Frame | FrameError), item
            out.append(item)
        assert deframer.pending <= 1024 + len(chunk)
    return out


def decode_once(codec: Codec, buf: bytes) -> None:
    """One `decode`: a sane (consumed, frame) or a ProtocolError, nothing else."""
    try:
        consumed, frame = codec.decode(buf)
    except ProtocolError:  # FrameError among them (it always consumes a byte or more)
        return
    assert 0 <= consumed <= len(buf)
    if frame is not None:
        assert consumed >= 1


@pytest.mark.parametrize("name", sorted(CODECS))
@settings(max_examples=120, deadline=None)
@given(data=st.data(), wire=WIRE, cuts=st.lists(st.integers(0, 400), max_size=12))
def test_any_configuration_of_any_codec_on_any_bytes(
    name: str, data: st.DataObject, wire: bytes, cuts: list[int]
) -> None:
    options = data.draw(codec_options(name))
    try:
        codec = make_codec(name, options)
    except ConfigError:
        return  # refused at load with a reason: the profile never runs
    decode_once(codec, wire)
    feed_everything(codec, split(wire, cuts))
    payload = data.draw(st.binary(max_size=40))
    try:
        codec.encode(payload)
    except ProtocolError:
        pass


@pytest.mark.parametrize("profile_id", sorted(SHIPPED))
@settings(max_examples=80, deadline=None)
@given(wire=WIRE, cuts=st.lists(st.integers(0, 400), max_size=12))
def test_each_shipped_profile_decodes_hostile_replies_with_typed_errors_only(
    profile_id: str, wire: bytes, cuts: list[int]
) -> None:
    """Bytes -> frames -> the profile's error patterns, reply patterns and value decoding."""
    profile = SHIPPED[profile_id].profile
    compiled = CompiledProfile(profile)
    frames = feed_everything(make_codec(profile.codec, profile.codec_options), split(wire, cuts))
    frames.append(Frame(data=wire, raw=wire))  # as if the codec had passed it whole
    for frame in frames:
        if not isinstance(frame, Frame):
            continue
        compiled.error_in(frame)
        for cap in compiled.capabilities.values():
            if cap.get is None or cap.get.reply is None:
                continue
            groups = cap.get.reply.match(frame.data)
            if groups is None:
                continue
            try:
                compiled.decode_value(cap, groups)
            except TribuneError:
                pass


def test_every_codec_is_used_by_a_shipped_profile() -> None:
    """So the per-profile fuzz above reaches every codec with options that run for real."""
    assert {loaded.profile.codec for loaded in SHIPPED.values()} == set(CODECS)

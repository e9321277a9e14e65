"""Load and validate device profiles; every error names file, line and field."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tribune.drivers.codecs import make_codec
from tribune.errors import ConfigError, ProfileError
from tribune.profiles.backtracking import check_backtracking
from tribune.profiles.schema import HEX_CODECS, Profile
from tribune.profiles.templates import check_template
from tribune.profiles.yamlload import LocatedDocument, Path_, load_yaml

MAX_PROFILE_BYTES = 256 * 1024
MAX_EXTENDS_DEPTH = 8


def shipped_profiles_dir() -> Path:
    """The firmware-profiles/ folder: beside the package in a checkout, inside it when installed."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "firmware-profiles", package / "_profiles"):
        if candidate.is_dir():
            return candidate
    return package.parent / "firmware-profiles"


@dataclass(frozen=True, slots=True)
class LoadedProfile:
    """A validated profile and the file it came from."""

    profile: Profile
    path: Path
    text: str


def _known_fields(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(loc: Path_) -> type[BaseModel] | None:
    """The pydantic model that owns the last field of `loc`, for "did you mean" hints."""
    model: Any = Profile
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a dict key or list index: stay on the item type below
        model = _item_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _item_model(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as `dict[str, Command] | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        inner = _item_model(arg)
        if inner is not None:
            return inner
    return None


def _describe(error: Mapping[str, Any]) -> str:
    loc: Path_ = tuple(error["loc"])
    field = ".".join(str(p) for p in loc) or "(top)"
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        hint = ""
        if owner is not None:
            close = difflib.get_close_matches(str(loc[-1]), _known_fields(owner), n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return f"{field}: unknown field{hint}"
    if error["type"] == "missing":
        return f"{field}: required field is missing"
    return f"{field}: {error['msg']}"


def _merge(base: Any, override: Any) -> Any:
    """Deep-merge an extending profile over its parent; mappings merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


class ProfileLoader:
    """Finds and loads profiles by id or path, resolving `extends:`."""

    def __init__(self, search_dirs: Iterable[Path] | None = None) -> None:
        self.search_dirs = list(search_dirs) if search_dirs is not None else []
        if not self.search_dirs:
            self.search_dirs = [shipped_profiles_dir()]

    def paths(self) -> Iterator[Path]:
        """Every profile file in the search folders, earlier folders first."""
        for folder in self.search_dirs:
            if folder.is_dir():
                yield from sorted(folder.glob("*/*.yaml"))

    def find(self, profile_id: str) -> Path:
        """The file of a profile id (the first folder that has it wins)."""
        for path in self.paths():
            if path.stem == profile_id:
                return path
        for path in self.paths():
            doc = _read_document(path)
            if isinstance(doc.data, dict) and doc.data.get("id") == profile_id:
                return path
        raise ProfileError(f"no profile with id {profile_id!r} in {self._where()}")

    def _where(self) -> str:
        return ", ".join(str(d) for d in self.search_dirs)

    def load(self, id_or_path: str | Path) -> LoadedProfile:
        """Load a profile given its id or its file path."""
        path = Path(id_or_path)
        if path.suffix not in (".yaml", ".yml"):
            path = self.find(str(id_or_path))
        return self.load_file(path)

    def load_all(self) -> list[LoadedProfile]:
        """Every profile in the search folders; a broken one raises."""
        return [self.load_file(path) for path in self.paths()]

    def load_file(self, path: Path) -> LoadedProfile:
        """Load and validate one profile file."""
        doc = _read_document(path)
        data = self._resolve(doc, [str(path)])
        try:
            profile = Profile.model_validate(data)
        except ValidationError as exc:
            # An unknown field is the likeliest cause (a typo), so name it before what is missing.
            errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            first = errors[0]
            line = doc.line_of(tuple(first["loc"]))
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ProfileError(_describe(first) + more, path=str(path), line=line) from None
        if path.stem != profile.id:
            raise ProfileError(
                f"id: {profile.id!r} must match the file name {path.name!r}",
                path=str(path),
                line=doc.line_of(("id",)),
            )
        _check_templates(profile, doc)
        _check_codec(profile, doc)
        return LoadedProfile(profile, path, doc.source)

    def _resolve(self, doc: LocatedDocument, chain: list[str]) -> dict[str, Any]:
        data = doc.data
        if not isinstance(data, dict):
            raise ProfileError("a profile must be a YAML mapping", path=chain[-1], line=1)
        parent_id = data.get("extends")
        if parent_id is None:
            return data
        if not isinstance(parent_id, str):
            raise ProfileError(
                "extends: must be a profile id", path=chain[-1], line=doc.line_of(("extends",))
            )
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise ProfileError("extends: chain too deep", path=chain[-1])
        try:
            parent_path = self.find(parent_id)
        except ProfileError as exc:
            raise ProfileError(
                f"extends: {exc.reason}", path=chain[-1], line=doc.line_of(("extends",))
            ) from None
        if str(parent_path) in chain:
            raise ProfileError(f"extends: cycle through {parent_id!r}", path=chain[-1])
        parent = self._resolve(_read_document(parent_path), [*chain, str(parent_path)])
        parent = {k: v for k, v in parent.items() if k not in ("id", "extends")}
        return dict(_merge(parent, data))


def _read_document(path: Path) -> LocatedDocument:
    try:
        size = path.stat().st_size
        if size > MAX_PROFILE_BYTES:
            raise ProfileError(
                f"file is {size} bytes; profiles are at most {MAX_PROFILE_BYTES}", path=str(path)
            )
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProfileError("not UTF-8 text", path=str(path), line=line) from None
    return load_yaml(text, str(path))


def _check_codec(profile: Profile, doc: LocatedDocument) -> None:
    """Build the codec as a device runtime will, so bad `codec_options` fail here, not later."""
    try:
        make_codec(profile.codec, profile.codec_options)
    except ConfigError as exc:
        line = doc.line_of(("codec_options",)) or doc.line_of(("codec",))
        raise ProfileError(f"codec_options: {exc}", path=doc.source, line=line) from None


def _check_templates(profile: Profile, doc: LocatedDocument) -> None:
    binary = profile.codec in HEX_CODECS

    def check(text: str | None, loc: Path_, *, reply: bool) -> None:
        if text is None:
            return
        try:
            check_template(text, binary=binary, reply=reply)
        except ValueError as exc:
            field = ".".join(map(str, loc))
            raise ProfileError(f"{field}: {exc}", path=doc.source, line=doc.line_of(loc)) from None

    for name, cap in profile.capabilities.items():
        for kind, command in (("get", cap.get), ("set", cap.set)):
            if command is not None:
                check(command.send, ("capabilities", name, kind, "send"), reply=False)
                check(command.reply, ("capabilities", name, kind, "reply"), reply=True)
        for value, command in (cap.set_each or {}).items():
            check(command.send, ("capabilities", name, "set_each", value, "send"), reply=False)
            check(command.reply, ("capabilities", name, "set_each", value, "reply"), reply=True)
    for name, action in profile.actions.items():
        check(action.send, ("actions", name, "send"), reply=False)
        check(action.reply, ("actions", name, "reply"), reply=True)
    for i, err in enumerate(profile.errors):
        check(err.match, ("errors", i, "match"), reply=True)
    for i, ident in enumerate(profile.identify):
        check(ident.send, ("identify", i, "send"), reply=False)
        check(ident.reply, ("identify", i, "reply"), reply=True)
        if ident.expect is not None:
            try:
                check_backtracking(re.compile(ident.expect).pattern)
            except re.error as exc:
                raise ProfileError(
                    f"identify.{i}.expect: bad regular expression: {exc}",
                    path=doc.source,
                    line=doc.line_of(("identify", i, "expect")),
                ) from None
            except ValueError as exc:
                raise ProfileError(
                    f"identify.{i}.expect: {exc}",
                    path=doc.source,
                    line=doc.line_of(("identify", i, "expect")),
                ) from None

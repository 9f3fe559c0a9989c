"""Turn validated session data into the typed model (``model.py``).

Runs only on data that passed the schema and the semantic checks, so it cannot fail: every
unit string parses and every name resolves. One generic builder serves every model class,
driven by the ``key``/``kind`` metadata of its fields.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from render.session import units
from render.session.model import (
    DEFAULT_SAMPLE_RATE,
    EFFECTS,
    EQ_BAND_TYPES,
    Bus,
    EqBand,
    Mastering,
    MixBus,
    Output,
    Send,
    Session,
    Track,
)


@dataclass(frozen=True)
class _Folders:
    session: Path  # relative paths in effects (reverb IRs) and output.dir
    stems: Path  # relative stem paths


def build_session(
    data: dict[str, Any], session_path: Path, out_dir: Path, marks: dict[str, str] | None = None
) -> Session:
    """The model of a session whose data passed validation; ``out_dir`` is already resolved;
    ``marks`` locate key paths in the file, for errors found while rendering."""
    session_dir = Path(os.path.abspath(session_path)).parent
    folders = _Folders(session_dir, Path(os.path.normpath(session_dir / data.get("stems", "."))))
    title = data.get("title") or Path(session_path).stem
    output = _build(Output, data.get("output", {}), folders)
    return Session(
        path=Path(os.path.abspath(session_path)),
        title=title,
        artist=data.get("artist"),
        sample_rate=data.get("sample_rate", DEFAULT_SAMPLE_RATE),
        stems_dir=folders.stems,
        seed=data["seed"] if "seed" in data else seed_from_title(title),
        tempo_bpm=units.number("tempo_bpm", data["tempo"]) if "tempo" in data else None,
        tracks=tuple(
            _build(Track, settings, folders, name=name) for name, settings in data["tracks"].items()
        ),
        buses=tuple(
            _build(Bus, settings or {}, folders, name=name)
            for name, settings in data.get("buses", {}).items()
        ),
        mix=_build(MixBus, data.get("mix", {}), folders),
        mastering=_build(Mastering, data["mastering"], folders) if "mastering" in data else None,
        output=Output(dir=out_dir, mix=output.mix, master=output.master),
        marks=marks or {},
    )


def build_part(cls: type, raw: Any, folder: Path) -> Any:
    """A model part (a ``Target``, a ``Deliverable``) of another file that shares the session
    format's vocabulary, its relative paths resolved against ``folder``."""
    return _build(cls, raw, _Folders(folder, folder))


def seed_from_title(title: str) -> int:
    """The default seed: stable for a song whatever else changes in its session."""
    return int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:4], "big")


def _build(cls: type, raw: Any, folders: _Folders, **given: Any) -> Any:
    """An instance of model ``cls`` from its session mapping (or its one-value shorthand)."""
    if not isinstance(raw, dict):
        raw = {cls.shorthand: raw}  # e.g. `fade_in: 2 s` means `fade_in: {length: 2 s}`
    if cls is EqBand:
        band_type = next(key for key in EQ_BAND_TYPES if key in raw)
        given |= {"type": band_type, "frequency_hz": units.number("frequency_hz", raw[band_type])}
    for field in fields(cls):
        name = field.metadata.get("key")
        if name is not None and name in raw:
            given[field.name] = _value(field.metadata, raw[name], folders)
    return cls(**given)


def _value(metadata: Any, raw: Any, folders: _Folders) -> Any:
    kind, model = metadata.get("kind"), metadata.get("model")
    if model is not None:
        if metadata.get("many"):
            return tuple(
                _build(model, item, folders) for item in (raw if isinstance(raw, list) else [raw])
            )
        return _build(model, raw, folders)
    if kind is None:
        return raw
    if kind == "stem_path":
        return Path(os.path.normpath(folders.stems / raw))
    if kind == "path":
        return Path(os.path.normpath(folders.session / raw))
    if kind == "effects":
        return tuple(
            _build(EFFECTS[name], parameters if parameters is not None else {}, folders)
            for item in raw
            for name, parameters in item.items()
        )
    if kind == "sends":
        return {bus: _build(Send, level, folders) for bus, level in raw.items()}
    if metadata.get("many"):
        return tuple(units.number(kind, item) for item in raw)
    return units.parse(kind, raw)

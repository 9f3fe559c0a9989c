"""The typed album: frozen dataclasses built once from a validated album file.

Defaults here are the documented defaults of ``schemas/album.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from render.session.model import Deliverable, Session, Target

LoudnessMode = Literal["album", "track"]
DEFAULT_TRACKS = (Deliverable(format="flac", bit_depth=24),)


@dataclass(frozen=True)
class Song:
    """One song of the album, its session loaded and validated."""

    number: int  # the track number, 1-based, in running order
    session: Session
    title: str
    isrc: str | None = None
    gap_before_s: float = 0.0
    crossfade_s: float = 0.0  # into the next song
    gain_db: float = 0.0


@dataclass(frozen=True)
class Album:
    """A whole album file, paths resolved against its folder."""

    path: Path
    title: str
    artist: str | None
    year: int | None
    upc: str | None
    songs: tuple[Song, ...]
    mode: LoudnessMode
    target: Target
    sample_rate: int  # every song's render rate (the checks make them agree)
    out_dir: Path
    tracks: tuple[Deliverable, ...] = DEFAULT_TRACKS
    album_file: Deliverable | None = None
    marks: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def where(self, key_path: str) -> str:
        """``album.yaml:12:5: songs[1].crossfade`` (the file alone when the key has no mark)."""
        mark = self.marks.get(key_path)
        return f"{mark}: {key_path}" if mark else f"{self.path}: {key_path}"

"""Loading an album file: YAML with line marks → album schema → album checks (each song's
session loaded and validated as ``render`` loads it) → typed model.

A file is an album when its top level has a ``songs`` list (``is_album``); everything else
is read as a session. ``load_album`` returns an ``Album`` or raises one ``SessionError``
listing every problem of the album file and of every song's session, each in its own file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from render import lossy
from render.album.model import DEFAULT_TRACKS, Album, Song
from render.album.sequence import CD_FRAMES_PER_S
from render.errors import SessionError
from render.manifest import input_files
from render.session import LoadOptions, Session, load_session, units
from render.session.build import build_part
from render.session.checks import (
    SessionChecks,
    listing,
    mapping,
    parsed,
    resolve_output_dir,
)
from render.session.model import Deliverable, Target
from render.session.validate import describe, validate
from render.session.yaml_source import KeyPath, YamlDocument, format_path, load_yaml_file

ALBUM_SCHEMA = "album.schema.json"


def is_album(path: Path) -> bool:
    """Whether ``path`` holds an album (a top-level ``songs`` key) rather than a session."""
    data = load_yaml_file(path, str(path)).data
    return isinstance(data, dict) and "songs" in data


def load_album(path: Path, options: LoadOptions | None = None) -> Album:
    """Read, validate and model the album at ``path`` and the session of every song."""
    options = options or LoadOptions()
    document = load_yaml_file(path, str(path))
    problems = validate(document, ALBUM_SCHEMA)
    checks = AlbumChecks(document, path, options)
    problems += checks.run()
    if problems:
        raise SessionError(problems, "album")
    data: dict[str, Any] = document.data
    folder = Path(os.path.abspath(path)).parent
    songs = tuple(
        _song(index + 1, raw, checks.sessions[index]) for index, raw in enumerate(data["songs"])
    )
    loudness = data["loudness"]
    written = data.get("deliver", {})
    tracks = written.get("tracks")
    return Album(
        path=Path(os.path.abspath(path)),
        title=data["title"],
        artist=data.get("artist"),
        year=data.get("year"),
        upc=data.get("upc"),
        songs=songs,
        mode=loudness.get("mode", "album"),
        target=build_part(Target, loudness["target"], folder),
        sample_rate=songs[0].session.sample_rate,
        out_dir=resolve_output_dir(document, path, options, "deliver"),
        tracks=tuple(build_part(Deliverable, t, folder) for t in _many(tracks))
        if tracks is not None
        else DEFAULT_TRACKS,
        album_file=build_part(Deliverable, written["album"], folder)
        if "album" in written
        else None,
        marks={
            format_path(key): f"{document.label}:{mark.line}:{mark.column}"
            for key, mark in document.value_marks.items()
        },
    )


def _song(number: int, raw: dict[str, Any], session: Session) -> Song:
    return Song(
        number=number,
        session=session,
        title=raw.get("title") or session.title,
        isrc=raw.get("isrc"),
        gap_before_s=units.parse("time_s", raw.get("gap_before", 0)),
        crossfade_s=units.parse("time_s", raw.get("crossfade", 0)),
        gain_db=units.parse("level_db", raw.get("gain", 0)),
    )


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit of ``digits`` (a UPC-A or EAN-13 without its last digit):
    from the right, digits weigh 3, 1, 3, ...; the check digit tops the sum up to a multiple
    of 10."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return -total % 10


def _many(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class AlbumChecks(SessionChecks):
    """What the album schema cannot express: every song's session (loaded with the session
    checks, its errors in its own file), running order, sample rates, deliverables, the
    output folder. The file and output-folder checks are the session's own."""

    OUTPUT_SECTION = "deliver"

    def __init__(self, document: YamlDocument, album_path: Path, options: LoadOptions):
        super().__init__(document, album_path, options)
        self.sessions: dict[int, Session] = {}

    @property
    def sample_rate(self) -> Any:
        rates = [session.sample_rate for session in self.sessions.values()]
        return rates[0] if rates else None

    def run(self) -> list[Any]:
        songs = listing(self.data.get("songs"))
        for index, song in enumerate(songs):
            self.check_song(index, mapping(song))
        self.check_order(songs)
        self.check_upc()
        self.check_rates()
        self.check_target()
        self.check_deliverables()
        self.check_outputs_of_album()
        return self.problems

    def check_song(self, index: int, song: dict[str, Any]) -> None:
        written = song.get("session")
        if not isinstance(written, str):
            return
        path: KeyPath = ("songs", index, "session")
        if (target := self.inside(path, written, self.session_dir)) is None:
            return
        if not target.is_file():
            self.error(path, f'no session file "{target}"; expected a path relative to the album')
            return
        # The song's errors keep their own file, line and key: its path as the user reaches it.
        shown = Path(os.path.normpath(Path(self.session_path).parent / written))
        try:
            session = load_session(shown, LoadOptions(self.options.allow_outside_paths))
        except SessionError as e:
            self.problems += e.diagnostics
            return
        self.sessions[index] = session
        self.inputs += [(path, session.path), *((path, f) for f in input_files(session))]

    def check_order(self, songs: list[Any]) -> None:
        for index, song in enumerate(songs):
            crossfade = parsed("time_s", mapping(song).get("crossfade", 0)) or 0.0
            if crossfade <= 0.0:
                continue
            if index == len(songs) - 1:
                self.error(
                    ("songs", index, "crossfade"),
                    "the last song has nothing to fade into; expected `crossfade` on a song "
                    "that has a next one",
                    of_key=True,
                )
            elif (parsed("time_s", mapping(songs[index + 1]).get("gap_before", 0)) or 0.0) > 0:
                self.error(
                    ("songs", index + 1, "gap_before"),
                    "the previous song crossfades into this one, so there is no gap to leave; "
                    "expected a crossfade or a gap, not both",
                    of_key=True,
                )

    def check_upc(self) -> None:
        """A UPC-A or EAN-13 ends in a check digit (GS1 General Specifications §7.9): a
        mistyped code, which a distributor would reject, is caught here."""
        upc = self.data.get("upc")
        if not isinstance(upc, str) or not re.fullmatch(r"[0-9]{12,13}", upc):
            return  # the schema's pattern reports it
        expected = gs1_check_digit(upc[:-1])
        if int(upc[-1]) != expected:
            self.error(
                ("upc",),
                f'the check digit of "{upc}" is {upc[-1]}, expected {expected}; expected '
                "the release's code as the label or distributor issued it",
            )

    def check_rates(self) -> None:
        first = next(iter(self.sessions.items()), None)
        for index, session in self.sessions.items():
            if first is not None and session.sample_rate != first[1].sample_rate:
                self.error(
                    ("songs", index, "session"),
                    f"this song renders at {session.sample_rate} Hz and song {first[0] + 1} at "
                    f"{first[1].sample_rate} Hz; expected every song at one `sample_rate` "
                    "(the album is sequenced at that rate)",
                )

    def check_target(self) -> None:
        target = mapping(mapping(self.data.get("loudness")).get("target"))
        if target and "loudness" not in target and "preset" not in target:
            self.error(
                ("loudness", "target"),
                "an album needs a loudness to aim at; expected `loudness` or `preset` here",
            )

    def check_deliverables(self) -> None:
        deliver = mapping(self.data.get("deliver"))
        written = deliver.get("tracks", [])
        tracks = written if isinstance(written, list) else [written]
        formats: dict[Any, int] = {}
        for index, track in enumerate(map(mapping, tracks)):
            path = (
                ("deliver", "tracks", index) if isinstance(written, list) else ("deliver", "tracks")
            )
            if "name" in track:
                self.error(
                    (*path, "name"),
                    'track files are named "<NN> <title>.<ext>"; expected no `name` here',
                    of_key=True,
                )
            elif (kind := track.get("format")) in formats:
                self.error(
                    (*path, "format"),
                    f"another track deliverable is {describe(kind)} too, and both would be "
                    "written to the same files; expected one deliverable per format",
                )
            formats.setdefault(track.get("format"), index)
            self._check_deliverable(path, track, "track", {})
        album = mapping(deliver.get("album"))
        if album:
            self._check_deliverable(("deliver", "album"), album, "album", {})
            rate = album.get("sample_rate", self.sample_rate)
            if isinstance(rate, int) and rate % CD_FRAMES_PER_S:
                self.error(
                    ("deliver", "album", *(("sample_rate",) if "sample_rate" in album else ())),
                    f"the album file at {rate} Hz has no whole number of samples per CD frame "
                    "(1/75 s), so the CUE sheet could not match it to the sample; expected a "
                    "multiple of 75 Hz, e.g. 44100 or 48000",
                )
            if album.get("format") in lossy.LOSSY_FORMATS:
                self.error(
                    ("deliver", "album", "format"),
                    "a lossy encoder adds priming delay, so the CUE sheet could not match it "
                    "to the sample; expected wav, flac or aiff",
                )

    def check_outputs_of_album(self) -> None:
        self.inputs.append((("songs",), Path(self.session_path)))
        self._check_output_dir(
            resolve_output_dir(self.document, self.session_path, self.options, "deliver")
        )

"""Album QC: every song's QC (its first track file as written, checked against its own
album goal), the album's loudness spread, each song's tonal balance against the album's
average, and the checks of the continuous album file. Data only; ``render.report`` words it.

Tonal balance is the energy per octave band relative to the song's total (``Analysis``),
so it compares songs whatever their loudness. The album's average is the mean of the songs'
band levels in dB; a song is flagged where a band lies more than ``TONAL_WARN_DB`` from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from render.qc import Check, FileReport, Report, Status, assess, worst
from render.session.model import Target

TONAL_WARN_DB = 3.0
"""A band this far from the album's average is a song that stands out: 3 dB over an octave
is the size of a deliberate shelf or bell move in mastering, clearly heard when the songs
play one after another."""
TONAL_RANGE_HZ = (63.0, 8000.0)
"""The octave bands checked: outside them the energy is small and follows the arrangement
(a song without sub-bass or cymbals is not out of balance), so they are shown, not judged."""


@dataclass(frozen=True)
class TrackStart:
    """Where a song begins in the continuous album file, at the file's rate."""

    number: int
    index_00_sample: int  # the pre-gap's first sample (= index_01_sample without one)
    index_01_sample: int
    index_01_frames: int  # the same instant in CD frames (1/75 s)
    index_01_time: str  # and as the CUE sheet writes it, mm:ss:ff


@dataclass(frozen=True)
class SongQC:
    """One song: its QC report (one file), goal and tonal deviation from the album."""

    number: int
    title: str
    goal_lufs: float
    report: Report
    deviation_db: tuple[float, ...]  # octave level minus the album's average, per band
    tonal: Check

    @property
    def file(self) -> FileReport:
        return self.report.files[0]

    @property
    def status(self) -> Status:
        return worst(check.status for check in (*self.report.checks, self.tonal))


@dataclass(frozen=True)
class AlbumReport:
    """The QC report of an album build."""

    title: str
    album: Path  # the album file, as named in the report
    mode: str
    target_lufs: float
    ceiling_dbtp: float | None
    songs: tuple[SongQC, ...]
    bands_hz: tuple[float, ...]
    average_levels_db: tuple[float, ...]  # the album's tonal balance
    album_file: Report | None  # the continuous file's checks
    starts: tuple[TrackStart, ...]  # empty without an album file

    @property
    def spread_lu(self) -> float:
        """Loudest minus quietest song (integrated loudness as written)."""
        levels = [song.file.analysis.loudness.integrated_lufs for song in self.songs]
        heard = [level for level in levels if math.isfinite(level)]
        return max(heard) - min(heard) if heard else math.nan

    @property
    def checks(self) -> tuple[Check, ...]:
        songs = [check for song in self.songs for check in (*song.report.checks, song.tonal)]
        return (*songs, *(self.album_file.checks if self.album_file else ()))

    @property
    def status(self) -> Status:
        return worst(check.status for check in self.checks)


@dataclass(frozen=True)
class SongFigures:
    """What the album build measured of one song, for ``assess_album``."""

    number: int
    title: str
    session: Path
    goal_lufs: float
    file: FileReport
    limiting_db: float | None
    notes: tuple[str, ...]


def assess_album(
    title: str,
    album: Path,
    mode: str,
    target: Target,
    songs: Sequence[SongFigures],
    album_file: FileReport | None = None,
    starts: Sequence[TrackStart] = (),
) -> AlbumReport:
    """Check every song against its goal and the album's ceiling, and against the album's
    tonal balance; check the album file against the ceiling."""
    bands = songs[0].file.analysis.octave_bands_hz
    levels = [song.file.analysis.octave_levels_db for song in songs]
    average = tuple(_mean_finite([song[band] for song in levels]) for band in range(len(bands)))
    reports = []
    for song, song_levels in zip(songs, levels, strict=True):
        goal = Target(
            loudness_lufs=song.goal_lufs,
            true_peak_dbtp=target.ceiling_dbtp,
            lra=target.lra,
            max_limiting_db=target.max_limiting_db,
        )
        report = assess(song.title, song.session, goal, song.limiting_db, [song.file], song.notes)
        # The limiter's check is about the song's master: name the song's file, not "master".
        checks = tuple(replace(check, file=song.file.path.name) for check in report.checks)
        report = replace(report, checks=checks)
        deviation = tuple(level - mean for level, mean in zip(song_levels, average, strict=True))
        tonal = _tonal(song.file.path.name, bands, deviation)
        reports.append(SongQC(song.number, song.title, song.goal_lufs, report, deviation, tonal))
    whole = None
    if album_file is not None:
        ceiling = Target(true_peak_dbtp=target.ceiling_dbtp)
        whole = assess(title, album, ceiling, None, [album_file])
        # Silence in the album file is the pre-gaps and crossfaded ends the album asks for.
        kept = tuple(check for check in whole.checks if check.name != "silence")
        whole = replace(whole, checks=kept)
    return AlbumReport(
        title=title,
        album=album,
        mode=mode,
        target_lufs=target.integrated_lufs,  # type: ignore[arg-type]  # albums require one
        ceiling_dbtp=target.ceiling_dbtp,
        songs=tuple(reports),
        bands_hz=bands,
        average_levels_db=average,
        album_file=whole,
        starts=tuple(starts),
    )


def _tonal(file: str, bands_hz: Sequence[float], deviation_db: Sequence[float]) -> Check:
    low, high = TONAL_RANGE_HZ
    judged = [
        (band, off)
        for band, off in zip(bands_hz, deviation_db, strict=True)
        if low <= band <= high and math.isfinite(off)
    ]
    band, off = max(judged, key=lambda item: abs(item[1]), default=(math.nan, 0.0))
    status: Status = "warn" if abs(off) > TONAL_WARN_DB else "pass"
    where = f"{band / 1000:g} kHz" if band >= 1000 else f"{band:g} Hz"
    detail = "" if status == "pass" else f"the song stands out at {where}"
    return Check(
        "tonal_balance",
        file,
        status,
        f"{off:+.1f} dB at {where}" if judged else "no band",
        f"within ±{TONAL_WARN_DB:g} dB of the album average, {low:g} Hz - {high / 1000:g} kHz",
        detail,
    )


def _mean_finite(values: Sequence[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return math.fsum(finite) / len(finite) if finite else -math.inf

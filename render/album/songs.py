"""One song of an album, as a worker process renders it.

Album loudness needs every song's level before any song's final gain, so a song is rendered
in two steps. ``measure``: the session's mix and its mastering chain up to the final
limiter (``pipeline.premaster``), kept in the scratch folder as a ``.npy`` file (a worker
hands back a path, not a pickled array), and the song's own level (all three from the render
cache where it holds them). ``finish``: the gain into
the limiter that lands the song's album goal, the track files written and measured as
written, and the master kept for the continuous album file. Both are plain functions of
their arguments, so any process computes the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from render import audio_io
from render.album.model import Album, Song
from render.album.reuse import KeptSong
from render.album.tags import Tags, write_tags
from render.cache import CacheOptions
from render.deliver import Delivered, deliver
from render.incremental import Account
from render.master import master_at, plan_master
from render.pipeline import premaster, premaster_key
from render.session.checks import master_file_stem, output_file_name
from render.session.model import Deliverable, Limiter, Mastering, Session, Target
from render.session.normalise import normalised


@dataclass(frozen=True)
class SongJob:
    """What a worker needs to render one song of an album."""

    song: Song
    session: Session  # the song's session, its target replaced by the album's
    own_goal_lufs: float | None  # the session's own loudness target: the song's own level
    measure_level: bool  # mode album: the own level is needed
    scratch: Path  # the album's temporary folder
    album_rate: int | None  # the album file's rate: the master is kept at it (None: no file)
    caching: CacheOptions  # the render cache the song's mix is taken from and kept in
    limiter_input_key: str | None  # its limiter input's cache key (None without a cache)

    @property
    def limiter_input_path(self) -> Path:
        return self.scratch / f"{self.song.number:02d}-limiter-input.npy"

    @property
    def master_path(self) -> Path:
        return master_path(self.scratch, self.song.number)


@dataclass(frozen=True)
class Level:
    """A song measured at its own level (NaN when its mode needs none)."""

    loudness_lufs: float
    duration_s: float
    tracks: tuple[str, ...]
    notes: tuple[str, ...]
    cache: Account  # what came from the render cache, and what was rendered and why


@dataclass(frozen=True)
class Finished:
    """A song mastered to its album goal and its track files written."""

    goal_lufs: float
    loudness_lufs: float  # the master's, before its files were written
    gain_db: float  # into the final limiter
    limiting_db: float
    ceiling_dbtp: float | None
    limiter: Limiter | None  # the final limiter's settings, to limit crossfades again
    files: tuple[Delivered, ...]
    notes: tuple[str, ...]
    kept: bool = False  # its files are the last build's, left as they were (not written)


def song_job(album: Album, song: Song, scratch: Path, caching: CacheOptions) -> SongJob:
    """The job of ``song``: its session mastered to the album target (the album's ceiling,
    else the session's own), by the session's own chain."""
    session = song.session
    own = session.mastering.target if session.mastering else Target()
    ceiling_dbtp = album.target.ceiling_dbtp
    target = replace(
        album.target,
        preset=None,
        loudness_lufs=album.target.integrated_lufs,
        true_peak_dbtp=own.ceiling_dbtp if ceiling_dbtp is None else ceiling_dbtp,
    )
    chain = session.mastering.chain if session.mastering else ()
    mastered = replace(session, mastering=Mastering(chain=chain, target=target))
    file = album.album_file
    album_rate = None if file is None else file.sample_rate or session.sample_rate
    return SongJob(
        song,
        mastered,
        own.integrated_lufs,
        album.mode == "album",
        scratch,
        album_rate,
        caching,
        premaster_key(mastered, caching),
    )


def measure(job: SongJob) -> Level:
    """Render the song up to its final limiter, keep that signal, measure its own level."""
    mix, before, loudness, account = premaster(
        job.session, 1, job.caching, job.measure_level, job.own_goal_lufs
    )
    np.save(job.limiter_input_path, before, allow_pickle=False)
    rate = job.session.sample_rate
    return Level(loudness, mix.frames / rate, mix.tracks, mix.notes, account)


def finish(
    job: SongJob,
    goal_lufs: float,
    deliverables: tuple[Deliverable, ...],
    out_dir: Path,
    tags: Tags | None = None,
) -> Finished:
    """Master the song to ``goal_lufs``, write its track files (with ``tags``, written into
    each before it takes its name), keep the master for the album file in the scratch
    folder, converted to the album file's rate here, in parallel with the others. A song
    finished before with the same goal, settings and file names, its files still as
    written, is taken from the render cache (``reuse.KeptSong``) and nothing is written."""
    session = job.session
    paths = [out_dir / track_file_name(job.song, d) for d in deliverables]
    settings = {
        "goal": goal_lufs,
        "deliverables": normalised(deliverables, session.path.parent),
        "files": [str(path) for path in paths],
        "tags": None if tags is None else normalised(tags, session.path.parent),
        "album rate": job.album_rate,
    }
    kept = KeptSong.of(job, settings)
    if kept is not None and (found := kept.found()) is not None:
        finished, master = found
        if job.album_rate is not None:
            np.save(job.master_path, master, allow_pickle=False)
        return replace(finished, kept=True)
    before = np.load(job.limiter_input_path, allow_pickle=False)
    mastered = master_at(plan_master(session), before, session, goal_lufs)
    master = None
    if job.album_rate is not None:
        master = audio_io.resample(mastered.audio, session.sample_rate, job.album_rate)
        np.save(job.master_path, master, allow_pickle=False)
    files = tuple(
        deliver(
            mastered.audio,
            session.sample_rate,
            d,
            path,
            session.seed,
            mastered.ceiling,
            verify=True,
            finish=None if tags is None else partial(_tagged, tags, d.format),
        )
        for d, path in zip(deliverables, paths, strict=True)
    )
    finished = Finished(
        goal_lufs=goal_lufs,
        loudness_lufs=mastered.loudness_lufs,
        gain_db=mastered.gain_db,
        limiting_db=mastered.limiting_db,
        ceiling_dbtp=mastered.ceiling_dbtp,
        limiter=mastered.limiter,
        files=files,
        notes=mastered.notes,
    )
    if kept is not None:
        kept.keep(finished, paths, master)
    return finished


def measure_and_finish(
    job: SongJob,
    goal_lufs: float,
    deliverables: tuple[Deliverable, ...],
    out_dir: Path,
    tags: Tags | None = None,
) -> tuple[Level, Finished]:
    """Both steps at once, for mode track: the goal is known before the song is rendered, so
    a song's files need not wait for the others."""
    return measure(job), finish(job, goal_lufs, deliverables, out_dir, tags)


def _tagged(tags: Tags, file_format: str, path: Path) -> None:
    write_tags(tags, path, file_format)


def master_path(scratch: Path, number: int) -> Path:
    """Where ``finish`` keeps the master of song ``number`` for the album file, at its rate."""
    return scratch / f"{number:02d}-master.npy"


def track_file_name(song: Song, deliverable: Deliverable) -> str:
    """``01 Indie Pop.flac``: the track number, then the title made safe for file systems."""
    stem = f"{song.number:02d} {master_file_stem(song.title, song.session.path)}"
    return output_file_name(None, stem, deliverable.format)

"""An album end to end: every song rendered (in parallel processes), album loudness, the
track files, the continuous album file with its CUE sheet, all of them tagged, and the
album QC report.

Songs run in worker processes, ``jobs`` at a time (with one job, in this process); each is a
pure function of its arguments, so the bytes written do not depend on ``jobs``. A song that
fails does not stop the others: every song's files are either complete or absent (each is
written to a temporary name and renamed), and the first failing song's error, in running
order, fails the album after the others have finished. In mode track each song is written as
soon as it is rendered; in mode album no song is written before every song has been
measured (the offset depends on all of them), so a failing song leaves the previous outputs
as they were.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from render.album import songs
from render.album.cue import cue_sheet, frames, timestamp
from render.album.loudness import song_goals
from render.album.model import Album
from render.album.reuse import Built, bound_caches
from render.album.sequence import Placement, SequenceError, assemble, place
from render.album.songs import Finished, Level, SongJob
from render.album.tags import album_tags, song_tags, write_tags
from render.album_qc import AlbumReport, SongFigures, TrackStart, assess_album
from render.cache import CacheOptions
from render.deliver import Ceiling, Delivered, deliver, relimit
from render.errors import RenderError
from render.pipeline import NO_CACHE, Stage, output_folder, write_texts
from render.qc import FileReport
from render.report import page
from render.report.album_html import render_album_html
from render.report.album_json import album_report_json
from render.session.build import seed_from_title
from render.session.checks import master_file_stem, output_file_name

QC_FILES = ("album-qc.json", "album-qc.html")


@dataclass(frozen=True)
class AlbumFile:
    """The continuous album file, its CUE sheet, and where each song begins in it."""

    written: Delivered
    cue: Path
    placements: tuple[Placement, ...]  # samples of the file
    sample_rate: int  # the file's


@dataclass(frozen=True)
class AlbumResult:
    """What an album build did and measured: data only; the command line words it."""

    album: Album
    levels: tuple[Level, ...]
    songs: tuple[Finished, ...]
    album_file: AlbumFile | None
    report: AlbumReport
    report_files: tuple[Path, ...]
    cache_warnings: tuple[str, ...] = ()  # a render cache too small for what the songs reuse


def render_album(
    album: Album,
    jobs: int,
    stage: Stage = lambda name: nullcontext(),
    caching: CacheOptions = NO_CACHE,
) -> AlbumResult:
    """Render every song of ``album``, bring them to album loudness, write the deliverables;
    with ``caching``, each song's mix comes from the render cache where it is unchanged, and
    an album built before from the same inputs, its files still as written, is not built
    again (``render.album.reuse``)."""
    with (
        output_folder(album.out_dir),
        tempfile.TemporaryDirectory(prefix="render-album-") as scratch,
    ):
        jobs_ = [songs.song_job(album, song, Path(scratch), caching) for song in album.songs]
        built = Built.of(album, jobs_, caching)
        if built is not None and (found := built.found()) is not None:
            return AlbumResult(album, *found)
        levels, finished = _render_songs(album, jobs_, jobs, stage)
        if jobs > 1:  # the report's plotting library, imported beside the album file's
            # limiting, encoding and metering, which hold no GIL (0.4 s off the serial end)
            threading.Thread(target=page.preload, name="preload", daemon=True).start()
        album_file = None
        if album.album_file is not None:
            with stage("album file"):
                album_file = _write_album_file(album, finished, Path(scratch))
        with stage("qc"):
            report = _assess(album, levels, finished, album_file)
            texts = [
                (QC_FILES[0], album_report_json(report)),
                (QC_FILES[1], render_album_html(report)),
            ]
            report_files = write_texts(album.out_dir, texts, "the album report")
        if built is not None:
            written = [file.path for done in finished for file in done.files]
            if album_file is not None:
                written += [album_file.written.path, album_file.cue]
            results = (levels, finished, album_file, report, report_files)
            built.keep(results, [*written, *report_files])
        warnings = tuple(bound_caches(album, jobs_, caching))
    return AlbumResult(album, levels, finished, album_file, report, report_files, warnings)


def _render_songs(
    album: Album, jobs_: list[SongJob], jobs: int, stage: Stage
) -> tuple[tuple[Level, ...], tuple[Finished, ...]]:
    """Every song measured and finished at its album goal; one progress line per song, done
    when its files are written."""
    goal = album.target.integrated_lufs
    assert goal is not None  # the album checks require one
    gains_db = [song.gain_db for song in album.songs]
    with _workers(min(jobs, len(album.songs))) as pool, ExitStack() as lines:
        song_lines = [lines.enter_context(ExitStack()) for _ in album.songs]
        for song, line in zip(album.songs, song_lines, strict=True):
            line.enter_context(stage(f"{song.number:02d} {song.title}"))

        def finish(goals: Sequence[float], work: Callable[..., Any]) -> list[Any]:
            arguments = [
                (job, aim, album.tracks, album.out_dir, song_tags(album, s))
                for job, aim, s in zip(jobs_, goals, album.songs, strict=True)
            ]
            return _run(pool, work, arguments, lambda index: song_lines[index].close())

        if album.mode == "track":
            goals = song_goals("track", goal, [], gains_db)
            levels, finished = zip(*finish(goals, songs.measure_and_finish), strict=True)
            return tuple(levels), tuple(finished)
        levels = _run(pool, songs.measure, [(job,) for job in jobs_])
        own = [level.loudness_lufs for level in levels]
        return tuple(levels), tuple(finish(song_goals("album", goal, own, gains_db), songs.finish))


def _assess(
    album: Album,
    levels: Sequence[Level],
    finished: Sequence[Finished],
    album_file: AlbumFile | None,
) -> AlbumReport:
    """The album QC report: each song's first track file as written, the album file."""
    figures = [
        SongFigures(
            song.number,
            song.title,
            Path(os.path.relpath(song.session.path, album.path.parent)),
            done.goal_lufs,
            _file_report(done.files[0]),
            done.limiting_db if done.limiter is not None else None,
            (*level.notes, *done.notes),
        )
        for song, level, done in zip(album.songs, levels, finished, strict=True)
    ]
    if album_file is None:
        return assess_album(album.title, Path(album.path.name), album.mode, album.target, figures)
    rate = album_file.sample_rate
    starts = [
        TrackStart(
            song.number,
            placement.index_00,
            placement.index_01,
            frames(placement.index_01, rate),
            timestamp(frames(placement.index_01, rate)),
        )
        for song, placement in zip(album.songs, album_file.placements, strict=True)
    ]
    whole = _file_report(album_file.written)
    name = Path(album.path.name)
    return assess_album(album.title, name, album.mode, album.target, figures, whole, starts)


def _file_report(written: Delivered) -> FileReport:
    assert written.figures is not None  # every album file is measured as written
    return FileReport(
        "master", written.path, written.description, written.figures, (), written.corrections
    )


def _write_album_file(album: Album, finished: Sequence[Finished], scratch: Path) -> AlbumFile:
    """The songs in running order with their pre-gaps and crossfades, at the album file's
    rate (the workers converted each master), limited again where sequencing took it over
    the ceiling, written and measured as written; and the CUE sheet beside it."""
    deliverable = album.album_file
    assert deliverable is not None
    rate = deliverable.sample_rate or album.sample_rate
    # Memory-mapped: one song at a time in memory besides the album.
    masters = [np.load(songs.master_path(scratch, s.number), mmap_mode="r") for s in album.songs]
    try:
        placements, total = place(
            [master.shape[1] for master in masters],
            [song.gap_before_s for song in album.songs],
            [song.crossfade_s for song in album.songs],
            rate,
        )
    except SequenceError as e:
        raise RenderError(f"{album.where(f'songs[{e.song}].crossfade')}: {e}") from None
    x = assemble(masters, placements, total)
    ceilings = [song.ceiling_dbtp for song in finished if song.ceiling_dbtp is not None]
    limiter = next((song.limiter for song in finished if song.limiter is not None), None)
    ceiling = Ceiling(min(ceilings), limiter) if ceilings else None
    corrections: list[str] = []
    if ceiling is not None and limiter is not None:
        converted = f", the conversion from {album.sample_rate} Hz" * (rate != album.sample_rate)
        cause = f"sequencing (crossfades, song edges{converted})"
        x, corrections = relimit(x, rate, ceiling.dbtp, limiter, cause)
    stem = master_file_stem(album.title, album.path)
    name = output_file_name(deliverable.name, stem, deliverable.format)
    path = album.out_dir / name
    tags = album_tags(album)
    written = deliver(
        x,
        rate,
        deliverable,
        path,
        seed_from_title(album.title),
        ceiling,
        verify=True,
        finish=lambda done: write_tags(tags, done, deliverable.format),
    )
    written = replace(written, corrections=(*corrections, *written.corrections))
    (cue,) = write_texts(
        album.out_dir,
        [(path.with_suffix(".cue").name, cue_sheet(album, name, placements, rate))],
        "the CUE sheet",
    )
    return AlbumFile(written, cue, placements, rate)


@contextmanager
def _workers(count: int) -> Iterator[Executor | None]:
    """``count`` worker processes (none for one job: the songs run here, one by one).

    Workers start from a fork server (a clean process that imported the renderer once), not
    by forking this one: forking a process that runs threads (the meter's, numba's) can
    copy a held lock into the child."""
    if count <= 1:
        yield None
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["render.album.songs"])
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _run(
    pool: Executor | None,
    work: Callable[..., Any],
    arguments: Sequence[tuple[Any, ...]],
    done: Callable[[int], None] = lambda index: None,
) -> list[Any]:
    """``work(*args)`` for every song's arguments, in song order; ``done(index)`` as each
    finishes. Every song runs even when one fails; then the first failure in running order
    is raised."""
    outcomes: list[Any] = [None] * len(arguments)
    failures: dict[int, BaseException] = {}
    if pool is None:
        for index, args in enumerate(arguments):
            try:
                outcomes[index] = work(*args)
            except RenderError as e:
                failures[index] = e
            done(index)
    else:
        futures: dict[Future[Any], int] = {
            pool.submit(work, *args): index for index, args in enumerate(arguments)
        }
        for future in as_completed(futures):
            index = futures[future]
            if (error := future.exception()) is not None:
                failures[index] = error
            else:
                outcomes[index] = future.result()
            done(index)
    if failures:
        raise failures[min(failures)]
    return outcomes

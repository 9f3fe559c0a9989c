"""An album end to end: every song rendered (in parallel processes), album loudness, the
track files, the continuous album file with its CUE sheet, the album QC report.

Songs run in worker processes, ``jobs`` at a time (with one job, in this process); each is a
pure function of its arguments, so the bytes written do not depend on ``jobs``. A song that
fails does not stop the others: every song's files are either complete or absent (each is
written to a temporary name and renamed), and the first failing song's error, in running
order, fails the album after the others have finished. In mode track each song is written as soon
as it is rendered; in mode album no song is written before every song has been measured
(the offset depends on all of them), so a failing song leaves the previous outputs as
they were.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render import audio_io
from render.album import songs
from render.album.loudness import song_goals
from render.album.model import Album
from render.album.songs import Finished, Level
from render.errors import OutputError, RenderError
from render.pipeline import Stage


@dataclass(frozen=True)
class AlbumResult:
    """What an album build did and measured: data only; the command line words it."""

    album: Album
    levels: tuple[Level, ...]
    songs: tuple[Finished, ...]


def render_album(album: Album, jobs: int, stage: Stage = lambda name: nullcontext()) -> AlbumResult:
    """Render every song of ``album``, bring them to album loudness, write the deliverables."""
    out_dir = album.out_dir
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the output folder ({e.strerror})") from e
    audio_io.remove_stale_partials(out_dir)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="render-album-") as scratch,
            _workers(min(jobs, len(album.songs))) as pool,
            ExitStack() as lines,
        ):
            song_lines = [
                lines.enter_context(ExitStack()) for _ in album.songs
            ]  # one progress line per song, closed when its files are written
            for song, line in zip(album.songs, song_lines, strict=True):
                line.enter_context(stage(f"{song.number:02d} {song.title}"))
            jobs_ = [songs.song_job(album, song, Path(scratch)) for song in album.songs]
            gains_db = [song.gain_db for song in album.songs]
            goal = album.target.integrated_lufs
            assert goal is not None  # the album checks require one

            def finish(goals: Sequence[float], work: Callable[..., Any]) -> list[Any]:
                arguments = [
                    (job, g, album.tracks, out_dir) for job, g in zip(jobs_, goals, strict=True)
                ]
                return _run(pool, work, arguments, lambda index: song_lines[index].close())

            if album.mode == "track":
                goals = song_goals("track", goal, [], gains_db)
                levels, finished = zip(*finish(goals, songs.measure_and_finish), strict=True)
            else:
                levels = _run(pool, songs.measure, [(job,) for job in jobs_])
                own = [level.loudness_lufs for level in levels]
                finished = finish(song_goals("album", goal, own, gains_db), songs.finish)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return AlbumResult(album, tuple(levels), tuple(finished))


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

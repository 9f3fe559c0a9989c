"""The terminal view of a render or an album build: what was heard and written, what came
from the render cache and why the rest ran, the QC verdict at a glance, and every problem
with where and why. Colours only on a terminal (rich decides); wall-clock time is
shown here and never written to a file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.padding import Padding
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from render.album_qc import AlbumReport
from render.qc import Check, FileReport, Report, worst

if TYPE_CHECKING:
    from render.album.build import AlbumResult
    from render.incremental import Account
    from render.pipeline import RenderResult

STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def print_report(console: Console, report: Report, written: tuple[Path, ...]) -> None:
    """The QC verdict: one row per file with its key figures and worst verdict, then each
    warning and failure on its own line, then where the full report is."""
    table = _table(("file", "loudness", "LRA", "true peak", "PLR", "QC"))
    for file in report.files:
        verdict = worst(c.status for c in report.checks if c.file == file.path.name)
        table.add_row(file.path.name, *_figures(file), Text(verdict, style=STYLES[verdict]))
    console.print(Text(f"  QC      {report.status}", style=STYLES[report.status]))
    console.print(Padding(table, (0, 0, 0, 2), expand=False))
    _problems(console, report.checks, report.notes, written)


def print_album_report(console: Console, report: AlbumReport, written: tuple[Path, ...]) -> None:
    """The album QC verdict: one row per song (its first track file as written) with its
    goal and tonal deviation, the album's loudness spread, then every warning and failure."""
    table = _table(("#", "loudness", "LRA", "true peak", "PLR", "goal", "tonal", "QC"))
    for song in report.songs:
        table.add_row(
            f"{song.number:02d}",
            *_figures(song.file),
            f"{song.goal_lufs:.2f}",
            song.tonal.measured.replace(" dB at ", " @ "),
            Text(song.status, style=STYLES[song.status]),
        )
    console.print(Text(f"  QC      {report.status}", style=STYLES[report.status]))
    console.print(Padding(table, (0, 0, 0, 2), expand=False))
    console.print(f"  spread  {report.spread_lu:.2f} LU (loudest - quietest song)")
    notes = [f"{song.number:02d}: {note}" for song in report.songs for note in song.report.notes]
    _problems(console, report.checks, notes, written)


def _table(columns: tuple[str, ...]) -> Table:
    table = Table(title=None, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    for column in columns:
        table.add_column(column, justify="left" if column in ("file", "#") else "right")
    return table


def _figures(file: FileReport) -> tuple[str, str, str, str]:
    """Loudness, LRA, true peak and PLR of ``file``, for a table row."""
    figures = file.analysis
    loudness = figures.loudness
    return (
        lufs(loudness.integrated_lufs),
        f"{loudness.loudness_range_lu:.1f} LU",
        f"{max(loudness.true_peak_dbtp):+.2f} dBTP",
        f"{figures.plr_db:.1f} dB" if math.isfinite(figures.plr_db) else "-",
    )


def _problems(
    console: Console, checks: Sequence[Check], notes: Sequence[str], written: tuple[Path, ...]
) -> None:
    for check in checks:
        if check.status != "pass":
            console.print(
                Text(f"  {check.status:<5}", style=STYLES[check.status])
                + Text(
                    f" {check.file}: {check.name}: {check.measured}, expected "
                    f"{check.expected}" + (f"; {check.detail}" if check.detail else "")
                )
            )
    for note in notes:
        console.print(f"  note    {note}", highlight=False, markup=False)
    if written:
        console.print(f"  report  {', '.join(shown(path) for path in written)}", highlight=False)


@contextmanager
def progress(console: Console) -> Iterator[object]:
    """A stage tracker for the pipeline: on a terminal, one spinner line per stage that
    stays with its time when done; elsewhere (CI, pipes) nothing."""
    if not console.is_terminal:
        yield _silent
        return
    columns = (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"))
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            task = bar.add_task(name, total=1)
            yield
            bar.update(task, completed=1)

        yield stage


@contextmanager
def _silent(name: str) -> Iterator[None]:
    yield


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def lufs(value: float, digits: int = 1) -> str:
    """A loudness for people: ``-14.0 LUFS``, or ``silent`` for no loudness."""
    return f"{value:.{digits}f} LUFS" if math.isfinite(value) else "silent"


def print_album(console: Console, album_path: Path, result: AlbumResult, elapsed_s: float) -> None:
    """The summary of an album build: every song's level and goal, the files written."""
    album = result.album
    lines = [f"{album.title} ({album_path}), {len(album.songs)} songs, loudness mode {album.mode}"]
    duration_s = 0.0
    for song, level, done in zip(album.songs, result.levels, result.songs, strict=True):
        duration_s += level.duration_s
        own = f"own level {lufs(level.loudness_lufs)}, " if album.mode == "album" else ""
        lines.append(
            f"  {song.number:02d}  {song.title}: {level.duration_s:.1f} s, {own}"
            f"mastered to {lufs(done.loudness_lufs, 2)} (goal {done.goal_lufs:.2f})"
        )
        lines += cache_lines(level.cache, "      ", "mix and limiter input")
        for file in done.files:
            loudness = file.figures.loudness if file.figures else None
            figures = (
                f": {lufs(loudness.integrated_lufs, 2)}, true peak "
                f"{max(loudness.true_peak_dbtp):+.2f} dBTP"
                if loudness
                else ""
            )
            lines.append(f"      {'kept ' if done.kept else 'wrote'} {shown(file.path)}{figures}")
            lines += [f"            corrected: {c}" for c in file.corrections]
    if (album_file := result.album_file) is not None:
        written = album_file.written
        loudness = written.figures.loudness  # type: ignore[union-attr]  # verified
        lines.append(
            f"  album   {shown(written.path)} ({written.description}): "
            f"true peak {max(loudness.true_peak_dbtp):+.2f} dBTP; CUE sheet {shown(album_file.cue)}"
        )
        lines += [f"          corrected: {c}" for c in written.corrections]
    lines += [f"  cache   warning: {warning}" for warning in result.cache_warnings]
    lines.append(time_line(elapsed_s, duration_s))
    console.print("\n".join(lines), highlight=False, markup=False)


def print_render(
    console: Console, session_path: Path, result: RenderResult, elapsed_s: float
) -> None:
    """The summary of one render: tracks, master, files written (with the figures measured
    on each master file as written and any correction), then the QC report."""
    mix = result.report.files[0].analysis.loudness
    lines = [
        f"{result.session.title} ({session_path})",
        f"  tracks  {len(result.tracks)} heard: {', '.join(result.tracks)}",
        f"  length  {result.duration_s:.3f} s at {result.session.sample_rate} Hz",
        f"  mix     {lufs(mix.integrated_lufs)} integrated, sample peak "
        f"{max(mix.sample_peak_dbfs):.1f} dBFS",
    ]
    if (mastered := result.master) is not None:
        goal = result.report.target_lufs
        aim = f" (target {goal:g})" if goal is not None else ""
        lines.append(
            f"  master  {lufs(mastered.loudness_lufs)} integrated{aim}, "
            f"{mastered.gain_db:+.1f} dB into the limiter, "
            f"{mastered.limiting_db:.1f} dB peak limiting"
        )
    for file in result.files:
        lines.append(f"  wrote   {shown(file.path)} ({file.description})")
        if file.figures is not None:
            loudness = file.figures.loudness
            lines.append(
                f"          as written: {lufs(loudness.integrated_lufs, 2)}, "
                f"true peak {max(loudness.true_peak_dbtp):+.2f} dBTP"
            )
        lines += [f"          corrected: {correction}" for correction in file.corrections]
    lines += cache_lines(result.account)
    lines.append(time_line(elapsed_s, result.duration_s))
    console.print("\n".join(lines), highlight=False, markup=False)
    print_report(console, result.report, result.report_files)


def time_line(elapsed_s: float, duration_s: float) -> str:
    """How long the render took, and how many times faster than the audio plays: to one
    decimal below 10x (a 1 s test session renders at "0.5x", not "0x")."""
    speed = duration_s / elapsed_s if elapsed_s > 0 else math.inf
    shown = f"{speed:.1f}" if speed < 10 else f"{speed:.0f}"
    return f"  time    {elapsed_s:.2f} s ({shown}x realtime)"


def cache_lines(account: Account, indent: str = "  ", whole: str = "everything") -> list[str]:
    """What came from the render cache and what ran (of ``whole``, the part of the render
    that uses the cache), grouped by the reason it ran."""
    head = f"{indent}cache   "
    if account.note is not None:
        return [head + account.note]
    lines = _reuse_lines(account, head, whole)
    if account.warning is not None:
        lines.append(f"{' ' * len(head) if lines else head}warning: {account.warning}")
    return lines


def _reuse_lines(account: Account, head: str, whole: str) -> list[str]:
    """The reused stages, then the rendered ones by reason."""
    if not account.rendered:
        return [head + f"{whole} reused: nothing changed since it was cached"]
    if not account.reused and all(reason == "new" for _, reason in account.rendered):
        return [head + f"{whole} rendered (new to the cache)"]
    if not any(reason for _, reason in account.rendered):
        return []  # no cache in use
    lines = []
    if account.reused:
        tracks = sum(name.startswith("tracks.") for name in account.reused)
        buses = sum(name.startswith("buses.") for name in account.reused)
        others = [n for n in account.reused if not n.startswith(("tracks.", "buses."))]
        parts = [f"{tracks} track{'s' * (tracks != 1)}"] if tracks else []
        parts += [f"{buses} bus{'es' * (buses != 1)}"] if buses else []
        lines.append(f"{head}reused {', '.join(parts + others)}")
    by_reason: dict[str, list[str]] = {}
    for name, reason in account.rendered:
        by_reason.setdefault(reason, []).append(name)
    label = head + "rendered" if not lines else " " * len(head) + "rendered"
    for reason, names in by_reason.items():
        lines.append(f"{label} {', '.join(names)}: {reason}")
        label = " " * len(head + "rendered")
    return lines

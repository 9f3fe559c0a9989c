"""The terminal view of a render: what was written, the QC verdict at a glance, and every
problem with where and why. Colours only on a terminal (rich decides); wall-clock time is
shown here and never written to a file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.padding import Padding
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from render.album_qc import AlbumReport
from render.qc import Check, FileReport, Report, worst

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

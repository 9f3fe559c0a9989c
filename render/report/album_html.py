"""The album QC report as ``album-qc.html``: the same self-contained page as ``qc.html``
(``render.report.page``), for an ``AlbumReport``: the songs side by side, the checks, a
plot of every song's loudness against its goal and the album target, a plot of every
song's tonal balance against the album's average, and where each track starts in the
continuous album file."""

from __future__ import annotations

import html

import numpy as np

from render.album_qc import AlbumReport
from render.analysis import Analysis
from render.report import page
from render.report.page import num

TONAL_FLOOR_DB = -60.0
"""Bottom of the tonal-balance plot: bands further under the song's total hold no music."""


def render_album_html(report: AlbumReport) -> str:
    """``report`` as one HTML5 document."""
    links = {
        song.file.path.name: page.Html(
            f'<a href="#song-{song.number}">{html.escape(song.file.path.name)}</a>'
        )
        for song in report.songs
    }
    sections = [
        _header(report),
        page.checks_section(report.checks, links),
        _songs(report),
        _loudness(report),
        _tonal(report),
    ]
    if report.starts:
        sections.append(_starts(report))
    return page.document(f"Album QC report: {report.title}", sections)


def _header(report: AlbumReport) -> str:
    rows = [
        ("Loudness mode", report.mode),
        ("Album target", num(report.target_lufs, 1, "LUFS")),
        ("True-peak ceiling", num(report.ceiling_dbtp, 1, "dBTP")),
        ("Loudness spread (loudest - quietest)", num(report.spread_lu, 2, "LU")),
    ]
    notes = "".join(
        f"<li>{html.escape(f'{song.number:02d} {song.title}: {note}')}</li>"
        for song in report.songs
        for note in song.report.notes
    )
    return (
        f"<header>\n<h1>{html.escape(report.title)}</h1>\n"
        f"<p>Album <code>{html.escape(report.album.as_posix())}</code> · overall status "
        f'<span id="status">{page.badge(report.status)}</span></p>\n'
        f"<h2>Targets</h2>\n{page.table((), rows, 'targets')}\n"
        + (f"<h2>Notes</h2>\n<ul>{notes}</ul>\n" if notes else "")
        + "</header>"
    )


def _songs(report: AlbumReport) -> str:
    head = ("#", "Title", "File", "Goal", "Integrated", "LRA", "True peak", "PLR", "Tonal", "QC")
    rows = []
    for song in report.songs:
        figures: Analysis = song.file.analysis
        loudness = figures.loudness
        rows.append(
            (
                page.Html(f'<span id="song-{song.number}">{song.number:02d}</span>'),
                song.title,
                song.file.path.name,
                num(song.goal_lufs, 2, "LUFS"),
                num(loudness.integrated_lufs, 2, "LUFS"),
                num(loudness.loudness_range_lu, 1, "LU"),
                num(max(loudness.true_peak_dbtp), 2, "dBTP", sign=True),
                num(figures.plr_db, 1, "dB"),
                song.tonal.measured,
                page.badge(song.status),
            )
        )
    table = page.table(head, rows, "songs")
    return f'<section id="songs">\n<h2>Songs</h2>\n{table}\n</section>'


def _loudness(report: AlbumReport) -> str:
    figure, axes = page.new_axes()
    positions = np.arange(len(report.songs))
    measured = [song.file.analysis.loudness.integrated_lufs for song in report.songs]
    shown = np.maximum(np.array(measured), page.LOUDNESS_FLOOR_LUFS)
    axes.bar(
        positions,
        shown - page.LOUDNESS_FLOOR_LUFS,
        bottom=page.LOUDNESS_FLOOR_LUFS,
        color="#0b4f9c",
        label="integrated loudness as written",
    )
    goals = [song.goal_lufs for song in report.songs]
    axes.scatter(
        positions, goals, color="#cf222e", marker="_", s=900, linewidths=2.5, label="goal", zorder=3
    )
    axes.axhline(
        report.target_lufs,
        color="#cf222e",
        linestyle="--",
        label=f"album target {report.target_lufs:g} LUFS",
    )
    axes.set_xticks(positions, [f"{song.number:02d}" for song in report.songs])
    axes.set_ylim(*page.span([shown, np.array(goals)], page.LOUDNESS_FLOOR_LUFS))
    axes.set_xlabel("track")
    axes.set_ylabel("loudness (LUFS)")
    axes.legend(**page.LEGEND)
    plot = page.img(page.png(figure), "Integrated loudness of every song against its goal")
    return f"<section>\n<h2>Loudness per song</h2>\n{plot}\n</section>"


def _tonal(report: AlbumReport) -> str:
    figure, axes = page.new_axes()
    bands = np.array(report.bands_hz)
    curves = []
    for song in report.songs:
        levels = np.maximum(np.array(song.file.analysis.octave_levels_db), TONAL_FLOOR_DB)
        curves.append(levels)
        axes.semilogx(
            bands,
            levels,
            linewidth=1.2,
            marker="o",
            markersize=3,
            label=f"{song.number:02d} {song.title}".replace("$", r"\$"),
        )
    average = np.maximum(np.array(report.average_levels_db), TONAL_FLOOR_DB)
    axes.semilogx(
        bands, average, color="black", linewidth=2.4, linestyle="--", label="album average"
    )
    axes.set_xticks(bands, [page.hz(band) for band in bands])
    axes.minorticks_off()
    axes.set_ylim(*page.span([*curves, average], TONAL_FLOOR_DB))
    axes.set_xlabel("octave band")
    axes.set_ylabel("level (dB re the song's total)")
    axes.legend(**page.LEGEND)
    plot = page.img(page.png(figure), "Tonal balance of every song against the album average")
    head = ("Song", *(page.hz(band) for band in report.bands_hz))
    rows = [
        (f"{song.number:02d} {song.title}", *(num(off, 1, sign=True) for off in song.deviation_db))
        for song in report.songs
    ]
    table = page.table(head, rows, "tonal-balance")
    return (
        "<section>\n<h2>Tonal balance</h2>\n"
        f"{plot}\n<h3>Each song's octave bands against the album average, dB</h3>\n{table}\n"
        "</section>"
    )


def _starts(report: AlbumReport) -> str:
    assert report.album_file is not None
    file = report.album_file.files[0]
    rows = [
        (
            f"{start.number:02d}",
            str(start.index_00_sample),
            str(start.index_01_sample),
            start.index_01_time,
        )
        for start in report.starts
    ]
    head = ("Track", "INDEX 00 (sample)", "INDEX 01 (sample)", "INDEX 01 (mm:ss:ff)")
    table = page.table(head, rows, "starts")
    return (
        f"<section>\n<h2>Album file: {html.escape(file.path.name)}</h2>\n"
        f"<p>{html.escape(file.description)}; samples at "
        f"{file.analysis.sample_rate} Hz, CD frames of 1/75 s.</p>\n{table}\n</section>"
    )

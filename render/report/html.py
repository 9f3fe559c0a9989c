"""The QC report as ``qc.html``: one self-contained HTML5 page for people (``page``: what
self-contained means), a view of the same ``Report`` that ``qc.json`` serialises for
programs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from render.analysis import Analysis
from render.dsp.levels import gain_to_db
from render.measure import HOP_S, MOMENTARY_WINDOW_S, SHORT_TERM_WINDOW_S
from render.qc import FileReport, Report
from render.report import page
from render.translation import DEVICES, DeviceFigures, DeviceModel

SPECTRUM_FLOOR_DB = -120.0
"""Bottom of the spectrum plot, below anything audible in a master; silent bins sit on it."""
_CHANNELS = ("L", "R")
_LISTED = 10
"""Clipped runs and true-peak overs listed by time in a figures table; the rest are counted."""
_MODEL_TEXT = (
    "Each device class is modelled as a filter: the band it reproduces (a high-pass and a "
    "low-pass), its main resonances and, where the device plays in mono, the fold to mono. "
    "The master is passed through each model and measured again: its integrated loudness "
    "(ITU-R BS.1770-4), the change from the master's own, and the energy kept below 120 Hz "
    "(low end) and between 300 Hz and 3 kHz (vocal range), both relative to the master."
)


def render_html(report: Report, devices: Sequence[DeviceModel] = DEVICES) -> str:
    """``report`` as one HTML5 document; ``devices`` are the models the help text describes."""
    sections = [
        _header(report),
        page.checks_section(report.checks, _links(report.files)),
        _spectrum(report.files),
        *(_file(index, file, report.target_lufs) for index, file in enumerate(report.files)),
    ]
    if any(file.devices for file in report.files):
        sections.append(_device_help(devices))
    return page.document(f"QC report: {report.title}", sections)


# --- sections --------------------------------------------------------------------------------


def _header(report: Report) -> str:
    low, high = report.lra_window_lu or (None, None)
    window = " and ".join(
        f"{word} {page.num(value, 1, 'LU')}"
        for word, value in (("≥", low), ("≤", high))
        if value is not None
    )
    targets = page.table(
        (),
        [
            ("Integrated loudness", page.num(report.target_lufs, 1, "LUFS")),
            ("True-peak ceiling", page.num(report.ceiling_dbtp, 1, "dBTP")),
            ("Loudness range", window or "none"),
            ("Limiter's deepest gain reduction", page.num(report.limiting_db, 1, "dB")),
        ],
        "targets",
    )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report.notes)
    return (
        f"<header>\n<h1>{html.escape(report.title)}</h1>\n"
        f"<p>Session <code>{html.escape(report.session.as_posix())}</code> · overall status "
        f'<span id="status">{page.badge(report.status)}</span></p>\n'
        f"<h2>Targets</h2>\n{targets}\n"
        + (f"<h2>Notes</h2>\n<ul>{notes}</ul>\n" if notes else "")
        + "</header>"
    )


def _links(files: Sequence[FileReport]) -> dict[str, page.Html]:
    """Each file's name as a link to its figures (``_file`` sets the anchor)."""
    return {
        file.path.name: page.Html(f'<a href="#file-{i}">{html.escape(file.path.name)}</a>')
        for i, file in enumerate(files)
    }


def _spectrum(files: Sequence[FileReport]) -> str:
    bands = files[0].analysis.octave_bands_hz if files else ()
    tonal = page.table(
        ("File", *(page.hz(centre) for centre in bands)),
        [
            (_label(file), *(page.num(level, 1) for level in file.analysis.octave_levels_db))
            for file in files
        ],
        "tonal-balance",
    )
    plot = page.img(_spectrum_plot(files), "Long-term average spectrum of every file")
    return (
        "<section>\n<h2>Spectrum and tonal balance</h2>\n"
        f"{plot}\n<h3>Energy per octave band, dB relative to the file's total</h3>\n{tonal}\n"
        "</section>"
    )


def _file(index: int, file: FileReport, target_lufs: float | None) -> str:
    name = html.escape(file.path.name)
    parts = [f'<section id="file-{index}">\n<h2>{file.role.capitalize()}: {name}</h2>']
    parts.append(page.table((), _figures(file), "figures"))
    if file.role == "master":
        plot = _loudness_plot(file.analysis, target_lufs)
        parts.append(
            f"<h3>Loudness over time</h3>\n{page.img(plot, f'Loudness of {file.path.name}')}"
        )
    if file.devices:
        parts.append(
            '<h3>Translation to playback devices (<a href="#devices">models</a>)</h3>\n'
            + _device_table(file.devices)
        )
    return "\n".join(parts) + "\n</section>"


def _figures(file: FileReport) -> list[tuple[str, str]]:
    figures, loudness = file.analysis, file.analysis.loudness
    names = _CHANNELS if len(figures.dc_offset) == 2 else ("",)
    clips = [
        f"{run.start_s:.2f} s ({_where(names[run.channel])}{run.samples} samples)"
        for run in figures.clipped_runs
    ]
    overs = [
        f"{over.start_s:.2f}-{over.end_s:.2f} s "
        f"({_where(names[over.channel])}{page.num(over.true_peak_dbtp, 2, 'dBTP', sign=True)})"
        for over in figures.true_peak_overs
    ]
    worst, trailing = figures.min_correlation_400ms, figures.trailing_silence_s
    dc = figures.dc_offset
    correlation = f"{page.num(figures.correlation, 2)} (lowest 400 ms window {page.num(worst, 2)})"
    return [
        ("Format", file.description),
        ("Duration", f"{figures.duration_s:.2f} s at {figures.sample_rate} Hz"),
        ("Integrated loudness", page.num(loudness.integrated_lufs, 1, "LUFS")),
        ("Loudness range", page.num(loudness.loudness_range_lu, 1, "LU")),
        ("Max momentary loudness", page.num(loudness.max_momentary_lufs, 1, "LUFS")),
        ("Max short-term loudness", page.num(loudness.max_short_term_lufs, 1, "LUFS")),
        ("True peak", _per_channel(names, loudness.true_peak_dbtp, "dBTP")),
        ("Sample peak", _per_channel(names, loudness.sample_peak_dbfs, "dBFS")),
        ("Peak-to-loudness ratio", page.num(figures.plr_db, 1, "dB")),
        ("DC offset", _per_channel(names, [gain_to_db(abs(v)) for v in dc], "dBFS", 1)),
        ("Stereo correlation", correlation),
        ("Mono fold", page.num(figures.mono_fold_drop_lu, 1, "LU", sign=True)),
        ("Clipped runs", _listed(clips)),
        ("True-peak overs", _listed(overs)),
        ("Silence", f"{figures.leading_silence_s:.2f} s leading, {trailing:.2f} s trailing"),
        ("Corrections", "; ".join(file.corrections) or "none"),
    ]


def _device_table(devices: Sequence[DeviceFigures]) -> str:
    head = ("Device", "Loudness (LUFS)", "Change (LU)", "Low end retained (dB)")
    rows = [
        (
            d.device,
            page.num(d.loudness_lufs, 1),
            page.num(d.loudness_change_lu, 1, sign=True),
            page.num(d.low_end_retained_db, 1, sign=True),
            page.num(d.vocal_range_retained_db, 1, sign=True),
        )
        for d in devices
    ]
    return page.table((*head, "Vocal range retained (dB)"), rows, "devices")


def _device_help(models: Sequence[DeviceModel]) -> str:
    rows = [
        (
            model.name,
            f"{page.hz(model.highpass_hz)} to {page.hz(model.lowpass_hz)}",
            "; ".join(
                f"{page.hz(hz)} {page.num(gain_db, 1, 'dB', sign=True)}, Q {q:g}"
                for hz, gain_db, q in model.resonances
            )
            or "none",
            "yes" if model.mono else "no",
            model.source,
        )
        for model in models
    ]
    table = page.table(("Device", "Band", "Resonances", "Mono", "Source"), rows, "models")
    return (
        f'<section id="devices">\n<h2>Playback device models</h2>\n<p>{html.escape(_MODEL_TEXT)}'
        f"</p>\n{table if rows else ''}\n</section>"
    )


# --- plots -----------------------------------------------------------------------------------


def _loudness_plot(figures: Analysis, target_lufs: float | None) -> str:
    """Momentary and short-term loudness against the time each window ends (``LoudnessFigures``:
    value k ends at window + k hop), with the target as a dashed line."""
    figure, axes = page.new_axes()
    loudness = figures.loudness
    shown = []
    for series, window_s, label, colour, width in (
        (loudness.momentary_lufs, MOMENTARY_WINDOW_S, "momentary (400 ms)", "#8cb4e8", 0.8),
        (loudness.short_term_lufs, SHORT_TERM_WINDOW_S, "short-term (3 s)", "#0b4f9c", 1.6),
    ):
        shown.append(np.maximum(series, page.LOUDNESS_FLOOR_LUFS))
        times_s = window_s + HOP_S * np.arange(series.size)
        axes.plot(times_s, shown[-1], label=label, color=colour, linewidth=width)
    if target_lufs is not None:
        axes.axhline(
            target_lufs, color="#cf222e", linestyle="--", label=f"target {target_lufs:g} LUFS"
        )
        shown.append(np.array([target_lufs]))
    axes.set_xlim(0.0, max(figures.duration_s, SHORT_TERM_WINDOW_S))
    axes.set_ylim(*page.span(shown, page.LOUDNESS_FLOOR_LUFS))
    axes.set_xlabel("time at the end of the window (s)")
    axes.set_ylabel("loudness (LUFS)")
    axes.legend(**page.LEGEND)
    return page.png(figure)


def _spectrum_plot(files: Sequence[FileReport]) -> str:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # as page.new_axes

    figure, axes = page.new_axes()
    lines, shown = [], []
    for file in files:
        shown.append(np.maximum(file.analysis.spectrum_db, SPECTRUM_FLOOR_DB))
        lines += axes.semilogx(file.analysis.spectrum_hz, shown[-1], linewidth=1.2)
    axes.margins(x=0.0)
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda hz, _: page.hz(hz)))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_ylim(*page.span(shown, SPECTRUM_FLOOR_DB))
    axes.set_xlabel("frequency")
    axes.set_ylabel("level (dB re full scale)")
    # Labels passed with their lines are drawn as given: mathtext ($) is escaped, and a label
    # with a leading underscore is not dropped as it would be when matplotlib collects them.
    labels = [_label(file).replace("$", r"\$") for file in files]
    axes.legend(lines, labels, **page.LEGEND)
    return page.png(figure)


# --- cells -----------------------------------------------------------------------------------


def _label(file: FileReport) -> str:
    return "mix" if file.role == "mix" else file.path.name


def _per_channel(names: Sequence[str], values: Sequence[float], unit: str, digits: int = 2) -> str:
    listed = (
        f"{_where(name, ' ')}{page.num(v, digits)}" for name, v in zip(names, values, strict=True)
    )
    return f"{', '.join(listed)} {unit}"


def _where(channel: str, separator: str = ", ") -> str:
    return f"{channel}{separator}" if channel else ""


def _listed(items: Sequence[str]) -> str:
    more = len(items) - _LISTED
    listed = "; ".join(items[:_LISTED]) + (f"; and {more} more" if more > 0 else "")
    return f"{len(items)}: {listed}" if items else "none"

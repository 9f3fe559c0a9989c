"""The QC report as ``qc.html``: one self-contained HTML5 page for people, a view of the same
``Report`` that ``qc.json`` serialises for programs.

Self-contained, so it still opens from a mail attachment or an archive years later: the CSS is
inline, the plots are PNG ``data:`` URLs, no script runs, and a Content-Security-Policy denies
the page every network access. Every string from the session (title, file names, notes) is
escaped. The plots are drawn on a ``Figure`` of their own through the Agg canvas, never through
pyplot's global state, so reports render safely in parallel threads; PNGs are written without
the software tag, so the same report gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from render.analysis import Analysis
from render.dsp.levels import gain_to_db
from render.measure import HOP_S, MOMENTARY_WINDOW_S, SHORT_TERM_WINDOW_S
from render.qc import Check, FileReport, Report, Status
from render.translation import DEVICES, DeviceFigures, DeviceModel

LOUDNESS_FLOOR_LUFS = -60.0
"""Bottom of the loudness plot: below it lie only fades and silence (10 LU above the -70 LUFS
absolute gate of BS.1770-4 §2.3); silence (-inf) is drawn on the floor, not left out."""
SPECTRUM_FLOOR_DB = -120.0
"""Bottom of the spectrum plot, below anything audible in a master; silent bins sit on it."""
PLOT_HEADROOM_DB = 3.0
"""Space above and below a plot's curves (and the loudness target): they never touch the
frame, and the axis zooms on the levels the file has."""
_WIDTH_IN, _HEIGHT_IN, _DPI = 9.6, 3.2, 100
"""960 x 320 pixels: the page's width at one pixel per CSS pixel."""
_CHANNELS = ("L", "R")
_LISTED = 10
"""Clipped runs and true-peak overs listed by time in a figures table; the rest are counted."""
_LABELS: dict[Status, str] = {"pass": "✓ PASS", "warn": "! WARN", "fail": "✗ FAIL"}
"""Status words with a symbol, so a verdict never rests on its colour alone (WCAG 1.4.1)."""
_MODEL_TEXT = (
    "Each device class is modelled as a filter: the band it reproduces (a high-pass and a "
    "low-pass), its main resonances and, where the device plays in mono, the fold to mono. "
    "The master is passed through each model and measured again: its integrated loudness "
    "(ITU-R BS.1770-4), the change from the master's own, and the energy kept below 120 Hz "
    "(low end) and between 300 Hz and 3 kHz (vocal range), both relative to the master."
)


class _Html(str):
    """Markup built here from escaped parts: a table cell passes it through as it is."""


def render_html(report: Report, devices: Sequence[DeviceModel] = DEVICES) -> str:
    """``report`` as one HTML5 document; ``devices`` are the models the help text describes."""
    sections = [
        _header(report),
        _checks(report.checks, report.files),
        _spectrum(report.files),
        *(_file(index, file, report.target_lufs) for index, file in enumerate(report.files)),
    ]
    if any(file.devices for file in report.files):
        sections.append(_device_help(devices))
    title = html.escape(report.title)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>QC report: {title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


# --- sections --------------------------------------------------------------------------------


def _header(report: Report) -> str:
    low, high = report.lra_window_lu or (None, None)
    window = " and ".join(
        f"{word} {_num(value, 1, 'LU')}"
        for word, value in (("≥", low), ("≤", high))
        if value is not None
    )
    targets = _table(
        (),
        [
            ("Integrated loudness", _num(report.target_lufs, 1, "LUFS")),
            ("True-peak ceiling", _num(report.ceiling_dbtp, 1, "dBTP")),
            ("Loudness range", window or "none"),
            ("Limiter's deepest gain reduction", _num(report.limiting_db, 1, "dB")),
        ],
        "targets",
    )
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report.notes)
    return (
        f"<header>\n<h1>{html.escape(report.title)}</h1>\n"
        f"<p>Session <code>{html.escape(report.session.as_posix())}</code> · overall status "
        f'<span id="status">{_badge(report.status)}</span></p>\n'
        f"<h2>Targets</h2>\n{targets}\n"
        + (f"<h2>Notes</h2>\n<ul>{notes}</ul>\n" if notes else "")
        + "</header>"
    )


def _checks(checks: Sequence[Check], files: Sequence[FileReport]) -> str:
    """The check grid; a file name links to the file's figures (``_file`` sets the anchor)."""
    links = {
        file.path.name: _Html(f'<a href="#file-{i}">{html.escape(file.path.name)}</a>')
        for i, file in enumerate(files)
    }
    rows = [
        (links.get(c.file, c.file), c.name, _badge(c.status), c.measured, c.expected, c.detail)
        for c in checks
    ]
    head = ("File", "Check", "Status", "Measured", "Expected", "Detail")
    table = _table(head, rows, "checks", [c.status for c in checks]) if checks else "None."
    return f'<section id="checks">\n<h2>Checks</h2>\n{table}\n</section>'


def _spectrum(files: Sequence[FileReport]) -> str:
    bands = files[0].analysis.octave_bands_hz if files else ()
    tonal = _table(
        ("File", *(_hz(centre) for centre in bands)),
        [
            (_label(file), *(_num(level, 1) for level in file.analysis.octave_levels_db))
            for file in files
        ],
        "tonal-balance",
    )
    plot = _img(_spectrum_plot(files), "Long-term average spectrum of every file")
    return (
        "<section>\n<h2>Spectrum and tonal balance</h2>\n"
        f"{plot}\n<h3>Energy per octave band, dB relative to the file's total</h3>\n{tonal}\n"
        "</section>"
    )


def _file(index: int, file: FileReport, target_lufs: float | None) -> str:
    name = html.escape(file.path.name)
    parts = [f'<section id="file-{index}">\n<h2>{file.role.capitalize()}: {name}</h2>']
    parts.append(_table((), _figures(file), "figures"))
    if file.role == "master":
        plot = _loudness_plot(file.analysis, target_lufs)
        parts.append(f"<h3>Loudness over time</h3>\n{_img(plot, f'Loudness of {file.path.name}')}")
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
        f"({_where(names[over.channel])}{_num(over.true_peak_dbtp, 2, 'dBTP', sign=True)})"
        for over in figures.true_peak_overs
    ]
    worst, trailing = figures.min_correlation_400ms, figures.trailing_silence_s
    dc = figures.dc_offset
    correlation = f"{_num(figures.correlation, 2)} (lowest 400 ms window {_num(worst, 2)})"
    return [
        ("Format", file.description),
        ("Duration", f"{figures.duration_s:.2f} s at {figures.sample_rate} Hz"),
        ("Integrated loudness", _num(loudness.integrated_lufs, 1, "LUFS")),
        ("Loudness range", _num(loudness.loudness_range_lu, 1, "LU")),
        ("Max momentary loudness", _num(loudness.max_momentary_lufs, 1, "LUFS")),
        ("Max short-term loudness", _num(loudness.max_short_term_lufs, 1, "LUFS")),
        ("True peak", _per_channel(names, loudness.true_peak_dbtp, "dBTP")),
        ("Sample peak", _per_channel(names, loudness.sample_peak_dbfs, "dBFS")),
        ("Peak-to-loudness ratio", _num(figures.plr_db, 1, "dB")),
        ("DC offset", _per_channel(names, [gain_to_db(abs(v)) for v in dc], "dBFS", 1)),
        ("Stereo correlation", correlation),
        ("Mono fold", _num(figures.mono_fold_drop_lu, 1, "LU", sign=True)),
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
            _num(d.loudness_lufs, 1),
            _num(d.loudness_change_lu, 1, sign=True),
            _num(d.low_end_retained_db, 1, sign=True),
            _num(d.vocal_range_retained_db, 1, sign=True),
        )
        for d in devices
    ]
    return _table((*head, "Vocal range retained (dB)"), rows, "devices")


def _device_help(models: Sequence[DeviceModel]) -> str:
    rows = [
        (
            model.name,
            f"{_hz(model.highpass_hz)} to {_hz(model.lowpass_hz)}",
            "; ".join(
                f"{_hz(hz)} {_num(gain_db, 1, 'dB', sign=True)}, Q {q:g}"
                for hz, gain_db, q in model.resonances
            )
            or "none",
            "yes" if model.mono else "no",
            model.source,
        )
        for model in models
    ]
    table = _table(("Device", "Band", "Resonances", "Mono", "Source"), rows, "models")
    return (
        f'<section id="devices">\n<h2>Playback device models</h2>\n<p>{html.escape(_MODEL_TEXT)}'
        f"</p>\n{table if rows else ''}\n</section>"
    )


# --- plots -----------------------------------------------------------------------------------


def _loudness_plot(figures: Analysis, target_lufs: float | None) -> str:
    """Momentary and short-term loudness against the time each window ends (``LoudnessFigures``:
    value k ends at window + k hop), with the target as a dashed line."""
    figure, axes = _axes()
    loudness = figures.loudness
    shown = []
    for series, window_s, label, colour, width in (
        (loudness.momentary_lufs, MOMENTARY_WINDOW_S, "momentary (400 ms)", "#8cb4e8", 0.8),
        (loudness.short_term_lufs, SHORT_TERM_WINDOW_S, "short-term (3 s)", "#0b4f9c", 1.6),
    ):
        shown.append(np.maximum(series, LOUDNESS_FLOOR_LUFS))
        times_s = window_s + HOP_S * np.arange(series.size)
        axes.plot(times_s, shown[-1], label=label, color=colour, linewidth=width)
    if target_lufs is not None:
        axes.axhline(
            target_lufs, color="#cf222e", linestyle="--", label=f"target {target_lufs:g} LUFS"
        )
        shown.append(np.array([target_lufs]))
    axes.set_xlim(0.0, max(figures.duration_s, SHORT_TERM_WINDOW_S))
    axes.set_ylim(*_span(shown, LOUDNESS_FLOOR_LUFS))
    axes.set_xlabel("time at the end of the window (s)")
    axes.set_ylabel("loudness (LUFS)")
    axes.legend(**_LEGEND)
    return _png(figure)


def _spectrum_plot(files: Sequence[FileReport]) -> str:
    figure, axes = _axes()
    lines, shown = [], []
    for file in files:
        shown.append(np.maximum(file.analysis.spectrum_db, SPECTRUM_FLOOR_DB))
        lines += axes.semilogx(file.analysis.spectrum_hz, shown[-1], linewidth=1.2)
    axes.margins(x=0.0)
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda hz, _: _hz(hz)))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_ylim(*_span(shown, SPECTRUM_FLOOR_DB))
    axes.set_xlabel("frequency")
    axes.set_ylabel("level (dB re full scale)")
    # Labels passed with their lines are drawn as given: mathtext ($) is escaped, and a label
    # with a leading underscore is not dropped as it would be when matplotlib collects them.
    labels = [_label(file).replace("$", r"\$") for file in files]
    axes.legend(lines, labels, **_LEGEND)
    return _png(figure)


_LEGEND = {"loc": "lower left", "bbox_to_anchor": (0.0, 1.0), "ncols": 4, "frameon": False}
"""Legends in a row above the axes, where they hide no curve (a fade, a roll-off)."""


def _axes() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, which="both", color="#e1e4e8", linewidth=0.6)
    return figure, axes


def _span(values: Iterable[np.ndarray], floor: float) -> tuple[float, float]:
    """The y range of a plot of ``values`` (each already clipped at ``floor``):
    ``PLOT_HEADROOM_DB`` beyond their extremes, never below ``floor``."""
    finite = [v for v in (v[np.isfinite(v)] for v in values) if v.size]  # NaN is not drawn
    low = min((float(v.min()) for v in finite), default=floor)
    high = max((float(v.max()) for v in finite), default=floor)
    return max(low - PLOT_HEADROOM_DB, floor), max(high, floor) + PLOT_HEADROOM_DB


def _png(figure: Figure) -> str:
    """``figure`` as base64 PNG; without the "Software" tag the bytes carry no version."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- cells -----------------------------------------------------------------------------------


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    css_class: str,
    row_classes: Sequence[str] = (),
) -> str:
    """A table of escaped cells (``_Html`` cells pass as they are); ``row_classes``, when
    given, style the rows in order."""
    body = "\n".join(
        (f'<tr class="{row_class}">' if row_class else "<tr>")
        + "".join(f"<td>{_escaped(cell)}</td>" for cell in row)
        + "</tr>"
        for row, row_class in zip(rows, row_classes or [""] * len(rows), strict=True)
    )
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
    thead = f"<thead><tr>{header}</tr></thead>" if head else ""
    return f'<table class="{css_class}">{thead}<tbody>\n{body}\n</tbody></table>'


def _escaped(text: str) -> str:
    return text if isinstance(text, _Html) else html.escape(text)


def _badge(status: Status) -> _Html:
    return _Html(f'<span class="badge {status}">{_LABELS[status]}</span>')


def _img(png_base64: str, alt: str) -> str:
    return (
        f'<img src="data:image/png;base64,{png_base64}" width="{_WIDTH_IN * _DPI:.0f}" '
        f'height="{_HEIGHT_IN * _DPI:.0f}" alt="{html.escape(alt)}">'
    )


def _label(file: FileReport) -> str:
    return "mix" if file.role == "mix" else file.path.name


def _num(value: float | None, digits: int, unit: str = "", sign: bool = False) -> str:
    """``value`` to ``digits`` decimals; ``-inf`` (silence) as -∞, no value as "none". Signs
    stay ASCII, so a figure copied from the page pastes into a spreadsheet as a number."""
    if value is None:
        return "none"
    if math.isinf(value):
        text = "-∞" if value < 0 else "+∞"
    elif math.isnan(value):
        text = "n/a"
    else:
        text = f"{value:{'+' if sign else ''}.{digits}f}"
    return f"{text} {unit}" if unit else text


def _per_channel(names: Sequence[str], values: Sequence[float], unit: str, digits: int = 2) -> str:
    listed = (
        f"{_where(name, ' ')}{_num(v, digits)}" for name, v in zip(names, values, strict=True)
    )
    return f"{', '.join(listed)} {unit}"


def _where(channel: str, separator: str = ", ") -> str:
    return f"{channel}{separator}" if channel else ""


def _listed(items: Sequence[str]) -> str:
    more = len(items) - _LISTED
    listed = "; ".join(items[:_LISTED]) + (f"; and {more} more" if more > 0 else "")
    return f"{len(items)}: {listed}" if items else "none"


def _hz(frequency_hz: float) -> str:
    return f"{frequency_hz / 1000:g} kHz" if frequency_hz >= 1000 else f"{frequency_hz:g} Hz"


_STYLE = """
:root { color-scheme: light; --pass: #1a7f37; --warn: #9a6700; --fail: #cf222e; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 48px; background: #fff; }
h1 { margin: 0 0 4px; font-size: 26px; } h3 { margin: 18px 0 6px; font-size: 16px; }
h2 { margin: 32px 0 8px; font-size: 20px; border-bottom: 1px solid #d0d7de; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } tr.warn td { background: #fff8c5; } tr.fail td { background: #ffebe9; }
.figures td:first-child, .targets td:first-child { width: 30%; font-weight: 600; }
.models td:not(:last-child) { white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-weight: 700; font-size: 12px; white-space: nowrap; }
.badge.pass { background: var(--pass); } .badge.warn { background: var(--warn); }
.badge.fail { background: var(--fail); } #status .badge { font-size: 15px; padding: 2px 12px; }
img { display: block; max-width: 100%; height: auto; }
@media print { body { background: #fff; } main { max-width: none; } }
"""

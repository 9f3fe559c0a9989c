"""The parts of a self-contained report page, shared by ``qc.html`` and ``album-qc.html``.

Self-contained, so a report still opens from a mail attachment or an archive years later:
the CSS is inline, the plots are PNG ``data:`` URLs, no script runs, and a
Content-Security-Policy denies the page every network access. Every string from the session
(title, file names, notes) is escaped. The plots are drawn on a ``Figure`` of their own
through the Agg canvas, never through pyplot's global state, so reports render safely in
parallel threads; PNGs are written without the software tag, so the same report gives the
same bytes.
"""

from __future__ import annotations

import base64
import html
import importlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from render.qc import Check, Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOUDNESS_FLOOR_LUFS = -60.0
"""Bottom of the loudness plot: below it lie only fades and silence (10 LU above the -70 LUFS
absolute gate of BS.1770-4 §2.3); silence (-inf) is drawn on the floor, not left out."""
PLOT_HEADROOM_DB = 3.0
"""Space above and below a plot's curves (and the loudness target): they never touch the
frame, and the axis zooms on the levels the file has."""
WIDTH_IN, HEIGHT_IN, DPI = 9.6, 3.2, 100
"""960 x 320 pixels: the page's width at one pixel per CSS pixel."""
LABELS: dict[Status, str] = {"pass": "✓ PASS", "warn": "! WARN", "fail": "✗ FAIL"}
"""Status words with a symbol, so a verdict never rests on its colour alone (WCAG 1.4.1)."""


class Html(str):
    """Markup built here from escaped parts: a table cell passes it through as it is."""


def document(title: str, sections: Sequence[str]) -> str:
    """One HTML5 document of ``sections`` (markup), titled ``title`` (escaped here)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


def checks_section(checks: Sequence[Check], links: Mapping[str, Html]) -> str:
    """The check grid; a file name is shown as its link in ``links`` (to its figures)."""
    rows = [
        (links.get(c.file, c.file), c.name, badge(c.status), c.measured, c.expected, c.detail)
        for c in checks
    ]
    head = ("File", "Check", "Status", "Measured", "Expected", "Detail")
    grid = table(head, rows, "checks", [c.status for c in checks]) if checks else "None."
    return f'<section id="checks">\n<h2>Checks</h2>\n{grid}\n</section>'


# --- plots -----------------------------------------------------------------------------------

LEGEND = {"loc": "lower left", "bbox_to_anchor": (0.0, 1.0), "ncols": 4, "frameon": False}
"""Legends in a row above the axes, where they hide no curve (a fade, a roll-off)."""


def preload() -> None:
    """Import the plotting library (0.3-0.7 s) ahead of the first plot: a render that will
    draw a report calls this beside its mix, on a core the mix leaves idle at times."""
    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker"):
        importlib.import_module(module)


def new_axes() -> tuple[Figure, Axes]:
    """A plot's figure and axes. matplotlib is imported here, on the first plot: a render
    whose report comes from the cache (or a run that writes none) never loads it."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, which="both", color="#e1e4e8", linewidth=0.6)
    return figure, axes


def span(values: Iterable[np.ndarray], floor: float) -> tuple[float, float]:
    """The y range of a plot of ``values`` (each already clipped at ``floor``):
    ``PLOT_HEADROOM_DB`` beyond their extremes, never below ``floor``."""
    finite = [v for v in (v[np.isfinite(v)] for v in values) if v.size]  # NaN is not drawn
    low = min((float(v.min()) for v in finite), default=floor)
    high = max((float(v.max()) for v in finite), default=floor)
    return max(low - PLOT_HEADROOM_DB, floor), max(high, floor) + PLOT_HEADROOM_DB


def png(figure: Figure) -> str:
    """``figure`` as base64 PNG; without the "Software" tag the bytes carry no version."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# --- cells -----------------------------------------------------------------------------------


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    css_class: str,
    row_classes: Sequence[str] = (),
) -> str:
    """A table of escaped cells (``Html`` cells pass as they are); ``row_classes``, when
    given, style the rows in order."""
    body = "\n".join(
        (f'<tr class="{row_class}">' if row_class else "<tr>")
        + "".join(f"<td>{escaped(cell)}</td>" for cell in row)
        + "</tr>"
        for row, row_class in zip(rows, row_classes or [""] * len(rows), strict=True)
    )
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in head)
    thead = f"<thead><tr>{header}</tr></thead>" if head else ""
    return f'<table class="{css_class}">{thead}<tbody>\n{body}\n</tbody></table>'


def escaped(text: str) -> str:
    return text if isinstance(text, Html) else html.escape(text)


def badge(status: Status) -> Html:
    return Html(f'<span class="badge {status}">{LABELS[status]}</span>')


def img(png_base64: str, alt: str) -> str:
    return (
        f'<img src="data:image/png;base64,{png_base64}" width="{WIDTH_IN * DPI:.0f}" '
        f'height="{HEIGHT_IN * DPI:.0f}" alt="{html.escape(alt)}">'
    )


def num(value: float | None, digits: int, unit: str = "", sign: bool = False) -> str:
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


def hz(frequency_hz: float) -> str:
    return f"{frequency_hz / 1000:g} kHz" if frequency_hz >= 1000 else f"{frequency_hz:g} Hz"


STYLE = """
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

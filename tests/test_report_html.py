"""``qc.html``: one self-contained page that shows every check and figure, escapes what the
session wrote, renders the same bytes twice, and opens in headless Chromium without errors."""

from __future__ import annotations

import base64
import dataclasses
import io
import math
import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from render.analysis import Analysis, ClipRun, PeakOver
from render.measure import LoudnessFigures
from render.qc import Check, FileReport, Report
from render.report.html import render_html
from render.translation import DeviceFigures, DeviceModel

TITLE = 'Funk <script>alert("x")</script> & groove'
SESSION = Path("sessions/funk & <b>bold</b>.yaml")
PREVIEW = "funk <preview> $x$.mp3"
OCTAVES_HZ = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODELS = (
    DeviceModel("phone speaker", 300.0, 12000.0, ((1500.0, 4.0, 2.0),), True, "Phone <spec>"),
    DeviceModel("car", 40.0, 16000.0, (), False, "In-car response & measurements"),
)


# --- the report ------------------------------------------------------------------------------


def analysis(
    duration_s: float,
    level_lufs: float,
    seed: int,
    channels: int = 2,
    clipped: tuple[ClipRun, ...] = (),
    overs: tuple[PeakOver, ...] = (),
) -> Analysis:
    """Figures of a song at ``level_lufs`` that starts with 0.5 s of silence (-inf values)."""
    rng = np.random.default_rng(seed)
    series = []
    for window_s in (0.4, 3.0):
        k = np.arange(round((duration_s - window_s) / 0.1) + 1)
        values = level_lufs + 3.0 * np.sin(2 * np.pi * k / 300) + rng.normal(0, 1.0, k.size)
        values[: 5 if window_s < 1 else 0] = -np.inf
        series.append(values)
    spectrum_hz = np.geomspace(20.0, 20000.0, 200)
    spectrum_db = level_lufs - 20.0 - 3.0 * np.log2(spectrum_hz / 1000.0) + rng.normal(0, 1.5, 200)
    peaks = tuple(level_lufs + 13.0 + 0.1 * c for c in range(channels))
    return Analysis(
        duration_s=duration_s,
        sample_rate=48000,
        loudness=LoudnessFigures(
            integrated_lufs=level_lufs,
            loudness_range_lu=6.3,
            max_momentary_lufs=level_lufs + 5.0,
            max_short_term_lufs=level_lufs + 3.0,
            momentary_lufs=series[0],
            short_term_lufs=series[1],
            true_peak_dbtp=peaks,
            sample_peak_dbfs=tuple(p - 0.3 for p in peaks),
        ),
        plr_db=13.0,
        dc_offset=(1e-4, 0.0)[:channels],
        correlation=0.82,
        min_correlation_400ms=0.31,
        mono_fold_drop_lu=-1.3,
        clipped_runs=clipped,
        true_peak_overs=overs,
        leading_silence_s=0.5,
        trailing_silence_s=1.25,
        octave_bands_hz=OCTAVES_HZ,
        octave_levels_db=tuple(-10.0 - i for i in range(len(OCTAVES_HZ))),
        spectrum_hz=spectrum_hz,
        spectrum_db=spectrum_db,
    )


def devices() -> tuple[DeviceFigures, ...]:
    return (
        DeviceFigures("phone speaker", -19.5, -5.5, -24.25, 1.5),
        DeviceFigures("car", -14.2, -0.2, math.nan, -0.05),  # nan: no low end in the master
    )


CHECKS = (
    Check("loudness", "funk.wav", "pass", "-14.02 LUFS", "-14 LUFS ± 0.1 LU", ""),
    Check("silence", "funk.wav", "warn", "0.70 s leading", "<= 0.5 s leading", "0.70 s <lead>"),
    Check("clipping", PREVIEW, "fail", "2 clipped runs", "none", "clipped at 12.00 s (L, 480)"),
    Check("limiting", "master", "pass", "2.3 dB", "<= 6 dB (max_limiting)", ""),
)


def make_report(master_s: float = 60.0) -> Report:
    overs = (PeakOver(1, 30.0, 30.05, 0.31), PeakOver(0, 41.5, 41.6, 0.07))
    runs = (ClipRun(0, 12.0, 480), ClipRun(1, 13.25, 3))
    return Report(
        title=TITLE,
        session=SESSION,
        target_lufs=-14.0,
        ceiling_dbtp=-1.0,
        lra_window_lu=(4.0, None),
        limiting_db=2.3,
        files=(
            FileReport(
                "mix", Path("out/mix.wav"), "WAV, 32-bit float", analysis(60, -20, 1), (), ()
            ),
            FileReport(
                "master",
                Path("out/funk.wav"),
                "WAV, 24-bit, 48000 Hz, TPDF dither",
                analysis(master_s, -14.0, 2),
                devices(),
                ("gain -0.12 dB to meet the true-peak ceiling",),
            ),
            FileReport(
                "master",
                Path(f"out/{PREVIEW}"),
                "MP3, 320 kbit/s",
                analysis(master_s, -13.5, 3, clipped=runs, overs=overs),
                (),
                (),
            ),
        ),
        checks=CHECKS,
        notes=("mastered & limited <hard>",),
    )


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_report(), MODELS)


# --- reading the page ------------------------------------------------------------------------


@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclasses.field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find(self, tag: str, **attrs: str) -> list[Node]:
        """Every descendant ``tag`` whose attributes include ``attrs`` (``class_`` for class)."""
        wanted = {key.rstrip("_"): value for key, value in attrs.items()}
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and wanted.items() <= child.attrs.items():
                    found.append(child)
                found += child.find(tag, **attrs)
        return found


VOID_TAGS = frozenset({"meta", "img", "br", "hr", "link", "input"})


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [Node("#document", {})]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {key: value or "" for key, value in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed <{builder.stack[-1].tag}>"
    return builder.stack[0]


def pngs(text: str) -> list[bytes]:
    prefix = "data:image/png;base64,"
    sources = [img.attrs["src"] for img in parse(text).find("img")]
    assert all(source.startswith(prefix) for source in sources)
    return [base64.b64decode(source[len(prefix) :], validate=True) for source in sources]


def rows(table: Node) -> list[list[str]]:
    return [[td.text() for td in tr.find("td")] for tr in table.find("tbody")[0].find("tr")]


# --- the page --------------------------------------------------------------------------------


def test_the_page_is_self_contained(page: str) -> None:
    document = parse(page)
    for tag in ("script", "link", "iframe", "object", "embed", "base"):
        assert not document.find(tag), tag
    ids = {node.attrs["id"] for node in _all(document) if "id" in node.attrs}
    references = [
        (node.tag, key, value)
        for node in _all(document)
        for key, value in node.attrs.items()
        if key in ("src", "href", "srcset", "action", "poster", "data")
    ]
    assert references
    for tag, key, value in references:
        if key == "href":  # only links within the page, each to an element that exists
            assert value.startswith("#") and value[1:] in ids, (tag, value)
        else:
            assert tag == "img" and value.startswith("data:image/png;base64,"), (tag, value)
    style = "".join(node.text() for node in document.find("style"))
    assert "url(" not in style and "@import" not in style
    policy = document.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert "default-src 'none'" in policy[0].attrs["content"]


def test_images_are_pngs_that_show_data(page: str) -> None:
    images = parse(page).find("img")
    assert len(images) == 3  # the spectrum, then the loudness of each master
    for img, png in zip(images, pngs(page), strict=True):
        assert png[:8] == PNG_SIGNATURE
        width, height = struct.unpack(">II", png[16:24])  # IHDR, the first chunk
        assert (width, height) == (int(img.attrs["width"]), int(img.attrs["height"]))
        assert 600 <= width <= 2000 and 200 <= height <= 1000
        pixels = imread(io.BytesIO(png))[..., :3]
        # Empty axes (frame, grid, labels) measure std 0.11, 256 colours, no coloured pixel;
        # with only the dashed target line 271 colours and 0.4 % coloured pixels. Curves bring
        # their own hues and antialiasing: the plots here measure 1700+ colours and 4-5 %.
        assert pixels.std() > 0.05
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000
        assert np.mean(np.ptp(pixels, axis=2) > 0.2) > 0.01
        assert b"Software" not in png  # no software tag: no version in the bytes


def with_figures(report: Report, index: int, **changes: object) -> Report:
    """``report`` with figures of file ``index`` replaced: fields of its ``Analysis`` or of
    its ``LoudnessFigures``, by name."""
    file = report.files[index]
    names = {field.name for field in dataclasses.fields(LoudnessFigures)}
    loudness = {key: value for key, value in changes.items() if key in names}
    others = {key: value for key, value in changes.items() if key not in names}
    figures = dataclasses.replace(
        file.analysis, loudness=dataclasses.replace(file.analysis.loudness, **loudness), **others
    )
    files = list(report.files)
    files[index] = dataclasses.replace(file, analysis=figures)
    return dataclasses.replace(report, files=tuple(files))


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        (lambda r: with_figures(r, 0, spectrum_db=r.files[0].analysis.spectrum_db - 10), {0}),
        (
            lambda r: with_figures(
                r, 1, short_term_lufs=r.files[1].analysis.loudness.short_term_lufs - 10
            ),
            {1},
        ),
        (lambda report: dataclasses.replace(report, target_lufs=None), {1, 2}),
    ],
    ids=["mix spectrum", "first master's short-term", "no target"],
)
def test_each_plot_draws_its_own_data(
    page: str, change: Callable[[Report], Report], changed: set[int]
) -> None:
    before, after = pngs(page), pngs(render_html(change(make_report()), MODELS))
    assert {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b} == changed


def _spike_column(report: Report, momentary_k: int | None, short_term_k: int | None) -> float:
    """The column of the first master's loudness plot where blue runs tallest, when its series
    are silent but for one -10 LUFS value at the given index: a spike from the floor."""
    series = {}
    for name, k in (("momentary_lufs", momentary_k), ("short_term_lufs", short_term_k)):
        series[name] = np.full(getattr(report.files[1].analysis.loudness, name).size, -np.inf)
        if k is not None:
            series[name][k] = -10.0
    spiked = dataclasses.replace(with_figures(report, 1, **series), target_lufs=None)
    pixels = imread(io.BytesIO(pngs(render_html(spiked))[1]))[..., :3]
    blue = np.sum(pixels[..., 2] - pixels[..., 0] > 0.1, axis=0)  # both blues: b - r > 0.3
    tall = np.nonzero(blue >= blue.max() / 2)[0]  # the spike, not the legend's short lines
    assert blue.max() > 100  # the spike spans most of the 50 LU the axes show
    return float(tall.mean())


def test_loudness_is_drawn_at_the_end_of_each_window() -> None:
    # Momentary value 300 (the 400 ms ending at 0.4 + 30.0 s) and short-term value 274 (the
    # 3 s ending at 3.0 + 27.4 s) end together: drawn at the same x. Plotted at the start of
    # their windows they would be 2.6 s (38 px) apart, at the centres 1.3 s (19 px).
    report = make_report()
    momentary = _spike_column(report, 300, None)
    short_term = _spike_column(report, None, 274)
    assert abs(momentary - short_term) < 1.5  # antialiasing of a 0.8 and a 1.6 px wide line
    # 30.4 s of 60 s: the middle of the axes, which span most of the 960 px.
    assert 400 < momentary < 560


def test_session_strings_are_escaped(page: str) -> None:
    assert "<script>" not in page and "<b>" not in page and "<preview>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; groove" in page
    document = parse(page)
    assert document.find("h1")[0].text() == TITLE
    assert document.find("title")[0].text() == f"QC report: {TITLE}"
    assert document.find("code")[0].text() == SESSION.as_posix()
    assert PREVIEW in [h2.text().removeprefix("Master: ") for h2 in document.find("h2")]
    assert document.find("li")[0].text() == "mastered & limited <hard>"


def test_the_check_grid_has_one_row_per_check(page: str) -> None:
    section = parse(page).find("section", id="checks")[0]
    labels = {"pass": "✓ PASS", "warn": "! WARN", "fail": "✗ FAIL"}
    expected = [
        [c.file, c.name, labels[c.status], c.measured, c.expected, c.detail] for c in CHECKS
    ]
    assert rows(section) == expected
    assert [tr.attrs["class"] for tr in section.find("tbody")[0].find("tr")] == [
        c.status for c in CHECKS
    ]
    badges = section.find("span")
    assert [b.attrs["class"] for b in badges] == [f"badge {c.status}" for c in CHECKS]
    assert parse(page).find("span", id="status")[0].text() == "✗ FAIL"  # the worst verdict


def test_the_header_states_the_targets(page: str) -> None:
    targets = rows(parse(page).find("table", class_="targets")[0])
    assert targets == [
        ["Integrated loudness", "-14.0 LUFS"],
        ["True-peak ceiling", "-1.0 dBTP"],
        ["Loudness range", "≥ 4.0 LU"],
        ["Limiter's deepest gain reduction", "2.3 dB"],
    ]


def test_every_file_has_its_figures(page: str) -> None:
    tables = [dict(rows(table)) for table in parse(page).find("table", class_="figures")]
    mix, master, preview = tables
    assert mix["Integrated loudness"] == "-20.0 LUFS"
    assert master["True peak"] == "L -1.00, R -0.90 dBTP"
    assert master["Sample peak"] == "L -1.30, R -1.20 dBFS"
    assert master["DC offset"] == "L -80.0, R -∞ dBFS"  # 1e-4 is -80 dBFS; 0 is silence
    assert master["Stereo correlation"] == "0.82 (lowest 400 ms window 0.31)"
    assert master["Mono fold"] == "-1.3 LU"
    assert master["Clipped runs"] == "none"
    assert master["Corrections"] == "gain -0.12 dB to meet the true-peak ceiling"
    assert preview["Clipped runs"] == "2: 12.00 s (L, 480 samples); 13.25 s (R, 3 samples)"
    assert preview["True-peak overs"] == (
        "2: 30.00-30.05 s (R, +0.31 dBTP); 41.50-41.60 s (L, +0.07 dBTP)"
    )
    assert preview["Silence"] == "0.50 s leading, 1.25 s trailing"
    assert preview["Duration"] == "60.00 s at 48000 Hz"


def test_devices_and_tonal_balance(page: str) -> None:
    document = parse(page)
    (device_table,) = document.find("table", class_="devices")  # only the first master's
    assert rows(device_table) == [
        ["phone speaker", "-19.5", "-5.5", "-24.2", "+1.5"],  # -24.25 rounds half to even
        ["car", "-14.2", "-0.2", "n/a", "-0.1"],
    ]
    models = rows(document.find("table", class_="models")[0])
    assert models == [
        ["phone speaker", "300 Hz to 12 kHz", "1.5 kHz +4.0 dB, Q 2", "yes", "Phone <spec>"],
        ["car", "40 Hz to 16 kHz", "none", "no", "In-car response & measurements"],
    ]
    tonal = rows(document.find("table", class_="tonal-balance")[0])
    assert [row[0] for row in tonal] == ["mix", "funk.wav", PREVIEW]
    assert tonal[0][1:] == [f"-{10 + i}.0" for i in range(len(OCTAVES_HZ))]


def test_a_silent_mono_render_without_target() -> None:
    # Every level -inf, no short-term value (shorter than 3 s), no target, no checks.
    mono = analysis(2.0, -20.0, 4, channels=1)
    files = tuple(
        FileReport(role, Path(f"{role}.wav"), "WAV", mono, (), ()) for role in ("mix", "master")
    )
    report = Report("", Path("s.yaml"), None, None, None, None, files, (), ())
    silence = {
        "integrated_lufs": -np.inf,
        "max_momentary_lufs": -np.inf,
        "momentary_lufs": np.full(mono.loudness.momentary_lufs.size, -np.inf),
        "short_term_lufs": np.empty(0),
        "spectrum_db": np.full(mono.spectrum_hz.size, -np.inf),
        "dc_offset": (0.0,),
    }
    text = render_html(with_figures(with_figures(report, 0, **silence), 1, **silence), MODELS)
    document = parse(text)
    figures_table = dict(rows(document.find("table", class_="figures")[0]))
    assert figures_table["Integrated loudness"] == "-∞ LUFS"
    assert figures_table["True peak"] == "-7.00 dBTP"  # mono: no channel names
    assert figures_table["DC offset"] == "-∞ dBFS"
    assert rows(document.find("table", class_="targets")[0])[0] == ["Integrated loudness", "none"]
    assert document.find("span", id="status")[0].text() == "✓ PASS"
    assert len(pngs(text)) == 2  # the spectrum and the master's loudness, both drawn
    assert not document.find("section", id="devices")


def test_the_same_report_gives_the_same_bytes(page: str) -> None:
    # Also from two threads at once: the plots share no state (no pyplot, no rcParams).
    with ThreadPoolExecutor(max_workers=2) as pool:
        pages = list(pool.map(lambda _: render_html(make_report(), MODELS), range(2)))
    assert pages == [page, page]


# --- in a browser ----------------------------------------------------------------------------


def chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM headless Chromium builds from ``page``, and the page's console messages."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Chromium is needed to test the report: apt-get install chromium"
    run = subprocess.run(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # Chromium also logs its own GPU and D-Bus noise: keep only what the page said.
    console = [
        line
        for line in run.stderr.splitlines()
        if (":CONSOLE" in line and page.as_uri() in line) or "Uncaught" in line
    ]
    return run.stdout, console


def test_chromium_renders_the_page_without_console_messages(page: str, tmp_path: Path) -> None:
    path = tmp_path / "qc.html"
    path.write_text(page, encoding="utf-8")
    dom, console = chromium(path, tmp_path / "profile")
    assert console == []
    document = parse(dom)
    assert rows(document.find("section", id="checks")[0])[2][2] == "✗ FAIL"
    assert len(document.find("img")) == 3


def test_chromium_decodes_every_image_at_its_size(page: str, tmp_path: Path) -> None:
    # The page runs no script: a copy allows one, which records each image's decoded size.
    probe = (
        "<script>addEventListener('load', () => document.body.dataset.sizes = [...document"
        ".images].map(i => i.naturalWidth + 'x' + i.naturalHeight).join(' '))</script></body>"
    )
    path = tmp_path / "probe.html"
    path.write_text(
        page.replace(
            "default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"
        ).replace("</body>", probe),
        encoding="utf-8",
    )
    dom, console = chromium(path, tmp_path / "profile")
    assert console == []
    sizes = parse(dom).find("body")[0].attrs["data-sizes"].split()
    expected = [f"{img.attrs['width']}x{img.attrs['height']}" for img in parse(page).find("img")]
    assert sizes == expected


# --- speed -----------------------------------------------------------------------------------


def test_a_three_minute_report_renders_in_under_one_and_a_half_seconds() -> None:
    report = make_report(master_s=180.0)
    render_html(report, MODELS)  # the first call loads fonts once per process
    start = time.perf_counter()
    render_html(report, MODELS)
    elapsed_s = time.perf_counter() - start
    print(f"qc.html of a mix and two 3-minute masters: {elapsed_s * 1000:.0f} ms")
    assert elapsed_s < 1.5


def _all(node: Node) -> list[Node]:
    return [node, *(n for child in node.children if isinstance(child, Node) for n in _all(child))]

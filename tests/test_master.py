"""Mastering end to end: every delivered file lands on its loudness target and under its
true-peak ceiling, by our meter and by ffmpeg's ebur128 (an independent implementation)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from render.measure import measure
from render.pipeline import RenderResult, render_session
from render.session import LoadOptions, load_session
from tests.conftest import SAMPLE_RATE, write_stem
from tests.ebur128 import ffmpeg_ebur128

REPO = Path(__file__).parent.parent
OURS_LU = 0.1  # the tolerance on our own meter
THEIRS_LU = 0.3  # ffmpeg's meter: prints one decimal, and its K filter is its own design
PEAK_SLACK_DB = 0.1  # ffmpeg's 4x interpolator differs from ours by a few hundredths of a dB


def song(rng: np.random.Generator, seconds: float = 12.0) -> np.ndarray:
    """A stereo, music-like signal: a kick every half second, a bass line and a noise bed,
    with dynamics a limiter has to work on (crest factor ~18 dB)."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    beat = t % 0.5
    kick = np.sin(2 * np.pi * 55 * beat * (1 + 2 * np.exp(-beat * 30))) * np.exp(-beat * 12)
    bass = 0.25 * np.sin(2 * np.pi * (55 + 27.5 * (np.floor(t) % 3)) * t)
    bed = rng.standard_normal((2, n)) * 0.02
    return 0.5 * kick + bass + bed


def render(folder: Path, body: str) -> RenderResult:
    session = folder / "session.yaml"
    session.write_text(f"version: 1\ntitle: Song\nstems: stems\n{body}")
    return render_session(load_session(session, LoadOptions()), jobs=2)


@pytest.fixture
def stems(tmp_path: Path, rng: np.random.Generator) -> Path:
    write_stem(tmp_path / "stems" / "song.wav", song(rng))
    return tmp_path


TRACK = "tracks:\n  song: {stem: song.wav}\n"


@pytest.mark.parametrize("target_lufs", [-9.0, -14.0, -23.0])
def test_master_lands_on_target_by_both_meters(stems: Path, target_lufs: float) -> None:
    result = render(
        stems,
        TRACK + f"mastering:\n  target: {{loudness: {target_lufs} LUFS, true_peak: -1 dBTP}}\n",
    )
    (written,) = [f for f in result.files if f.figures is not None]
    theirs = ffmpeg_ebur128(written.path)
    assert written.figures.loudness.integrated_lufs == pytest.approx(target_lufs, abs=OURS_LU)
    assert theirs.integrated_lufs == pytest.approx(target_lufs, abs=THEIRS_LU)
    assert max(written.figures.loudness.true_peak_dbtp) <= -1.0
    assert theirs.true_peak_dbtp <= -1.0 + PEAK_SLACK_DB


def test_demo_master_meets_spotify_in_every_file(tmp_path: Path) -> None:
    """The README's first command: the demo's 24-bit master and its 16-bit 44.1 kHz CD
    file, converted from the 48 kHz session, each at -14 LUFS and under -1 dBTP."""
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "sessions" / "demo", folder, ignore=shutil.ignore_patterns("out"))
    result = render_session(load_session(folder / "session.yaml", LoadOptions()), jobs=2)
    masters = [f for f in result.files if f.figures is not None]
    assert [(f.path.name, sf.info(str(f.path)).samplerate) for f in masters] == [
        ("Indie Pop.wav", 48_000),
        ("Indie Pop - CD 16-44.wav", 44_100),
    ]
    for written in masters:
        theirs = ffmpeg_ebur128(written.path)
        assert written.figures.loudness.integrated_lufs == pytest.approx(-14.0, abs=OURS_LU)
        assert theirs.integrated_lufs == pytest.approx(-14.0, abs=THEIRS_LU)
        assert max(written.figures.loudness.true_peak_dbtp) <= -1.0
        assert theirs.true_peak_dbtp <= -1.0 + PEAK_SLACK_DB
    assert result.master is not None and 0.0 < result.master.limiting_db < 6.0


def test_limiter_holds_the_worst_inter_sample_peak(tmp_path: Path) -> None:
    """A sine at fs/4 sampled at 45° reads 3 dB under its true peak; pushed into the
    limiter 6 dB over its ceiling, the master's true peak sits at the ceiling, 3 dB above
    its sample peak."""
    n = 5 * SAMPLE_RATE
    x = 0.99 * np.sin(np.pi / 2 * np.arange(n) + np.pi / 4)[np.newaxis, :]
    x *= np.minimum(1.0, np.minimum(np.arange(n), n - 1 - np.arange(n)) / 2400)  # 50 ms fades
    write_stem(tmp_path / "stems" / "song.wav", x)
    result = render(
        tmp_path, TRACK + "mastering:\n  chain: [{gain: +6 dB}, {limiter: {ceiling: -1 dBTP}}]\n"
    )
    (written,) = [f for f in result.files if f.figures is not None]
    assert max(written.figures.loudness.true_peak_dbtp) == pytest.approx(-1.0, abs=0.05)
    assert max(written.figures.loudness.sample_peak_dbfs) == pytest.approx(-4.0, abs=0.1)
    assert ffmpeg_ebur128(written.path).true_peak_dbtp <= -1.0 + PEAK_SLACK_DB


def test_a_chain_without_limiter_gets_one_and_says_so(stems: Path) -> None:
    result = render(stems, TRACK + "mastering:\n  target: {preset: amazon}\n")
    assert any("true-peak limiter at -2 dBTP ends it" in note for note in result.report.notes)
    (written,) = [f for f in result.files if f.figures is not None]
    assert max(written.figures.loudness.true_peak_dbtp) <= -2.0


def test_a_limiter_above_the_target_ceiling_is_lowered(stems: Path) -> None:
    result = render(
        stems,
        TRACK + "mastering:\n  chain: [{limiter: {ceiling: -0.3 dBTP}}]\n"
        "  target: {loudness: -12 LUFS, true_peak: -1.5 dBTP}\n",
    )
    assert any(
        "ceiling lowered from -0.3 to the target's true peak" in n for n in result.report.notes
    )
    (written,) = [f for f in result.files if f.figures is not None]
    assert max(written.figures.loudness.true_peak_dbtp) <= -1.5


def test_heavy_limiting_is_reported_not_hidden(stems: Path) -> None:
    result = render(stems, TRACK + "mastering:\n  target: {loudness: -5 LUFS, max_limiting: 3}\n")
    assert result.master is not None and result.master.limiting_db > 3.0
    assert any("more than max_limiting (3 dB)" in note for note in result.report.notes)


def test_an_unreachable_target_is_reported(stems: Path) -> None:
    """No gain makes a master with a -20 dBTP ceiling reach 0 LUFS: the render says how
    far it got instead of pretending."""
    result = render(stems, TRACK + "mastering:\n  target: {loudness: 0 LUFS, true_peak: -20}\n")
    assert result.master is not None and result.master.loudness_lufs < -10.0
    assert any("not the target 0 LUFS" in note for note in result.report.notes)


def test_master_figures_are_measured_on_the_written_file(stems: Path) -> None:
    """The figures reported for a 16-bit file are those of its dithered samples on disk."""
    result = render(
        stems,
        TRACK + "mastering:\n  target: {preset: spotify}\n"
        "output:\n  master: {format: wav, bit_depth: 16, sample_rate: 44100}\n",
    )
    (written,) = [f for f in result.files if f.figures is not None]
    x, rate = sf.read(str(written.path), always_2d=True)
    assert (written.path.name, rate) == ("Song.wav", 44_100)
    on_disk = measure(x.T, rate)
    assert written.figures.loudness.integrated_lufs == on_disk.integrated_lufs
    assert written.figures.loudness.true_peak_dbtp == on_disk.true_peak_dbtp


def test_lossy_previews_hold_the_ceiling_as_decoded(stems: Path) -> None:
    """An MP3 encoder overshoots the true peak of its input; the preview is measured as
    decoded and trimmed until it holds the ceiling, by our meter and ffmpeg's."""
    result = render(
        stems,
        TRACK + "mastering:\n  target: {loudness: -9 LUFS, true_peak: -1 dBTP}\n"
        "output:\n  master: [{format: mp3, bitrate: 128}, {format: ogg}, "
        "{format: opus, bitrate: 96}]\n",
    )
    previews = [f for f in result.files if f.figures is not None]
    assert [f.path.name for f in previews] == ["Song.mp3", "Song.ogg", "Song.opus"]
    assert any("trimmed" in c for f in previews for c in f.corrections)  # it did overshoot
    for written in previews:
        theirs = ffmpeg_ebur128(written.path)  # ffmpeg decodes it too: valid Ogg pages
        assert theirs.integrated_lufs == pytest.approx(
            written.figures.loudness.integrated_lufs, abs=0.3
        )
        assert max(written.figures.loudness.true_peak_dbtp) <= -1.0
        assert theirs.true_peak_dbtp <= -1.0 + PEAK_SLACK_DB


def test_ogg_files_are_byte_identical_across_renders(stems: Path) -> None:
    """libsndfile numbers each Ogg stream at random; the renderer stamps a serial derived
    from the session seed, so a second render writes the same bytes."""
    body = TRACK + "mastering:\n  target: {preset: spotify}\noutput:\n  master: {format: ogg}\n"
    first = render(stems, body).files[-1].path.read_bytes()
    assert render(stems, body).files[-1].path.read_bytes() == first

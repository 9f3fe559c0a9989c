"""Sequencing: every song starts on a whole CD frame where the CUE sheet says, pre-gaps are
whole frames of silence, crossfades are equal-power and sample-accurate."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from render.album.build import render_album
from render.album.cue import timestamp
from render.album.load import load_album
from render.album.sequence import SequenceError, assemble, place
from tests.conftest import sine, write_stem

RATE = 48_000
FRAME = RATE // 75  # 640 samples


def test_starts_lie_on_whole_frames_after_gaps_and_crossfades() -> None:
    """Song 1 after a 2 s pre-gap; song 2 after 0.51 s (38.25 frames: rounded to 38) that
    begins on the frame after song 1's end; song 3 crossfades in 1 s early, on the frame at
    or before that, so the overlap is at least the asked second and less than a frame more."""
    lengths = [100_001, 90_000, 80_000]
    placements, total = place(lengths, [2.0, 0.51, 0.0], [0.0, 1.0, 0.0], RATE)
    first, second, third = placements
    assert (first.index_00, first.index_01, first.fade_in) == (0, 96_000, 0)
    assert second.index_00 == -(-(96_000 + 100_001) // FRAME) * FRAME == 196_480
    assert second.index_01 == 196_480 + 38 * FRAME
    overlap = second.end - third.index_01
    assert third.fade_in == overlap and RATE <= overlap < RATE + FRAME
    assert all(p.index_01 % FRAME == 0 and p.index_00 % FRAME == 0 for p in placements)
    assert total % FRAME == 0 and 0 <= total - third.end < FRAME


def test_assembly_puts_each_song_at_its_place() -> None:
    """Impulses planted at each song's first sample and 1000 samples in land at the places'
    starts; outside the songs the album is exactly silent."""
    songs = []
    for amplitude in (0.5, 0.25):
        x = np.zeros((2, 5000))
        x[:, 0] = x[:, 1000] = amplitude
        songs.append(x)
    placements, total = place([5000, 5000], [0.1, 0.3], [0.0, 0.0], RATE)
    album = assemble(songs, placements, total)
    (found,) = np.nonzero(album[0])
    starts = [p.index_01 for p in placements]
    assert found.tolist() == [starts[0], starts[0] + 1000, starts[1], starts[1] + 1000]
    assert album[0, found].tolist() == [0.5, 0.5, 0.25, 0.25]


def level_db(x: np.ndarray, window: int) -> np.ndarray:
    usable = x[: x.size // window * window].reshape(-1, window)
    return 10 * np.log10(np.mean(usable**2, axis=1))


def test_equal_power_crossfade_of_noise_into_itself_has_no_dip(
    rng: np.random.Generator,
) -> None:
    """Two stretches of one stationary noise, crossfaded over 2 s: the level in 200 ms
    windows (the estimate's own spread is about 0.06 dB) never dips 0.5 dB under the level
    of the noise itself; a linear crossfade of the same noise dips 3 dB in the middle."""
    a, b = (rng.standard_normal((1, 6 * RATE)) * 0.1 for _ in range(2))
    placements, total = place([a.shape[1], b.shape[1]], [0.0, 0.0], [2.0, 0.0], RATE)
    album = assemble([a, b], placements, total)[0, : placements[1].end]
    reference_db = 10 * np.log10(np.mean(a**2))
    assert np.min(level_db(album, RATE // 5)) > reference_db - 0.5
    n = placements[1].fade_in
    ramp = (np.arange(n) + 0.5) / n
    linear = a[0, -n:] * (1 - ramp) + b[0, :n] * ramp
    middle = linear[n // 2 - RATE // 10 : n // 2 + RATE // 10]
    assert 10 * np.log10(np.mean(middle**2)) < reference_db - 2.5


def test_crossfade_gains_are_complementary_in_power() -> None:
    placements, total = place([RATE, RATE], [0.0, 0.0], [0.5, 0.0], RATE)
    ones = [np.ones((1, RATE)), np.ones((1, RATE))]
    n = placements[1].fade_in
    fade_out = assemble([ones[0], np.zeros((1, RATE))], placements, total)[0]
    fade_in = assemble([np.zeros((1, RATE)), ones[1]], placements, total)[0]
    start = placements[1].index_01
    power = fade_out[start : start + n] ** 2 + fade_in[start : start + n] ** 2
    assert np.max(np.abs(power - 1.0)) < 1e-15


@pytest.mark.parametrize(
    ("frames", "text"),
    [(0, "00:00:00"), (74, "00:00:74"), (75, "00:01:00"), (4500 * 61 + 3, "61:00:03")],
)
def test_cue_timestamps(frames: int, text: str) -> None:
    assert timestamp(frames) == text


MARK_S = 2.0
"""Each test song has an impulse this far into it (a whole number of samples at 44.1 and
48 kHz), over a quiet tone that gives the song a loudness."""


def impulse_album(folder: Path, album_rate: int) -> Path:
    for index in range(3):
        stems = folder / f"song{index + 1}" / "stems"
        tone = sine(220.0 * (index + 1), 4.0, amplitude=0.05)
        click = np.zeros((1, tone.shape[1]))
        click[0, round(MARK_S * RATE)] = 0.9
        write_stem(stems / "tone.wav", tone)
        write_stem(stems / "click.wav", click)
        (folder / f"song{index + 1}" / "session.yaml").write_text(
            f"version: 1\ntitle: Click {index + 1}\nstems: stems\n"
            "tracks: {tone: {stem: tone.wav}, click: {stem: click.wav}}\n"
            "mastering: {target: {loudness: -20, true_peak: -1}}\n"
        )
    album = folder / "album.yaml"
    album.write_text(
        "version: 1\ntitle: Clicks\nartist: Metronome\nupc: '012345678905'\nsongs:\n"
        "  - {session: song1/session.yaml, gap_before: 0.5 s, crossfade: 0.5 s}\n"
        "  - {session: song2/session.yaml, isrc: GBAYE2600002}\n"
        "  - {session: song3/session.yaml, gap_before: 1.3 s}\n"
        "loudness: {mode: track, target: {loudness: -18, true_peak: -1}}\n"
        f"deliver: {{album: {{format: flac, bit_depth: 24, sample_rate: {album_rate}}}}}\n"
    )
    return album


@pytest.mark.parametrize("album_rate", [48_000, 44_100])
def test_cue_sheet_matches_the_album_file_to_the_sample(tmp_path: Path, album_rate: int) -> None:
    """The CUE sheet's INDEX 01 (frames) and SAMPLE_OFFSET (samples) name the same instant,
    and each song's planted impulse is found in the album file exactly MARK_S after it, at
    the render rate and after conversion to 44.1 kHz."""
    result = render_album(load_album(impulse_album(tmp_path, album_rate)), jobs=1)
    assert result.album_file is not None
    cue = result.album_file.cue.read_text()
    offsets = [int(n) for n in re.findall(r"REM SAMPLE_OFFSET (\d+)", cue)]
    starts = re.findall(r"INDEX 01 (\d\d):(\d\d):(\d\d)", cue)
    assert len(offsets) == len(starts) == 3
    for offset, (minutes, seconds, frame) in zip(offsets, starts, strict=True):
        frames = (int(minutes) * 60 + int(seconds)) * 75 + int(frame)
        assert frames * album_rate == offset * 75
    x, rate = sf.read(result.album_file.written.path, always_2d=True)
    assert rate == album_rate
    for offset in offsets:
        expected = offset + round(MARK_S * rate)
        window = np.abs(x[expected - rate // 4 : expected + rate // 4, 0])
        assert expected - rate // 4 + int(np.argmax(window)) == expected
    assert 'FILE "Clicks.flac" WAVE' in cue and "CATALOG 0012345678905" in cue
    assert "    ISRC GBAYE2600002" in cue and cue.count("INDEX 00") == 2


def test_a_crossfade_longer_than_a_song_is_refused() -> None:
    with pytest.raises(SequenceError) as raised:
        place([RATE, 3 * RATE], [0.0, 0.0], [2.0, 0.0], RATE)
    assert raised.value.song == 0
    assert str(raised.value).startswith("a crossfade of 2 s overlaps 2.000 s, more than song 1")


def test_a_crossfade_over_the_ceiling_is_limited_there_alone(tmp_path: Path) -> None:
    """Two songs of one 480 Hz sine, crossfaded in phase (8 s songs and a 1 s fade: both are
    whole periods and whole frames), sum to 3 dB over the ceiling in the middle of the
    fade: the album file is limited again there and holds -1 dBTP as written, and away
    from the fade (beyond the limiter's lookahead before it and its release after it) its
    samples are the track files' samples exactly (float WAVs: no dither to differ)."""
    write_stem(tmp_path / "stems" / "tone.wav", sine(480.0, 8.0, amplitude=0.5))
    (tmp_path / "song.yaml").write_text(
        "version: 1\ntitle: Tone\nstems: stems\ntracks: {tone: {stem: tone.wav}}\n"
        "mastering: {target: {loudness: -3, true_peak: -1}}\n"
    )
    (tmp_path / "album.yaml").write_text(
        "version: 1\ntitle: Fade\nsongs:\n"
        "  - {session: song.yaml, crossfade: 1 s}\n  - {session: song.yaml, title: Again}\n"
        "loudness: {mode: track, target: {loudness: -3, true_peak: -1, max_limiting: 20 dB}}\n"
        "deliver:\n  tracks: {format: wav, bit_depth: float}\n"
        "  album: {format: wav, bit_depth: float}\n"
    )
    result = render_album(load_album(tmp_path / "album.yaml"), jobs=1)
    assert result.album_file is not None
    written = result.album_file.written
    assert written.corrections[0].startswith("limited again at 48000 Hz: sequencing (crossfades")
    assert max(written.figures.loudness.true_peak_dbtp) <= -1.0
    album, _ = sf.read(written.path, always_2d=True)
    first, second = (sf.read(s.files[0].path, always_2d=True)[0] for s in result.songs)
    start = result.album_file.placements[1].index_01
    assert start == 7 * RATE
    assert np.array_equal(album[: start - RATE // 10], first[: start - RATE // 10])
    tail = 2 * RATE  # the last 2 s: 5 s after the fade, the release has ended exactly
    assert np.array_equal(album[start + second.shape[0] - tail :], second[-tail:])

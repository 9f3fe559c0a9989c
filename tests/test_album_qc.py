"""Album QC: each song's tonal balance against the album average, measured as an FFT of the
signal independently reads it; the song that stands out is the one flagged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from render.album_qc import SongFigures, assess_album
from render.analysis import analyse
from render.qc import FileReport
from render.session.model import Target

RATE = 48_000
CENTRES_HZ = 1000.0 * 10.0 ** (0.3 * np.arange(-5, 5))  # base-10 octaves, IEC 61260-1


def octave_levels_db(x: np.ndarray) -> np.ndarray:
    """Each octave band's share of the power of all bands, dB, from one FFT of ``x``."""
    power = np.sum(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)
    frequency = np.fft.rfftfreq(x.shape[1], 1 / RATE)
    bands = np.array(
        [power[(frequency >= c / 10**0.15) & (frequency < c * 10**0.15)].sum() for c in CENTRES_HZ]
    )
    return 10 * np.log10(bands / bands.sum())


def songs(rng: np.random.Generator) -> list[np.ndarray]:
    """Three stretches of the same pink-ish noise; the third with its 1 kHz octave lifted
    about 12 dB, the second 6 dB louder overall (loudness must not count as tonal difference)."""
    sos = signal.butter(1, 500, fs=RATE, output="sos")  # a gentle tilt, like music
    noise = [signal.sosfilt(sos, rng.standard_normal((2, 4 * RATE))) for _ in range(3)]
    band = signal.butter(4, [707, 1414], btype="bandpass", fs=RATE, output="sos")
    noise[2] = noise[2] + 3.0 * signal.sosfilt(band, noise[2])
    noise[1] = noise[1] * 2.0
    return [0.1 * x for x in noise]


def test_tonal_deviation_reads_as_an_fft_and_flags_the_song_that_stands_out(
    rng: np.random.Generator,
) -> None:
    signals = songs(rng)
    figures = [
        SongFigures(
            number,
            f"Song {number}",
            Path("s.yaml"),
            -20.0,
            FileReport("master", Path(f"{number}.wav"), "WAV", analyse(x, RATE), (), ()),
            None,
            (),
        )
        for number, x in enumerate(signals, start=1)
    ]
    report = assess_album("A", Path("album.yaml"), "album", Target(loudness_lufs=-14), figures)
    reference = np.array([octave_levels_db(x) for x in signals])
    expected = reference - reference.mean(axis=0)
    for song, deviation in zip(report.songs, expected, strict=True):
        # Bands 63 Hz - 8 kHz, those judged: Welch's averaged PSD and one FFT agree to 0.2 dB.
        assert song.deviation_db[1:9] == pytest.approx(deviation[1:9], abs=0.2)
    assert [song.tonal.status for song in report.songs] == ["pass", "pass", "warn"]
    assert report.songs[2].tonal.detail == "the song stands out at 1 kHz"
    assert report.songs[2].deviation_db[5] > 3.0
    assert report.spread_lu == pytest.approx(20 * np.log10(2.0), abs=0.3)

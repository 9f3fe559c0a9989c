"""QC figures against closed forms, independent references (np.corrcoef, scipy's Welch, the
loudness of an explicitly formed mono fold) and planted faults found at their times."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

import render.analysis as analysis_module
from render.analysis import (
    CLIP_LEVEL,
    OCTAVE_BANDS_HZ,
    SPECTRUM_POINTS,
    ClipRun,
    analyse,
)
from render.dsp.levels import db_to_gain
from render.measure import integrated_loudness_lufs, measure
from tests.conftest import SAMPLE_RATE

SAMPLE_RATES = [44_100, 48_000, 96_000]
UNCORRELATED_FOLD_LU = 10.0 * math.log10(0.5)
"""The mono fold of two equal, uncorrelated channels (or of one lone channel) keeps half the
power: -3.0103 LU."""


def tone(
    frequency_hz: float,
    seconds: float,
    amplitude: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """A sine as a 1-D array of ``round(seconds * sample_rate)`` samples."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return amplitude * np.sin(2.0 * np.pi * frequency_hz * t)


def music(rng: np.random.Generator, seconds: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Music-like mono (1-D): a plucked 110 Hz note with harmonics every 0.5 s, over noise."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.exp(-6.0 * (t % 0.5))
    notes = sum(np.sin(2 * np.pi * 110.0 * h * t) / h for h in (1, 2, 3, 5))
    return 0.3 * envelope * notes + 0.03 * rng.standard_normal(n)


def pink(rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Stereo pink noise with an exact 1/f power spectrum (random phases, |X|^2 = 1/f), so
    every octave holds the same power, at about -20 dBFS RMS."""
    n = round(seconds * sample_rate)
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum = np.exp(2j * np.pi * rng.random((2, f.size)))
    spectrum[:, 0] = 0.0
    spectrum[:, 1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spectrum, n)
    return x * (0.1 / x.std())


# --- DC, PLR --------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_dc_offset_is_the_offset_added_to_whole_periods(sample_rate: int) -> None:
    # 1e-9: a sine over a whole number of periods sums to 0 up to rounding (~1e-12 here).
    offsets = (0.01, -0.003)
    x = np.vstack([tone(1000.0, 1.0, 0.5, sample_rate) + v for v in offsets])
    assert analyse(x, sample_rate).dc_offset == pytest.approx(offsets, abs=1e-9)


@pytest.mark.parametrize(("channels", "expected_plr_db"), [(1, 10 * math.log10(2)), (2, 0.0)])
def test_plr_of_a_997_hz_sine(channels: int, expected_plr_db: float) -> None:
    """At 997 Hz the -0.691 dB of BS.1770-4 eq. (2) cancels the K-weighting, so a sine of
    amplitude A in each of 2 channels reads 20 log10 A LUFS (3.01 dB less in one channel),
    and its true peak is A: PLR 0 dB in stereo, 3.01 dB in mono."""
    x = np.tile(tone(997.0, 2.0, db_to_gain(-10.0)), (channels, 1))
    figures = analyse(x, SAMPLE_RATE)
    loudness = figures.loudness
    assert figures.plr_db == max(loudness.true_peak_dbtp) - loudness.integrated_lufs
    # 0.01 dB: the 4x interpolator reads a 997 Hz peak 0.004 dB high (passband ripple).
    assert figures.plr_db == pytest.approx(expected_plr_db, abs=0.01)


# --- correlation and mono fold --------------------------------------------------------------


def window_correlations(x: np.ndarray, sample_rate: int) -> list[float]:
    """Reference: np.corrcoef of every complete 400 ms window, 100 ms hop, both channels
    above -60 dBFS RMS about their mean."""
    hop, size = sample_rate // 10, 4 * sample_rate // 10
    result = []
    for start in range(0, x.shape[1] - size + 1, hop):
        window = x[:, start : start + size]
        if (window.std(axis=1) > db_to_gain(-60.0)).all():
            result.append(float(np.corrcoef(window)[0, 1]))
    return result


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_identical_channels_correlate_and_fold_without_loss(
    rng: np.random.Generator, sample_rate: int
) -> None:
    x = np.tile(music(rng, 3.0, sample_rate), (2, 1))
    figures = analyse(x, sample_rate)
    # 1e-12: the same sums in both channels; only the square root rounds.
    assert figures.correlation == pytest.approx(1.0, abs=1e-12)
    assert figures.min_correlation_400ms == pytest.approx(1.0, abs=1e-12)
    # 1e-9: (L+R)/sqrt(2) squared is 2 L^2 up to one rounding of sqrt(1/2).
    assert figures.mono_fold_drop_lu == pytest.approx(0.0, abs=1e-9)


def test_opposite_channels_cancel_in_the_fold(rng: np.random.Generator) -> None:
    left = music(rng, 3.0)
    figures = analyse(np.vstack([left, -left]), SAMPLE_RATE)
    assert figures.correlation == pytest.approx(-1.0, abs=1e-12)
    assert figures.min_correlation_400ms == pytest.approx(-1.0, abs=1e-12)
    assert figures.mono_fold_drop_lu == -math.inf


def test_independent_noise_is_uncorrelated_and_folds_3_db_down(rng: np.random.Generator) -> None:
    x = 0.1 * rng.standard_normal((2, 5 * SAMPLE_RATE))
    figures = analyse(x, SAMPLE_RATE)
    # 0.01: the correlation of 240000 independent pairs has a standard deviation of 0.002.
    assert abs(figures.correlation) < 0.01
    # 0.05 LU: the fold's power is (1 + r) / 2 of the stereo power, r within +-0.01.
    assert figures.mono_fold_drop_lu == pytest.approx(UNCORRELATED_FOLD_LU, abs=0.05)
    # Against np.corrcoef, whole and window by window; the tolerances leave room for the
    # order of the sums only (1e-9 for a window: 4 ticks of one-pass moments).
    assert figures.correlation == pytest.approx(np.corrcoef(x)[0, 1], abs=1e-12)
    assert figures.min_correlation_400ms == pytest.approx(
        min(window_correlations(x, SAMPLE_RATE)), abs=1e-9
    )


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_a_polarity_inverted_section_is_caught_by_the_windows(
    rng: np.random.Generator, sample_rate: int
) -> None:
    left = music(rng, 10.0, sample_rate)
    right = left.copy()
    right[4 * sample_rate : 6 * sample_rate] *= -1.0
    x = np.vstack([left, right])
    figures = analyse(x, sample_rate)
    assert figures.min_correlation_400ms == pytest.approx(-1.0, abs=1e-12)
    assert figures.correlation > 0.0
    assert figures.correlation == pytest.approx(np.corrcoef(x)[0, 1], abs=1e-12)
    assert figures.min_correlation_400ms == pytest.approx(
        min(window_correlations(x, sample_rate)), abs=1e-9
    )


def test_mono_fold_equals_the_loudness_of_the_fold_formed(rng: np.random.Generator) -> None:
    """Against the definition: (L+R)/2 placed on both channels, measured as stereo."""
    left = music(rng, 4.0)
    x = np.vstack([left, 0.5 * left + 0.05 * rng.standard_normal(left.size)])
    fold = (x[0] + x[1]) / 2.0
    expected = integrated_loudness_lufs(np.vstack([fold, fold]), SAMPLE_RATE) - (
        integrated_loudness_lufs(x, SAMPLE_RATE)
    )
    # 1e-9 LU: the same blocks and gates; the two routes differ in rounding only.
    assert analyse(x, SAMPLE_RATE).mono_fold_drop_lu == pytest.approx(expected, abs=1e-9)


def test_a_silent_channel_has_no_correlation(rng: np.random.Generator) -> None:
    x = np.vstack([music(rng, 3.0), np.zeros(3 * SAMPLE_RATE)])
    figures = analyse(x, SAMPLE_RATE)
    assert figures.correlation == 0.0
    assert figures.min_correlation_400ms == 1.0  # no window has signal in both channels
    # A lone channel folds to half its power: exactly 10 log10(1/2), up to rounding.
    assert figures.mono_fold_drop_lu == pytest.approx(UNCORRELATED_FOLD_LU, abs=1e-9)


def test_mono_input_is_its_own_right_channel(rng: np.random.Generator) -> None:
    figures = analyse(music(rng, 2.0)[np.newaxis], SAMPLE_RATE)
    assert figures.correlation == pytest.approx(1.0, abs=1e-12)
    assert figures.min_correlation_400ms == pytest.approx(1.0, abs=1e-12)
    assert figures.mono_fold_drop_lu == 0.0
    assert len(figures.dc_offset) == 1


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("seconds", [0.0, 3.0])
def test_silence_has_no_loudness_figures(channels: int, seconds: float) -> None:
    figures = analyse(np.zeros((channels, round(seconds * SAMPLE_RATE))), SAMPLE_RATE)
    assert math.isnan(figures.plr_db)
    if channels == 1:
        assert figures.mono_fold_drop_lu == 0.0  # a mono signal is its own fold
    else:
        assert math.isnan(figures.mono_fold_drop_lu)
    assert (figures.correlation, figures.min_correlation_400ms) == (1.0, 1.0)
    assert figures.leading_silence_s == figures.trailing_silence_s == seconds
    assert figures.octave_levels_db == (-math.inf,) * len(OCTAVE_BANDS_HZ)
    assert (figures.spectrum_db == -math.inf).all()
    assert figures.clipped_runs == figures.true_peak_overs == ()


# --- clipping -------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [0, 1])
def test_a_planted_clip_is_found_on_its_channel(rng: np.random.Generator, channel: int) -> None:
    x = np.vstack([music(rng, 20.0), music(rng, 20.0)])
    start = 12 * SAMPLE_RATE
    x[channel, start : start + SAMPLE_RATE // 100] = 1.0  # 10 ms: 480 samples
    assert analyse(x, SAMPLE_RATE).clipped_runs == (ClipRun(channel, 12.0, 480),)


@pytest.mark.parametrize(
    ("values", "expected_samples"),
    [
        ([1.0, 1.0], None),  # a peak touching full scale twice is not a clip
        ([1.0, 1.0, 1.0], 3),
        ([-1.0, -1.0, -1.0], 3),
        ([CLIP_LEVEL] * 3, 3),  # the largest 16-bit code is full scale
        ([CLIP_LEVEL - 2.0**-16] * 3, None),  # half a 16-bit step below it is not
        ([1.3] * 10, 10),  # float audio over full scale
    ],
)
def test_clip_runs_need_three_samples_at_full_scale(
    values: list[float], expected_samples: int | None
) -> None:
    x = np.vstack([tone(440.0, 1.0), tone(440.0, 1.0)])
    x[0, 24_000 : 24_000 + len(values)] = values
    runs = analyse(x, SAMPLE_RATE).clipped_runs
    assert runs == (() if expected_samples is None else (ClipRun(0, 0.5, expected_samples),))


def test_clip_runs_are_listed_in_time_order() -> None:
    x = np.vstack([tone(440.0, 1.0), tone(440.0, 1.0)])
    x[0, 36_000:36_010] = 1.0
    x[1, 12_000:12_005] = -1.0
    x[0, 100:104] = 1.0
    assert analyse(x, SAMPLE_RATE).clipped_runs == (
        ClipRun(0, 100 / SAMPLE_RATE, 4),
        ClipRun(1, 0.25, 5),
        ClipRun(0, 0.75, 10),
    )


# --- true-peak overs ------------------------------------------------------------------------

BURST_DBTP = -0.5


def with_bursts(bursts_s: list[tuple[float, float]]) -> np.ndarray:
    """4 s: a -20 dBFS 1 kHz tone on the left; on the right, fs/4 sines at 45 degrees of
    amplitude -0.5 dB in ``bursts_s`` (start, end), 2 ms raised-cosine ramps (an abrupt edge
    rings 0.1 dB over). Their samples sit at +-A/sqrt(2), -3.51 dBFS, and their true peak A,
    -0.5 dBTP, falls half-way between samples, where the 4x interpolator reads it."""
    x = np.vstack([tone(1000.0, 4.0, 0.1), np.zeros(4 * SAMPLE_RATE)])
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(96) / 96)
    for start_s, end_s in bursts_s:
        start, end = round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE)
        envelope = np.concatenate([ramp, np.ones(end - start - 2 * ramp.size), ramp[::-1]])
        k = np.arange(end - start)
        x[1, start:end] = db_to_gain(BURST_DBTP) * envelope * np.sin(np.pi / 2 * k + np.pi / 4)
    return x


def test_an_inter_sample_over_is_found_with_its_times_and_peak() -> None:
    x = with_bursts([(1.5, 2.0)])
    figures = analyse(x, SAMPLE_RATE, ceiling_dbtp=-1.0)
    assert max(figures.loudness.sample_peak_dbfs) < -3.0  # invisible to a sample-peak meter
    (over,) = figures.true_peak_overs
    assert over.channel == 1
    # 10 ms: the over starts and ends within the 2 ms ramps.
    assert over.start_s == pytest.approx(1.5, abs=0.01)
    assert over.end_s == pytest.approx(2.0, abs=0.01)
    # 0.1 dB: the interpolator's ripple at fs/4 (it reads 0.015 dB high).
    assert over.true_peak_dbtp == pytest.approx(BURST_DBTP, abs=0.1)
    assert over.true_peak_dbtp == max(figures.loudness.true_peak_dbtp)


@pytest.mark.parametrize("ceiling_dbtp", [None, 0.0])
def test_no_overs_without_a_ceiling_or_below_it(ceiling_dbtp: float | None) -> None:
    assert analyse(with_bursts([(1.5, 2.0)]), SAMPLE_RATE, ceiling_dbtp).true_peak_overs == ()


@pytest.mark.parametrize(("gap_s", "stretches"), [(0.005, 1), (0.030, 2)])
def test_overs_closer_than_10_ms_merge(gap_s: float, stretches: int) -> None:
    """Two bursts ``gap_s`` apart (ramps included: 4 ms more between their overs)."""
    x = with_bursts([(1.0, 1.2), (1.2 + gap_s, 1.4)])
    overs = analyse(x, SAMPLE_RATE, ceiling_dbtp=-1.0).true_peak_overs
    assert len(overs) == stretches
    assert overs[0].start_s == pytest.approx(1.0, abs=0.01)
    assert overs[-1].end_s == pytest.approx(1.4, abs=0.01)


# --- silence --------------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_silence_at_the_ends_ignores_dither(
    rng: np.random.Generator, sample_rate: int, channels: int
) -> None:
    lead, body, trail = (round(s * sample_rate) for s in (2.0, 3.0, 1.5))
    x = 0.05 * rng.standard_normal((channels, lead + body + trail))
    x[:, :lead] = x[:, lead + body :] = 0.0
    x += db_to_gain(-90.0) * rng.standard_normal(x.shape)  # dither everywhere
    x[0, lead] = x[-1, lead + body - 1] = 0.1  # the music's first and last samples
    figures = analyse(x, sample_rate)
    # Exact (1 ms was asked): the first and last samples above -60 dBFS are planted.
    assert figures.leading_silence_s == lead / sample_rate
    assert figures.trailing_silence_s == trail / sample_rate


# --- spectra --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3 * SAMPLE_RATE + 123, 5_001, 1])
def test_mean_psd_is_scipy_welch(rng: np.random.Generator, n: int) -> None:
    x = 0.1 * rng.standard_normal((2, n)) + 0.01
    dc = x.mean(axis=1)
    bin_hz, psd = analysis_module._mean_psd(x, SAMPLE_RATE, dc)
    segment = min(8192, n)
    f, expected = scipy.signal.welch(
        x - dc[:, np.newaxis], SAMPLE_RATE, "hann", segment, detrend=False
    )
    assert bin_hz == pytest.approx(f[1] if f.size > 1 else SAMPLE_RATE, rel=1e-12)
    # 1e-12 of the peak: the same sums in a different order.
    np.testing.assert_allclose(psd, expected.mean(axis=0), rtol=0, atol=1e-12 * expected.max())


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_a_1_khz_sine_lies_in_the_1_khz_octave(sample_rate: int) -> None:
    figures = analyse(tone(1000.0, 2.0, 0.5, sample_rate)[np.newaxis], sample_rate)
    levels = dict(zip(figures.octave_bands_hz, figures.octave_levels_db, strict=True))
    # 0.01 dB: all but the Hann window's far sidelobes (< -100 dB) fall in the band.
    assert levels.pop(1000.0) == pytest.approx(0.0, abs=0.01)
    assert max(levels.values()) < -40.0


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_pink_noise_has_equal_octaves(rng: np.random.Generator, sample_rate: int) -> None:
    levels = np.array(analyse(pink(rng, 8.0, sample_rate), sample_rate).octave_levels_db)
    # Shares of the total: exactly 1 in power, whatever the signal.
    assert np.sum(10.0 ** (levels / 10.0)) == pytest.approx(1.0, abs=1e-12)
    # 10 equal bands: -10 dB each. 0.5 dB: the Welch estimate of the 31.5 Hz band (4 bins)
    # scatters by up to 0.2 dB; at 44.1 kHz the 16 kHz band loses its top 1.5 % above Nyquist.
    np.testing.assert_allclose(levels, -10.0, rtol=0, atol=0.5)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("band", [0, 5, 6])  # the edges above 31.5 Hz, 1 kHz and 2 kHz
def test_a_sine_on_a_band_edge_splits_between_the_bands(sample_rate: int, band: int) -> None:
    """The edge between base-10 octaves k and k + 1 is 1000 * 10^(0.3 k + 0.15) Hz
    (IEC 61260-1): a sine there puts half its power (-3.01 dB) in each band."""
    k = band - 5
    edge_hz = 1000.0 * 10.0 ** (0.3 * k + 0.15)
    figures = analyse(tone(edge_hz, 2.0, 0.5, sample_rate)[np.newaxis], sample_rate)
    levels = np.array(figures.octave_levels_db[band : band + 2])
    # 0.3 dB: the Hann main lobe (4 bins) is split on the bin grid, not at the exact edge;
    # an edge half a bin off moves a quarter of the power (-1.8 and +1.2 dB).
    np.testing.assert_allclose(levels, UNCORRELATED_FOLD_LU, rtol=0, atol=0.3)


def test_octave_bands_above_nyquist_are_left_out() -> None:
    figures = analyse(tone(1000.0, 1.0)[np.newaxis], 22_050)
    assert figures.octave_bands_hz == OCTAVE_BANDS_HZ[:-1]
    assert len(figures.octave_levels_db) == len(OCTAVE_BANDS_HZ) - 1


@pytest.mark.parametrize("sample_rate", [22_050, *SAMPLE_RATES])
@pytest.mark.parametrize("channels", [1, 2])
def test_a_full_scale_sine_reads_0_db_at_its_frequency(sample_rate: int, channels: int) -> None:
    figures = analyse(np.tile(tone(1000.0, 2.0, 1.0, sample_rate), (channels, 1)), sample_rate)
    f, level = figures.spectrum_hz, figures.spectrum_db
    peak = int(np.argmax(level))
    # 0.01 dB: the 1/6 octave around the peak holds the whole Hann main lobe.
    assert level[peak] == pytest.approx(0.0, abs=0.01)
    assert abs(math.log2(f[peak] / 1000.0)) < 1.0 / 12.0  # the sine lies in the peak's band
    assert f.size == level.size == SPECTRUM_POINTS
    assert (f[0], f[-1]) == pytest.approx((20.0, min(20_000.0, sample_rate / 2)), rel=1e-12)
    np.testing.assert_allclose(np.diff(np.log(f)), math.log(f[1] / f[0]), rtol=1e-9)
    for array in (f, level):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0


def test_white_noise_spectrum_is_its_power_per_sixth_octave(rng: np.random.Generator) -> None:
    """White noise of variance s^2 has s^2 / (fs/2) per Hz: a 1/6 octave around f holds
    s^2 f (2^(1/12) - 2^(-1/12)) / (fs/2), read relative to a full-scale sine's 1/2."""
    x = 0.1 * rng.standard_normal((2, 4 * SAMPLE_RATE))
    figures = analyse(x, SAMPLE_RATE)
    f = figures.spectrum_hz
    expected = 10 * np.log10(0.01 * f * (2 ** (1 / 12) - 2 ** (-1 / 12)) / (SAMPLE_RATE / 2) / 0.5)
    high = f >= 1000.0
    # 0.5 dB above 1 kHz, where each band averages 20 bins or more over 46 segments per
    # channel (the estimate's scatter is ~0.1 dB); below, fewer bins scatter more.
    np.testing.assert_allclose(figures.spectrum_db[high], expected[high], rtol=0, atol=0.5)


@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_is_measured_once_on_the_same_samples(
    rng: np.random.Generator, channels: int
) -> None:
    x = np.vstack([music(rng, 4.0) for _ in range(channels)])
    figures, expected = analyse(x, SAMPLE_RATE).loudness, measure(x, SAMPLE_RATE)
    assert figures.integrated_lufs == expected.integrated_lufs
    assert figures.loudness_range_lu == expected.loudness_range_lu
    assert figures.true_peak_dbtp == expected.true_peak_dbtp
    np.testing.assert_array_equal(figures.short_term_lufs, expected.short_term_lufs)

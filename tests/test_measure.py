"""The loudness meter against the standards' own test signals and two independent meters.

Every signal is synthesised here from its published description: EBU Tech 3341 (2023) Table 1
and EBU Tech 3342 (2023) Table 1 ("minimum requirements test signals", with their expected
readings and tolerances), the coefficient tables of ITU-R BS.1770-4 §2.1, and seeded noise
for the comparisons with ffmpeg's ``ebur128`` filter and pyloudnorm.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import scipy.signal

import render.measure as measure_module
from render.dsp.levels import db_to_gain, fade_in_gains, gain_to_db
from render.dsp.true_peak import CHUNK_SAMPLES, true_peaks
from render.measure import (
    integrated_loudness_lufs,
    k_weighting_sos,
    measure,
    measure_with_fold,
    sample_peak_dbfs,
    true_peak_dbtp,
)
from tests.conftest import write_stem
from tests.ebur128 import ffmpeg_ebur128

RATE = 48_000
SAMPLE_RATES = (44_100, 48_000, 96_000)

Segment = tuple[float, float | None]
"""(seconds, per-channel peak level in dBFS, or None for silence)."""


def tones(segments: Sequence[Segment], sample_rate: int = RATE, channels: int = 2) -> np.ndarray:
    """The Tech 3341/3342 test tone: a 1 kHz sine applied in phase to every channel, its level
    stepping through ``segments``; the phase runs on through the steps and silences."""
    parts, start = [], 0
    for seconds, level_dbfs in segments:
        n = round(seconds * sample_rate)
        t = np.arange(start, start + n) / sample_rate
        gain = 0.0 if level_dbfs is None else db_to_gain(level_dbfs)
        parts.append(gain * np.sin(2.0 * np.pi * 1000.0 * t))
        start += n
    return np.tile(np.concatenate(parts), (channels, 1))


def tapered(x: np.ndarray, fade_s: float, sample_rate: int = RATE) -> np.ndarray:
    """``x`` with linear fades in and out of ``fade_s`` seconds (Tech 3341 cases 15-23)."""
    gains = fade_in_gains(round(fade_s * sample_rate), "linear")
    y = x.copy()
    y[:, : gains.size] *= gains
    y[:, -gains.size :] *= gains[::-1]
    return y


# --- K-weighting --------------------------------------------------------------------------

# ITU-R BS.1770-4 Table 1 (the shelf) and Table 2 (the RLB high-pass), for 48 kHz.
BS1770_TABLES = np.array(
    [
        [
            1.53512485958697,
            -2.69169618940638,
            1.19839281085285,
            1.0,
            -1.69065929318241,
            0.73248077421585,
        ],
        [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621],
    ]
)

# Brecht De Man's analog prototype, as printed in pyloudnorm (meter.py, filter_class "DeMan",
# and iirfilter.py): shelf f0, gain, Q and the exponent giving its mid gain; high-pass f0, Q.
DEMAN_SHELF = (1681.9744509555319, 3.99984385397, 0.7071752369554193, 0.499666774155)
DEMAN_HIGHPASS = (38.13547087613982, 0.5003270373253953)


def test_k_weighting_reproduces_the_bs1770_tables_at_48khz() -> None:
    # The tables print 14 decimals (rounding error <= 5e-15); the design reaches them to
    # double rounding (~1e-15), so 1e-14 leaves room for nothing but the printing.
    np.testing.assert_allclose(k_weighting_sos(48_000), BS1770_TABLES, rtol=0, atol=1e-14)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_k_weighting_is_the_prewarped_bilinear_transform_of_the_prototype(
    sample_rate: int,
) -> None:
    """The bilinear transform maps the analog response at tan(pi f/fs)/tan(pi f0/fs) * f0
    exactly onto the digital response at f, each section prewarped to its own f0; the
    high-pass additionally carries the gain 1 + K/Q + K^2 of Table 2's unnormalised b."""
    f = np.geomspace(10.0, 0.45 * sample_rate, 400)
    sections = k_weighting_sos(sample_rate)
    shelf_hz, gain_db, shelf_q, exponent = DEMAN_SHELF
    highpass_hz, highpass_q = DEMAN_HIGHPASS

    def warped(f0_hz: float) -> np.ndarray:  # the analog s / w0 that lands on f
        return 1j * np.tan(np.pi * f / sample_rate) / math.tan(math.pi * f0_hz / sample_rate)

    high = db_to_gain(gain_db)
    p = warped(shelf_hz)
    shelf = (high * p * p + high**exponent * p / shelf_q + 1) / (p * p + p / shelf_q + 1)
    p = warped(highpass_hz)
    big_k = math.tan(math.pi * highpass_hz / sample_rate)
    highpass = (1 + big_k / highpass_q + big_k**2) * p * p / (p * p + p / highpass_q + 1)
    for section, expected in zip(sections, (shelf, highpass), strict=True):
        _, response = scipy.signal.sosfreqz(section[np.newaxis], worN=f, fs=sample_rate)
        # 1e-9: the prototype constants above are pyloudnorm's, which differ from the
        # module's (libebur128's) in the 13th digit; anything else is rounding.
        np.testing.assert_allclose(response, expected, rtol=1e-9)


@pytest.mark.parametrize("sample_rate", [44_100, 96_000, 192_000])
def test_k_weighting_keeps_the_48khz_response_at_other_rates(sample_rate: int) -> None:
    """BS.1770-4 §2.1: other rates must give the response of the 48 kHz filter. Checked from
    10 Hz to 17.6 kHz (0.4 x 44.1 kHz, below which every rate here is free of Nyquist
    effects). 0.05 dB: the design differs from the 48 kHz filter only by the high-pass gain
    1 + K/Q + K^2 (+0.043 dB at 48 kHz, tending to 0 dB as the rate rises) and by the
    shelf's frequency warping around 2.7 kHz, which stay under 0.045 dB together from
    44.1 kHz to 192 kHz (at 8 kHz they would reach 0.5 dB)."""
    f = np.geomspace(10.0, 17_640.0, 600)
    _, reference = scipy.signal.sosfreqz(BS1770_TABLES, worN=f, fs=48_000)
    _, response = scipy.signal.sosfreqz(k_weighting_sos(sample_rate), worN=f, fs=sample_rate)
    deviation_db = 20 * np.log10(np.abs(response)) - 20 * np.log10(np.abs(reference))
    assert np.abs(deviation_db).max() < 0.05


# --- Loudness: closed forms and the standards' test signals -------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_steady_sine_reads_its_closed_form_loudness(sample_rate: int, channels: int) -> None:
    """BS.1770-4 eq. (2): a sine of amplitude A and frequency f on each of ``channels``
    channels (weight 1) reads -0.691 + 10 log10(channels A^2 / 2 |K(f)|^2), whatever the
    window. 1e-3 LU: only the filter's onset transient (in the first block) departs from it."""
    x = tones([(4.0, -20.0)], sample_rate, channels)
    _, k_response = scipy.signal.sosfreqz(
        k_weighting_sos(sample_rate), worN=[1000.0], fs=sample_rate
    )
    expected = -0.691 + 10 * math.log10(
        channels * db_to_gain(-20.0) ** 2 / 2 * abs(k_response[0]) ** 2
    )
    figures = measure(x, sample_rate)
    assert figures.momentary_lufs.shape == (37,)  # windows ending at 0.4, 0.5, ..., 4.0 s
    assert figures.short_term_lufs.shape == (11,)  # windows ending at 3.0, 3.1, ..., 4.0 s
    for reading in (
        *figures.momentary_lufs,
        *figures.short_term_lufs,
        figures.integrated_lufs,
        figures.max_momentary_lufs,
        figures.max_short_term_lufs,
    ):
        assert reading == pytest.approx(expected, abs=1e-3)


TECH_3341_INTEGRATED = {
    # 1: stereo 1 kHz sine, -23.0 dBFS per-channel peak, in phase on both channels, 20 s.
    "case 1": ([(20.0, -23.0)], -23.0),
    # 2: as #1 at -33.0 dBFS.
    "case 2": ([(20.0, -33.0)], -33.0),
    # 3: 10 s at -36.0 dBFS; 60 s at -23.0 dBFS; 10 s at -36.0 dBFS (relative gate).
    "case 3": ([(10.0, -36.0), (60.0, -23.0), (10.0, -36.0)], -23.0),
    # 4: 10 s at -72, 10 s at -36, 60 s at -23, 10 s at -36, 10 s at -72 dBFS (absolute gate).
    "case 4": (
        [(10.0, -72.0), (10.0, -36.0), (60.0, -23.0), (10.0, -36.0), (10.0, -72.0)],
        -23.0,
    ),
    # 5: 20 s at -26.0 dBFS; 20.1 s at -20.0 dBFS; 20 s at -26.0 dBFS.
    "case 5": ([(20.0, -26.0), (20.1, -20.0), (20.0, -26.0)], -23.0),
}


@pytest.mark.parametrize(
    ("segments", "expected_lufs"), TECH_3341_INTEGRATED.values(), ids=TECH_3341_INTEGRATED
)
def test_tech3341_integrated_loudness(segments: list[Segment], expected_lufs: float) -> None:
    # Tech 3341 Table 1: I = expected +-0.1 LUFS (cases 1 and 2: M and S too).
    figures = measure(tones(segments), RATE)
    assert figures.integrated_lufs == pytest.approx(expected_lufs, abs=0.1)
    if len(segments) == 1:
        assert np.all(np.abs(figures.momentary_lufs - expected_lufs) <= 0.1)
        assert np.all(np.abs(figures.short_term_lufs - expected_lufs) <= 0.1)


def test_tech3341_case_9_short_term_is_constant_after_3s() -> None:
    # Case 9: (1.34 s at -20.0 dBFS; 1.66 s at -30.0 dBFS) repeated 5 times:
    # S = -23.0 +-0.1 LUFS, constant after 3 s (every 3 s window holds one period).
    short_term = measure(tones([(1.34, -20.0), (1.66, -30.0)] * 5), RATE).short_term_lufs
    assert short_term.size == 121
    assert np.all(np.abs(short_term + 23.0) <= 0.1)


def test_tech3341_case_12_momentary_is_constant_after_1s() -> None:
    # Case 12: (0.18 s at -20.0 dBFS; 0.22 s at -30.0 dBFS) repeated 25 times:
    # M = -23.0 +-0.1 LUFS, constant after 1 s; momentary_lufs[k] ends at 0.4 + 0.1 k s.
    momentary = measure(tones([(0.18, -20.0), (0.22, -30.0)] * 25), RATE).momentary_lufs
    assert np.all(np.abs(momentary[6:] + 23.0) <= 0.1)


@pytest.mark.parametrize("i", range(20))
@pytest.mark.parametrize(
    ("figure", "step_s", "tone_s"),
    [("max_short_term_lufs", 0.15, 3.0), ("max_momentary_lufs", 0.02, 0.4)],
    ids=["case 10", "case 13"],
)
def test_tech3341_file_based_maxima(figure: str, step_s: float, tone_s: float, i: int) -> None:
    """Case 10: (i * 0.15 s of silence; 3 s at -23.0 dBFS; 1 s of silence), case 13:
    (i * 20 ms of silence; 400 ms at -23.0 dBFS; 1 s of silence), each measured alone:
    max S (case 10), max M (case 13) = -23.0 +-0.1 LUFS. A meter reading only every 100 ms
    fails case 13 (a 40 ms late onset reads -23.46) and barely passes case 10 (-23.07)."""
    figures = measure(tones([(i * step_s, None), (tone_s, -23.0), (1.0, None)]), RATE)
    assert getattr(figures, figure) == pytest.approx(-23.0, abs=0.1)


def test_tech3341_case_11_successive_short_term_maxima() -> None:
    """Case 11 (for live meters): (i * 0.15 s of silence; 3 s at -38.0 + i dBFS; 3 - i * 0.15 s
    of silence) for i = 0..19: max S = -38.0, -37.0, ..., -19.0 +-0.1 LUFS, read here from the
    100 ms series segment by segment, which also checks its timing (value k ends at 3.0 + 0.1 k
    s)."""
    segments: list[Segment] = []
    for i in range(20):
        segments += [(i * 0.15, None), (3.0, -38.0 + i), (3.0 - i * 0.15, None)]
    short_term = measure(tones(segments), RATE).short_term_lufs
    ends_s = 3.0 + 0.1 * np.arange(short_term.size)
    maxima = [
        short_term[(ends_s > 6 * i + 1e-6) & (ends_s <= 6 * i + 6 + 1e-6)].max() for i in range(20)
    ]
    np.testing.assert_allclose(maxima, np.arange(-38.0, -18.0), rtol=0, atol=0.1)


TECH_3342 = {
    # 1: stereo 1 kHz sine, 20 s at -20.0 dBFS followed immediately by 20 s at -30.0 dBFS.
    "case 1": ([(20.0, -20.0), (20.0, -30.0)], 10.0),
    # 2: as #1, with the two tones at -20.0 and -15.0 dBFS.
    "case 2": ([(20.0, -20.0), (20.0, -15.0)], 5.0),
    # 3: as #1, with the two tones at -40.0 and -20.0 dBFS.
    "case 3": ([(20.0, -40.0), (20.0, -20.0)], 20.0),
    # 4: 20 s each at -50.0, -35.0, -20.0, -35.0 and -50.0 dBFS.
    "case 4": ([(20.0, level) for level in (-50.0, -35.0, -20.0, -35.0, -50.0)], 15.0),
}


@pytest.mark.parametrize(("segments", "expected_lu"), TECH_3342.values(), ids=TECH_3342)
def test_tech3342_loudness_range(segments: list[Segment], expected_lu: float) -> None:
    # Tech 3342 Table 1 allows +-1 LU. Both percentiles fall on steady plateaus here (in case
    # 4 the -50 dBFS tones are gated out), so a correct meter reads the level difference
    # itself: 0.01 LU leaves room only for the K-weighting's onset transients.
    lra = measure(tones(segments), RATE).loudness_range_lu
    assert lra == pytest.approx(expected_lu, abs=0.01)


def test_loudness_range_percentiles_follow_the_tech3342_reference_code() -> None:
    """Tech 3342 §5 takes sorted(v)[round((n - 1) p / 100)] (0-based, MATLAB's round: halves
    away from zero). With n = 26 values 1 LU apart from -40 LUFS (all above both gates), the
    10th percentile lands on index 2.5 exactly and the 95th on 23.75: the reference reads
    -37 and -16, so 21 LU, where Python's round (halves to even) gives 22 and
    numpy.percentile's interpolation 21.25."""
    lufs = -40.0 + np.arange(26.0)
    energies = 10 ** ((lufs + 0.691) / 10)  # BS.1770-4 eq. (2) inverted
    assert measure_module._loudness_range_lu(energies) == pytest.approx(21.0, abs=1e-9)


# --- True peak ----------------------------------------------------------------------------

TECH_3341_TRUE_PEAK = {
    # 15-19: stereo sine of frequency fs/divisor, amplitude (fraction of full scale) and
    # phase; tapered with 10 ms fades; max true peak = expected +0.2/-0.4 dBTP.
    "case 15": (4, 0.50, 0.0, -6.0),
    "case 16": (4, 0.50, 45.0, -6.0),
    "case 17": (6, 0.50, 60.0, -6.0),
    "case 18": (8, 0.50, 67.5, -6.0),
    "case 19": (4, 1.41, 45.0, 3.0),
}


@pytest.mark.parametrize(
    ("divisor", "amplitude", "phase_deg", "expected_dbtp"),
    TECH_3341_TRUE_PEAK.values(),
    ids=TECH_3341_TRUE_PEAK,
)
def test_tech3341_true_peak_sines(
    divisor: int, amplitude: float, phase_deg: float, expected_dbtp: float
) -> None:
    # Only case 15 has a sample on the crest: the others peak between samples (case 19's
    # samples sit at 0.997 FFS while its true peak is +3 dBTP).
    n = np.arange(RATE)
    wave = amplitude * np.sin(2 * np.pi * n / divisor + np.deg2rad(phase_deg))
    x = tapered(np.tile(wave, (2, 1)), 0.010)
    for peak in measure(x, RATE).true_peak_dbtp:
        assert expected_dbtp - 0.4 <= peak <= expected_dbtp + 0.2


@pytest.mark.parametrize("offset", range(4), ids=[f"case {20 + k}" for k in range(4)])
def test_tech3341_true_peak_downsampled_burst(offset: int) -> None:
    """Cases 20-23: a sine of fs/6 at 0.50 FFS containing one period of fs/4 at 1.00 FFS,
    phase-continuous on both sides, synthesised at 4 fs, low-pass filtered and downsampled to
    fs with an offset of 0-3 samples (at 4 fs), tapered: max true peak = 0.0 +0.2/-0.4 dBTP.
    The anti-alias filter is not specified; here a 255-tap windowed-sinc cut at 20 kHz."""
    up = 4
    t = np.arange(up * RATE // 2)
    carrier = 0.5 * np.sin(2 * np.pi * t / (6 * up))
    start = 6 * up * 1000  # a rising zero crossing of the carrier, 0.5 s in
    burst = np.sin(2 * np.pi * np.arange(4 * up) / (4 * up))
    fine = np.concatenate([carrier[:start], burst, carrier[start:]])
    lowpass = scipy.signal.firwin(255, 20_000.0, fs=up * RATE)
    filtered = np.convolve(fine, lowpass, mode="same")
    x = tapered(np.tile(filtered[offset::up], (2, 1)), 0.010)
    # The 4 fs signal is the band-limited waveform itself: its largest value is the true
    # peak (-0.25 dBFS) that the detector must rebuild from every fourth sample, where the
    # sample peak alone reads as low as -2.9 dBFS (offset 2). 0.05 dB: two different
    # low-pass filters (the synthesis' and the 4x interpolator's) shape the burst.
    grid_peak_db = gain_to_db(float(np.abs(filtered).max()))
    for peak in measure(x, RATE).true_peak_dbtp:
        assert -0.4 <= peak <= 0.2
        assert peak == pytest.approx(grid_peak_db, abs=0.05)


def test_true_peak_equals_the_largest_of_true_peaks_across_block_boundaries(
    rng: np.random.Generator,
) -> None:
    """The meter's reading (one pass keeping only the maximum) must be the largest of
    ``true_peaks`` exactly, including an inter-sample peak straddling a block boundary (two
    equal samples, whose interpolation overshoots between them): without the neighbours it
    would be read as a lone sample."""
    n = 3 * CHUNK_SAMPLES + 1234
    x = 0.1 * rng.standard_normal((2, n))
    boundary = 2 * CHUNK_SAMPLES
    x[1, boundary - 2 : boundary + 2] = [-0.3, 0.8, 0.8, -0.3]
    expected = tuple(gain_to_db(float(true_peaks(x[c : c + 1]).max())) for c in range(2))
    assert measure(x, RATE).true_peak_dbtp == expected
    assert true_peak_dbtp(x) == max(expected) > gain_to_db(0.8) + 0.5


def test_sample_peaks_per_channel_and_overall() -> None:
    x = np.array([[0.0, 0.25, -0.5, 0.1], [0.0, -0.125, 0.0625, 0.0]])
    assert measure(x, RATE).sample_peak_dbfs == (gain_to_db(0.5), gain_to_db(0.125))
    assert sample_peak_dbfs(x) == gain_to_db(0.5)


# --- Independent meters -------------------------------------------------------------------


def contour_noise(rng: np.random.Generator) -> np.ndarray:
    """30 s of stereo white noise whose level wanders between -40 and -12 dBFS RMS."""
    n = 30 * RATE
    level_db = np.interp(np.arange(n) / RATE, np.arange(31.0), rng.uniform(-40.0, -12.0, 31))
    return rng.standard_normal((2, n)) * 10 ** (level_db / 20)


def music_mix(rng: np.random.Generator) -> np.ndarray:
    """30 s of a music-like stereo mix: a throbbing 55 Hz bass, an A major triad swelling by
    9.5 dB from the middle on, weighted to the left, a pitch-swept kick on every half second
    and noise hats, offset by 10 ms between the channels."""
    n = 30 * RATE
    t = np.arange(n) / RATE
    bass = 0.3 * np.sin(2 * np.pi * 55 * t) * (0.6 + 0.4 * np.sin(np.pi * t))
    triad = sum(0.08 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate((220.0, 277.18, 329.63)))
    triad = triad * (1 + 2 * np.clip((t - 15.0) / 4.0, 0.0, 1.0))
    beat = (2 * t) % 1.0
    kick = 0.8 * np.exp(-30 * beat) * np.sin(2 * np.pi * (50 + 100 * np.exp(-40 * beat)) * beat)
    hats = 0.05 * rng.standard_normal(n) * np.exp(-60 * ((4 * t) % 1.0))
    left = bass + triad + kick + hats
    right = bass + 0.7 * triad + kick + np.roll(hats, 480)
    return 0.8 * np.stack([left, right])


def ffmpeg_rule_lra_lu(short_term_lufs: np.ndarray) -> float:
    """ffmpeg's LRA rule (libavfilter/f_ebur128.c) applied to our short-term values: values
    binned down to 0.01 LU, both gates ``>=``, low = the round(0.1 n)-th and high = the
    round(0.95 n)-th smallest (1-based), where Tech 3342 takes 0-based round((n - 1) p)."""
    values = np.sort(short_term_lufs[short_term_lufs >= -70.0])
    gate = 10 * np.log10(np.mean(10 ** (values / 10))) - 20
    binned = np.floor(values[values >= gate] * 100) / 100
    n = binned.size
    return float(binned[int(0.95 * n + 0.5) - 1] - binned[int(0.1 * n + 0.5) - 1])


@pytest.mark.parametrize("make", [contour_noise, music_mix])
def test_agrees_with_ffmpeg_ebur128(
    make: Callable[[np.random.Generator], np.ndarray], rng: np.random.Generator, tmp_path: Path
) -> None:
    x = make(rng)
    reference = ffmpeg_ebur128(write_stem(tmp_path / "signal.wav", x, RATE))
    figures = measure(x, RATE)
    # ffmpeg prints one decimal (+-0.05) and gates a histogram of 0.01 LU bins: 0.07 LU.
    assert figures.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=0.07)
    # Two different 4x interpolators (ffmpeg resamples to 192 kHz with swresample) read
    # noise-like peaks within ~0.1 dB of each other, plus the printed decimal: 0.2 dB.
    assert max(figures.true_peak_dbtp) == pytest.approx(reference.true_peak_dbtp, abs=0.2)
    # LRA: ffmpeg's percentile rule sits one rank from Tech 3342's, a gap of up to 0.3 LU on
    # sparse distributions, so our short-term series is checked through ffmpeg's own rule;
    # the print and the histogram bins leave 0.06 LU.
    lra = ffmpeg_rule_lra_lu(figures.short_term_lufs)
    assert lra == pytest.approx(reference.loudness_range_lu, abs=0.06)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_integrated_matches_pyloudnorm_deman(
    sample_rate: int, channels: int, rng: np.random.Generator
) -> None:
    """pyloudnorm's DeMan meter is the same algorithm (same filter, blocks, gates), written
    independently; over 10 s (a whole number of 100 ms hops, so its rounding of the block
    count adds no partial block) of noise fading in by 30 dB they agree to rounding: 1e-9."""
    n = 10 * sample_rate
    x = rng.standard_normal((channels, n)) * np.geomspace(0.01, 0.3, n)
    expected = pyloudnorm.Meter(sample_rate, filter_class="DeMan").integrated_loudness(x.T)
    assert integrated_loudness_lufs(x, sample_rate) == pytest.approx(expected, abs=1e-9)


# --- API, timing and edge cases -----------------------------------------------------------


def test_every_path_shares_one_integrated_loudness(rng: np.random.Generator) -> None:
    x = 0.1 * rng.standard_normal((2, 5 * RATE))
    before = x.copy()
    figures = measure(x, RATE)
    assert integrated_loudness_lufs(x, RATE) == figures.integrated_lufs
    gain = np.linspace(0.5, 1.5, x.shape[1])
    assert integrated_loudness_lufs(x, RATE, gain) == pytest.approx(
        integrated_loudness_lufs(x * gain, RATE), abs=1e-12
    )
    np.testing.assert_array_equal(x, before)
    assert not figures.momentary_lufs.flags.writeable


def test_series_timing_follows_the_windows() -> None:
    """1 s of silence, then a tone: momentary_lufs[k] covers 0.1 k .. 0.1 k + 0.4 s, so it
    holds min(max(0.1 k + 0.4 - 1.0, 0), 0.4) s of tone and reads the tone's level plus
    10 log10 of that fraction (-inf before the onset). 0.01 LU: the filter's onset."""
    level = measure(tones([(4.0, -20.0)]), RATE).integrated_lufs
    momentary = measure(tones([(1.0, None), (3.0, -20.0)]), RATE).momentary_lufs
    overlap_s = np.clip(0.1 * np.arange(momentary.size) + 0.4 - 1.0, 0.0, 0.4)
    with np.errstate(divide="ignore"):
        expected = level + 10 * np.log10(overlap_s / 0.4)
    assert np.all(np.isneginf(momentary[:7]))
    np.testing.assert_allclose(momentary[7:], expected[7:], rtol=0, atol=0.01)


def test_silence_after_a_loud_programme_is_not_lost_in_rounding(
    rng: np.random.Generator,
) -> None:
    """60 s of loud noise, then 2 s of silence: the K-weighted tail decays by hundreds of
    dB and the windows' sums of 10 ms ticks keep it so. A per-sample running sum (adding
    each new square and subtracting the one leaving the window, or differences of a
    cumulative sum) would leave rounding noise of ~1e-16 of the energy seen: ~-140 LUFS."""
    x = np.concatenate([0.3 * rng.standard_normal((2, 60 * RATE)), np.zeros((2, 2 * RATE))], axis=1)
    assert measure(x, RATE).momentary_lufs[-1] < -300.0


@pytest.mark.parametrize(
    ("sample_rate", "n"),
    [
        *[(48_000, 19_199), (48_000, 19_200), (48_000, 23_999), (44_100, 3 * 44_100 + 7)],
        *[(11_025, 4_409), (11_025, 4_410), (11_025, 5_511), (11_025, 5_512)],
    ],
)
def test_only_complete_windows_count(sample_rate: int, n: int) -> None:
    """BS.1770-4 §2.3 and Tech 3341 §2.3: blocks of 400 ms "to the nearest sample", every
    100 ms, and an incomplete block at the end is discarded. At 11.025 kHz a block is 4410
    samples and a hop 1102.5: the second block starts at sample 1102 and needs 5512."""
    x = tones([(n / sample_rate, -20.0)], sample_rate)
    blocks_400ms = round(0.4 * sample_rate)
    hops = [math.floor(k * sample_rate / 10) for k in range(100)]
    expected = sum(start + blocks_400ms <= n for start in hops)
    figures = measure(x, sample_rate)
    assert figures.momentary_lufs.size == expected
    assert math.isfinite(figures.integrated_lufs) == (expected > 0)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(
    ("seconds", "momentary_count"), [(0.0, 0), (0.39, 0), (1.0, 7)], ids=["empty", "short", "1s"]
)
def test_short_and_silent_audio(channels: int, seconds: float, momentary_count: int) -> None:
    x = np.zeros((channels, round(seconds * RATE)))
    figures = measure(x, RATE)
    assert figures.integrated_lufs == -math.inf == integrated_loudness_lufs(x, RATE)
    assert figures.loudness_range_lu == 0.0
    assert figures.max_momentary_lufs == figures.max_short_term_lufs == -math.inf
    assert figures.momentary_lufs.shape == (momentary_count,)
    assert np.all(np.isneginf(figures.momentary_lufs))
    assert figures.short_term_lufs.shape == (0,)
    assert figures.true_peak_dbtp == figures.sample_peak_dbfs == (-math.inf,) * channels


def test_a_tone_shorter_than_a_block_has_peaks_but_no_loudness() -> None:
    x = tones([(0.39, -6.0)])
    figures = measure(x, RATE)
    assert figures.integrated_lufs == -math.inf
    assert figures.momentary_lufs.size == 0
    assert figures.sample_peak_dbfs[0] == pytest.approx(-6.0, abs=0.01)


@pytest.mark.parametrize("shape", [(3, 100), (100,), (0, 100)])
def test_refuses_other_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expected \(channels 1 or 2, samples\)"):
        measure(np.zeros(shape), RATE)


def test_the_fold_comes_from_the_same_pass(rng: np.random.Generator) -> None:
    """``measure_with_fold``: the stereo figures are ``measure``'s to the bit, and the fold's
    loudness is that of the fold formed and metered on its own, ``(L + R) / sqrt(2)`` on one
    channel, to rounding (the filter is linear); a mono signal is its own fold."""
    x = rng.uniform(-0.5, 0.5, (2, 5 * RATE))
    x[1] = 0.3 * x[0] + 0.2 * x[1]  # partly correlated, so the fold is not 3 dB down
    figures, fold_lufs = measure_with_fold(x, RATE)
    alone = measure(x, RATE)
    for field in dataclasses.fields(figures):
        assert np.array_equal(getattr(figures, field.name), getattr(alone, field.name))
    formed = ((x[0] + x[1]) * math.sqrt(0.5))[np.newaxis]
    assert fold_lufs == pytest.approx(integrated_loudness_lufs(formed, RATE), abs=1e-9)
    mono_figures, mono_fold = measure_with_fold(x[:1], RATE)
    assert mono_fold == mono_figures.integrated_lufs == integrated_loudness_lufs(x[:1], RATE)

"""Multiband compressor: the Linkwitz-Riley bands against their closed forms and scipy's
Butterworth designs, the idle sum flat, compression confined to its band at the static
curve's amount, the dry/wet mix, and blocks against the whole signal, bit for bit."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import scipy.signal

from render.dsp.dynamics import gain_computer_db
from render.dsp.levels import db_to_gain, gain_to_db
from render.dsp.multiband import (
    BandSettings,
    MultibandCompressor,
    crossover_bands,
    multiband_compress,
)
from tests.conftest import sine

SAMPLE_RATES = (44_100, 48_000, 96_000)
CROSSOVERS_HZ = ((1_000.0,), (120.0, 2_000.0), (100.0, 800.0, 5_000.0))  # 2, 3 and 4 bands
LR4_AT_CROSSOVER_DB = gain_to_db(0.5)  # -6.0206 dB: each Butterworth half is 1/sqrt(2)
# Every impulse response here decays by e^-30 or more within 2^16 samples (the slowest pole,
# LR4 at 100 Hz, is damped at 2 pi 100 / sqrt(2) = 444 /s: 0.68 s at 96 kHz leaves e^-300),
# so its FFT is the frequency response up to rounding.
N_IMPULSE = 2**16
# The issue asks 0.01 dB. The all-pass sum and the LR4 magnitudes are identities of the
# designed coefficients, so only rounding separates measurement and closed form (~1e-12 dB
# in the passband, ~1e-9 dB 120 dB down): 1e-6 dB holds and catches more.
RESPONSE_DB = 1e-6
# Below this the closed form's level leaves the measurement to rounding noise.
FLOOR_DB = -120.0
IMPULSE = 1e-3  # -60 dBFS: far under every idle threshold's knee, so the gain is exactly 1
IDLE = {
    "threshold": BandSettings(threshold_db=0.0),
    "bypass": BandSettings(threshold_db=-60.0, ratio=8.0, bypass=True),
    "ratio 1": BandSettings(threshold_db=-90.0, ratio=1.0),
}
ACTIVE = BandSettings(threshold_db=-30.0, ratio=4.0, knee_db=6.0, attack_ms=1.0, release_ms=50.0)


def impulse_bands(crossovers_hz: Sequence[float], sample_rate: int) -> np.ndarray:
    """``crossover_bands`` of a unit impulse: each band's impulse response, ``[band, 1, n]``."""
    x = np.zeros((1, N_IMPULSE))
    x[:, 0] = 1.0
    return crossover_bands(x, sample_rate, crossovers_hz)


def grid_hz(sample_rate: int) -> tuple[np.ndarray, slice]:
    """The FFT frequencies of ``N_IMPULSE`` samples and the slice 10 Hz .. 0.45 fs."""
    frequencies_hz = np.fft.rfftfreq(N_IMPULSE, 1.0 / sample_rate)
    inside = (frequencies_hz >= 10.0) & (frequencies_hz <= 0.45 * sample_rate)
    indices = np.flatnonzero(inside)
    return frequencies_hz, slice(indices[0], indices[-1] + 1)


def lr4(kind: str, frequencies_hz: np.ndarray, crossover_hz: float, sample_rate: int) -> np.ndarray:
    """Closed-form LR4 amplitude, a Butterworth-2 power response (Linkwitz 1976) with the
    bilinear transform's prewarping: 1 / (1 + (t / tc)^4) for the low side, 1 / (1 + (tc /
    t)^4) for the high side, t = tan(pi f / fs)."""
    ratio = np.tan(np.pi * frequencies_hz / sample_rate) / math.tan(
        math.pi * crossover_hz / sample_rate
    )
    power = ratio**4 if kind == "lowpass" else ratio**-4.0
    return 1.0 / (1.0 + power)


def band_closed_form(
    band: int, frequencies_hz: np.ndarray, crossovers_hz: Sequence[float], sample_rate: int
) -> np.ndarray:
    """Band ``band``'s amplitude: the high side of every crossover below it and the low side
    of the one above (the all-passes have unit magnitude)."""
    amplitude = np.ones_like(frequencies_hz)
    for index, crossover_hz in enumerate(crossovers_hz):
        if index < band:
            amplitude *= lr4("highpass", frequencies_hz, crossover_hz, sample_rate)
        elif index == band:
            amplitude *= lr4("lowpass", frequencies_hz, crossover_hz, sample_rate)
    return amplitude


def scipy_allpass(x: np.ndarray, crossovers_hz: Sequence[float], sample_rate: int) -> np.ndarray:
    """``x`` through every crossover's LR4 low + high, each LR4 a scipy Butterworth-2 section
    applied twice: an independent design of what the bands must sum to."""
    for crossover_hz in crossovers_hz:
        x = sum(
            scipy.signal.sosfilt(
                np.tile(
                    scipy.signal.butter(2, crossover_hz, kind, output="sos", fs=sample_rate), (2, 1)
                ),
                x,
            )
            for kind in ("lowpass", "highpass")
        )
    return x


def tone_level_db(x: np.ndarray, frequency_hz: float, sample_rate: int) -> float:
    """Amplitude of a tone in the last half second of ``x`` (one channel), dBFS, read from its
    FFT bin: every tone here has a whole number of periods in half a second (an even number
    of Hz), so it falls on a bin and leaks into no other."""
    n = sample_rate // 2
    spectrum = np.fft.rfft(x[-n:])
    return gain_to_db(2.0 * abs(spectrum[round(frequency_hz * n / sample_rate)]) / n)


# --- the crossover ------------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("crossovers_hz", CROSSOVERS_HZ)
def test_bands_match_the_lr4_closed_form(
    sample_rate: int, crossovers_hz: tuple[float, ...]
) -> None:
    """Each band's magnitude is the product of its LR4 sides (all-passes are unit magnitude)
    at every FFT frequency from 10 Hz to 0.45 fs where it is above ``FLOOR_DB``."""
    bands = impulse_bands(crossovers_hz, sample_rate)
    frequencies_hz, inside = grid_hz(sample_rate)
    for index, band in enumerate(bands):
        measured = np.abs(np.fft.rfft(band[0]))[inside]
        expected = band_closed_form(index, frequencies_hz[inside], crossovers_hz, sample_rate)
        audible = 20.0 * np.log10(expected) > FLOOR_DB
        error_db = 20.0 * np.log10(measured[audible] / expected[audible])
        assert np.max(np.abs(error_db)) < RESPONSE_DB


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("crossover_hz", [40.0, 1_000.0, 15_000.0])
def test_two_bands_are_minus_6_db_at_the_crossover(sample_rate: int, crossover_hz: float) -> None:
    """The LR4 property: low and high are both -6.02 dB at the crossover (the DTFT evaluated
    exactly there, not at the nearest FFT bin)."""
    low, high = impulse_bands((crossover_hz,), sample_rate)
    phasor = np.exp(-2j * np.pi * crossover_hz / sample_rate * np.arange(N_IMPULSE))
    for band in (low, high):
        assert gain_to_db(abs(band[0] @ phasor)) == pytest.approx(
            LR4_AT_CROSSOVER_DB, abs=RESPONSE_DB
        )


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("crossovers_hz", CROSSOVERS_HZ)
@pytest.mark.parametrize("idle", list(IDLE))
@pytest.mark.parametrize("mix", [1.0, 0.5])
def test_idle_bands_sum_flat_with_the_crossover_allpass(
    sample_rate: int, crossovers_hz: tuple[float, ...], idle: str, mix: float
) -> None:
    """With no gain reduction the summed output is flat within ``RESPONSE_DB`` from 10 Hz to
    0.45 fs, and it is the product of every crossover's LR4 low + high from scipy's own
    Butterworth design: the lower bands carry the all-passes of the crossovers above them
    (without them the 3- and 4-band sums here dip by 0.04 and 0.28 dB; with the high side's
    polarity inverted the 2-band sum nulls at the crossover). A half mix stays flat: its dry
    path carries the same phase."""
    x = np.zeros((2, N_IMPULSE))
    x[:, 0] = IMPULSE
    settings = [IDLE[idle]] * (len(crossovers_hz) + 1)
    y = multiband_compress(x, sample_rate, crossovers_hz=crossovers_hz, bands=settings, mix=mix)
    _, inside = grid_hz(sample_rate)
    response = np.fft.rfft(y / IMPULSE)[:, inside]
    assert np.max(np.abs(20.0 * np.log10(np.abs(response)))) < RESPONSE_DB
    reference = np.fft.rfft(scipy_allpass(x / IMPULSE, crossovers_hz, sample_rate))[:, inside]
    # Rounding only: both are unit-magnitude responses computed in float64.
    np.testing.assert_allclose(response, reference, rtol=0.0, atol=1e-10)


# --- compression --------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_only_the_loud_band_is_compressed_by_the_static_curve(channels: int) -> None:
    """A -6 dBFS 100 Hz tone over a -40 dBFS 8 kHz tone, split at 1 kHz, both bands at
    threshold -20 dB 4:1: the low tone falls by the static curve's reduction at its peak
    ([GMR] eq. 4, ``gain_computer_db``), the high tone passes unchanged. In stereo the right
    channel's low tone is quiet (-30 dBFS, under the knee) yet falls by the same amount: the
    detector is linked across channels."""
    sample_rate, low_hz, high_hz = 48_000, 100.0, 8_000.0
    loud_db, quiet_db, high_db = -6.0, -30.0, -40.0
    low = [sine(low_hz, 1.0, db_to_gain(db), sample_rate) for db in (loud_db, quiet_db)]
    high = sine(high_hz, 1.0, db_to_gain(high_db), sample_rate)
    x = np.vstack(low[:channels]) + high
    # Attack 1 ms catches each peak; release 1 s sags < 0.07 dB between the 100 Hz peaks.
    band = BandSettings(threshold_db=-20.0, ratio=4.0, knee_db=6.0, attack_ms=1.0, release_ms=1e3)
    y = multiband_compress(x, sample_rate, crossovers_hz=[1_000.0], bands=[band, band])
    reduction_db = float(gain_computer_db(loud_db, -20.0, 4.0, 6.0)) - loud_db  # -10.48 dB
    for channel in range(channels):
        level_in = tone_level_db(x[channel], low_hz, sample_rate)
        # 0.2 dB (the bound): the release's sag between peaks stays under 0.07 dB.
        assert tone_level_db(y[channel], low_hz, sample_rate) == pytest.approx(
            level_in + reduction_db, abs=0.2
        )
        # 0.05 dB (the bound): the compressed low band still carries the 8 kHz tone's
        # LR4 low side, -56 dB under it; losing 10 dB of that moves the tone by 0.001 dB.
        assert tone_level_db(y[channel], high_hz, sample_rate) == pytest.approx(
            tone_level_db(x[channel], high_hz, sample_rate), abs=0.05
        )


@pytest.mark.parametrize("crossovers_hz", CROSSOVERS_HZ)
def test_mix_blends_compressed_and_allpassed_dry(
    rng: np.random.Generator, crossovers_hz: tuple[float, ...]
) -> None:
    """mix 0 is the input through the crossover all-pass: the sum of the crossover bands to
    the bit, and scipy's LR4 low + high of each crossover in series to rounding; a partial
    mix is ``mix * wet + (1 - mix) * that``, with the compressors working hard."""
    sample_rate = 48_000
    x = 0.5 * rng.standard_normal((2, 20_000))
    settings = [ACTIVE] * (len(crossovers_hz) + 1)

    def run(mix: float) -> np.ndarray:
        return multiband_compress(
            x, sample_rate, crossovers_hz=crossovers_hz, bands=settings, mix=mix
        )

    dry = run(0.0)
    np.testing.assert_array_equal(
        dry, functools.reduce(np.add, crossover_bands(x, sample_rate, crossovers_hz))
    )
    # Rounding of two float64 cascades of a few sections on a signal of peak ~2.
    np.testing.assert_allclose(dry, scipy_allpass(x, crossovers_hz, sample_rate), atol=1e-12)
    wet = run(1.0)
    assert np.max(np.abs(wet - dry)) > 0.1  # the compressors do act
    # Each band's compressor forms (1 - mix) dry + mix wet, summed: rounding only.
    np.testing.assert_allclose(run(0.3), 0.3 * wet + 0.7 * dry, rtol=0.0, atol=1e-14)


# --- streaming ----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("crossovers_hz", CROSSOVERS_HZ)
def test_blocks_equal_the_whole_signal(
    rng: np.random.Generator, channels: int, crossovers_hz: tuple[float, ...]
) -> None:
    """Random blocks (empty ones, single samples, some longer than the internal slice) give
    the bytes of one call: every filter and compressor state is carried over."""
    sample_rate, n = 44_100, 50_000
    x = 0.5 * rng.standard_normal((channels, n))
    settings = [ACTIVE] * len(crossovers_hz) + [BandSettings(bypass=True)]
    whole = multiband_compress(x, sample_rate, crossovers_hz=crossovers_hz, bands=settings, mix=0.8)
    edges = np.sort(np.concatenate([[0, 0, 1, 2, n], rng.integers(0, n, 6)]))
    streamed = MultibandCompressor(sample_rate, channels, crossovers_hz, settings, mix=0.8)
    blocks = [streamed.process(x[:, a:b]) for a, b in itertools.pairwise(edges)]
    assert np.concatenate(blocks, axis=1).tobytes() == whole.tobytes()


def test_input_is_not_modified(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 1_000))
    before = x.copy()
    multiband_compress(x, 48_000, crossovers_hz=[200.0], bands=[ACTIVE, ACTIVE])
    np.testing.assert_array_equal(x, before)


# --- parameters ---------------------------------------------------------------------------

TWO = [BandSettings(), BandSettings()]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crossovers_hz": [], "bands": [BandSettings()]}, r"crossovers_hz: got 0 .* 1 to 3"),
        ({"crossovers_hz": [1e2, 1e3, 2e3, 4e3], "bands": TWO * 2 + TWO[:1]}, r"got 4 .*1 to 3"),
        ({"crossovers_hz": [2e3, 1e3], "bands": [*TWO, BandSettings()]}, r"\[1\]: .*ascending"),
        ({"crossovers_hz": [1e3, 1e3], "bands": [*TWO, BandSettings()]}, r"\[1\]: .*ascending"),
        ({"crossovers_hz": [0.0], "bands": TWO}, r"crossovers_hz\[0\]: got 0.0 Hz"),
        ({"crossovers_hz": [24e3], "bands": TWO}, r"\[0\]: got 24000.0 Hz.*< 24000 Hz"),
        ({"crossovers_hz": [math.nan], "bands": TWO}, r"crossovers_hz\[0\]: got nan"),
        ({"crossovers_hz": [1e3], "bands": TWO[:1]}, r"bands: got 1 band settings, expected 2"),
        ({"crossovers_hz": [1e3], "bands": TWO, "mix": 1.5}, r"mix: got 1.5, expected a fraction"),
        ({"crossovers_hz": [1e3], "bands": TWO, "mix": -0.1}, r"mix: got -0.1"),
        (
            {"crossovers_hz": [1e3], "bands": [BandSettings(), BandSettings(ratio=0.5)]},
            r"bands\[1\]: compressor ratio: got 0.5",
        ),
        (
            {"crossovers_hz": [1e3], "bands": [BandSettings(attack_ms=-1.0, bypass=True)] * 2},
            r"bands\[0\]: compressor attack_ms: got -1.0",
        ),
    ],
)
def test_invalid_parameters_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultibandCompressor(48_000, 2, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: MultibandCompressor(48_000, 3, [1e3], TWO), r"channels: got 3, expected 1 or 2"),
        (
            lambda: MultibandCompressor(48_000, 2, [1e3], TWO).process(np.zeros((1, 8))),
            r"block: got shape \(1, 8\), expected \(2, samples\)",
        ),
        (
            lambda: crossover_bands(np.zeros(8), 48_000, [1e3]),
            r"x: got shape \(8,\), expected \(channels 1 or 2, samples\)",
        ),
    ],
)
def test_invalid_shapes_raise(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()

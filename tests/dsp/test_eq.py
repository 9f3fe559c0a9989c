"""Parametric EQ: designed coefficients against the cookbook's closed forms, ``equalize``
measured (impulse in, FFT out) against ``sosfreqz`` of exactly those coefficients, and
``Equalizer`` blocks against ``equalize`` on the whole signal, bit for bit."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pytest
import scipy.signal

from render.dsp.biquad_loop import MOST_SECTIONS
from render.dsp.eq import (
    PASS_SLOPES_DB_PER_OCT,
    Band,
    Equalizer,
    _sosfilt,
    band_sos,
    equalize,
    filter_pair,
    pass_sos,
    sos_power,
    sosfilt,
    sosfiltfilt,
)
from render.dsp.levels import gain_to_db
from tests.dsp.streaming import edges_from_sizes, process_in_blocks

SAMPLE_RATES = (44_100, 48_000, 96_000)
FREQUENCIES_HZ = (100.0, 1_000.0, 10_000.0)
HALF_POWER_DB = gain_to_db(math.sqrt(0.5))  # -3.0103 dB
OCTAVE_DB = gain_to_db(2.0)  # 6.0206 dB, one order's asymptotic roll-off per octave
# The issue asks 0.01 dB. The cookbook's gains at DC, f0, Nyquist and the band edges are
# exact identities of the coefficients, so only rounding separates them (the worst case, the
# DC sum of a 100 Hz shelf at 96 kHz, cancels ~5 of 16 digits, ~1e-11 dB): 1e-6 dB holds too
# and catches more.
CLOSED_FORM_DB = 1e-6
# A zero on the unit circle evaluates to rounding residue (|H| ~ 1e-14, about -280 dB);
# any finite-gain mistake stays far above -200 dB.
ZERO_DB = -200.0
# equalize must apply exactly the designed cascade. Every impulse response used here decays
# by e^-30 or more within 2^16 samples (0.68 s at 96 kHz; the slowest pole, the 100 Hz bell's,
# is damped at about 50 /s), so the FFT equals the frequency response up to that truncation
# and rounding: 1e-9 of the peak is the claim.
N_IMPULSE = 2**16
MEASURED_RTOL = 1e-9


def response(sos: np.ndarray, frequencies_hz: Sequence[float], sample_rate: int) -> np.ndarray:
    """The complex frequency response of ``sos`` at ``frequencies_hz``."""
    return scipy.signal.sosfreqz(sos, worN=np.asarray(frequencies_hz), fs=sample_rate)[1]


def response_db(sos: np.ndarray, frequencies_hz: Sequence[float], sample_rate: int) -> list[float]:
    return [gain_to_db(abs(h)) for h in response(sos, frequencies_hz, sample_rate)]


def warped_hz(frequency_hz: float, ratio: float, sample_rate: int) -> float:
    """The digital frequency whose prewarped analog frequency is ``ratio`` times that of
    ``frequency_hz``: the bilinear transform maps tan(pi f / Fs) linearly (RBJ cookbook)."""
    return sample_rate / math.pi * math.atan(ratio * math.tan(math.pi * frequency_hz / sample_rate))


def assert_db(measured: Sequence[float], expected: Sequence[float]) -> None:
    """Equal within ``CLOSED_FORM_DB``; an expected ``-inf`` means below ``ZERO_DB``."""
    for got, want in zip(measured, expected, strict=True):
        if want == -math.inf:
            assert got < ZERO_DB
        else:
            assert got == pytest.approx(want, abs=CLOSED_FORM_DB)


def measured_transfer(
    n_channels: int, sample_rate: int, bands: Sequence[Band], **passes: tuple[float, int]
) -> np.ndarray:
    """``T[out, in, bin]``: the rFFT of ``equalize``'s output for an impulse on each input."""
    columns = []
    for source in range(n_channels):
        x = np.zeros((n_channels, N_IMPULSE))
        x[source, 0] = 1.0
        columns.append(np.fft.rfft(equalize(x, sample_rate, bands, **passes), axis=-1))
    return np.stack(columns, axis=1)


def assert_transfer(measured: np.ndarray, expected: np.ndarray) -> None:
    # Relative to the peak: near a notch or a stopband the response is ~0, where a
    # per-bin relative error means nothing.
    np.testing.assert_allclose(
        measured, expected, rtol=0, atol=MEASURED_RTOL * np.abs(expected).max()
    )


BAND_CASES = [
    *(
        pytest.param(kind, gain_db, q, id=f"{kind}-{gain_db:+g}dB-q{q}")
        for kind in ("peak", "low_shelf", "high_shelf")
        for gain_db in (12.0, -6.0)
        for q in (None, 3.0)
    ),
    *(
        pytest.param(kind, 0.0, q, id=f"{kind}-q{q}")
        for kind in ("notch", "band_pass")
        for q in (None, 3.0)
    ),
]
# Gain at (DC, f0, Nyquist), RBJ cookbook: peaking gain is dBgain at f0; a shelf's midpoint
# is dBgain/2 at f0 and its plateau dBgain at DC (low) or Nyquist (high); the notch has zeros
# at +-w0 on the unit circle; the 0 dB band-pass has zeros at z = +-1.
ANALYTIC_DB: dict[str, Callable[[float], tuple[float, float, float]]] = {
    "peak": lambda g: (0.0, g, 0.0),
    "low_shelf": lambda g: (g, g / 2.0, 0.0),
    "high_shelf": lambda g: (0.0, g / 2.0, g),
    "notch": lambda g: (0.0, -math.inf, 0.0),
    "band_pass": lambda g: (-math.inf, 0.0, -math.inf),
}


@pytest.mark.parametrize("frequency_hz", FREQUENCIES_HZ)
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize(("kind", "gain_db", "q"), BAND_CASES)
def test_band_gain_at_dc_f0_nyquist(
    kind: str, gain_db: float, q: float | None, sample_rate: int, frequency_hz: float
) -> None:
    sos = band_sos(Band(kind, frequency_hz, gain_db, q), sample_rate)  # type: ignore[arg-type]
    assert sos.shape == (1, 6)
    assert sos[0, 3] == 1.0
    measured = response_db(sos, [0.0, frequency_hz, sample_rate / 2.0], sample_rate)
    assert_db(measured, ANALYTIC_DB[kind](gain_db))


@pytest.mark.parametrize("frequency_hz", FREQUENCIES_HZ)
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("q", [0.5, None, 4.0])
@pytest.mark.parametrize(
    ("kind", "edge_db"), [("peak", 5.0), ("notch", HALF_POWER_DB), ("band_pass", HALF_POWER_DB)]
)
def test_band_gain_at_bandwidth_edges(
    kind: str, edge_db: float, q: float | None, sample_rate: int, frequency_hz: float
) -> None:
    """Q is the analog prototype's: at the prewarped edges W - 1/W = +-1/Q the bell is at half
    its dB gain (|H| = A) and notch and band-pass at half power, the cookbook's definition."""
    gain_db = 2.0 * edge_db if kind == "peak" else 0.0
    sos = band_sos(Band(kind, frequency_hz, gain_db, q), sample_rate)  # type: ignore[arg-type]
    half_inverse_q = 0.5 / (q if q is not None else 1.0)
    edges = [math.hypot(1.0, half_inverse_q) + sign * half_inverse_q for sign in (-1.0, 1.0)]
    edges_hz = [warped_hz(frequency_hz, edge, sample_rate) for edge in edges]
    assert_db(response_db(sos, edges_hz, sample_rate), [edge_db, edge_db])


@pytest.mark.parametrize("kind", ["peak", "notch", "band_pass", "low_shelf", "high_shelf"])
def test_default_q(kind: str) -> None:
    """Shelves default to the S = 1 shelf, the others to Q = 1 (ulp-level agreement)."""
    explicit = {"slope": 1.0} if "shelf" in kind else {"q": 1.0}
    gain_db = 6.0 if kind in ("peak", "low_shelf", "high_shelf") else 0.0
    np.testing.assert_allclose(
        band_sos(Band(kind, 1_000.0, gain_db), 48_000),  # type: ignore[arg-type]
        band_sos(Band(kind, 1_000.0, gain_db, **explicit), 48_000),  # type: ignore[arg-type]
        rtol=1e-14,
    )


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("gain_db", [12.0, -12.0])
@pytest.mark.parametrize("kind", ["low_shelf", "high_shelf"])
@pytest.mark.parametrize(("slope", "monotone"), [(0.5, True), (1.0, True), (2.0, False)])
def test_shelf_slope(
    slope: float, monotone: bool, kind: str, gain_db: float, sample_rate: int
) -> None:
    """Cookbook: "When S = 1, the shelf slope is as steep as it can be and remain
    monotonically increasing or decreasing gain with frequency"; beyond it, it overshoots."""
    sos = band_sos(Band(kind, 1_000.0, gain_db, slope=slope), sample_rate)  # type: ignore[arg-type]
    grid_hz = np.geomspace(1.0, 0.999 * sample_rate / 2.0, 4_000)
    gains_db = np.array(response_db(sos, grid_hz, sample_rate))
    toward_plateau = (
        np.diff(gains_db) * math.copysign(1.0, gain_db) * (1.0 if kind == "high_shelf" else -1.0)
    )
    if monotone:
        assert toward_plateau.min() > -1e-9  # rounding of a flat plateau, nothing more
        assert np.abs(gains_db).max() <= abs(gain_db) + CLOSED_FORM_DB
    else:
        assert np.abs(gains_db).max() > abs(gain_db) + 0.5


@pytest.mark.parametrize("frequency_hz", FREQUENCIES_HZ)
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("slope_db_per_oct", PASS_SLOPES_DB_PER_OCT)
@pytest.mark.parametrize(("kind", "octave_ratio"), [("highpass", 0.5), ("lowpass", 2.0)])
def test_butterworth_cutoff_and_rolloff(
    kind: str, octave_ratio: float, slope_db_per_oct: int, sample_rate: int, frequency_hz: float
) -> None:
    """-3.01 dB at the cutoff for every order; 6.02 dB/octave per order an octave pair deep in
    the stopband (prewarped octaves, 8x and 16x from the cutoff, so the bilinear transform's
    squeeze towards Nyquist does not steepen the low-pass)."""
    sos = pass_sos(kind, frequency_hz, slope_db_per_oct, sample_rate)  # type: ignore[arg-type]
    order = slope_db_per_oct // 6
    assert sos.shape == (math.ceil(order / 2), 6)
    assert_db(response_db(sos, [frequency_hz], sample_rate), [HALF_POWER_DB])
    near, far = (warped_hz(frequency_hz, octave_ratio**k, sample_rate) for k in (3, 4))
    near_db, far_db = response_db(sos, [near, far], sample_rate)
    # At 8x from the cutoff the first-order response is 0.05 dB off its asymptote: 0.1 dB.
    assert near_db - far_db == pytest.approx(order * OCTAVE_DB, abs=0.1)


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("frequency_hz", FREQUENCIES_HZ)
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize(
    ("kind", "gain_db", "q"),
    [
        ("peak", 12.0, 3.0),
        ("low_shelf", -6.0, None),
        ("high_shelf", 12.0, None),
        ("notch", 0.0, 3.0),
        ("band_pass", 0.0, None),
    ],
)
def test_equalize_applies_the_designed_band(
    kind: str,
    gain_db: float,
    q: float | None,
    sample_rate: int,
    frequency_hz: float,
    n_channels: int,
) -> None:
    band = Band(kind, frequency_hz, gain_db, q)  # type: ignore[arg-type]
    h = response(
        band_sos(band, sample_rate), np.fft.rfftfreq(N_IMPULSE, 1.0 / sample_rate), sample_rate
    )
    expected = np.eye(n_channels)[:, :, np.newaxis] * h
    assert_transfer(measured_transfer(n_channels, sample_rate, [band]), expected)


ROUTED = Band("peak", 1_000.0, 6.0, q=2.0)
# A different centre per routing, so a band that lands in the wrong routing, or routings run in
# the wrong order (left/right act after the mid/side decode), changes the transfer matrix.
ROUTED_HZ = {"stereo": 1_000.0, "mid": 700.0, "side": 2_500.0, "left": 300.0, "right": 5_000.0}
ROUTINGS = [
    *((name,) for name in ROUTED_HZ),
    ("mid", "side", "left", "right"),
]
SHARED_BANDS = [Band("high_shelf", 8_000.0, -4.0), Band("notch", 3_000.0, q=8.0)]
PASSES = {"highpass": (40.0, 24), "lowpass": (16_000.0, 12)}


def routed_bands(routings: Sequence[str]) -> list[Band]:
    """The shared bands and one ``ROUTED`` peak per routing."""
    return [
        *SHARED_BANDS,
        *(replace(ROUTED, channels=name, frequency_hz=ROUTED_HZ[name]) for name in routings),  # type: ignore[arg-type]
    ]


def expected_transfer(routings: Sequence[str], n_channels: int, sample_rate: int) -> np.ndarray:
    """``T[out, in, bin]`` from the mid/side definitions: with M = (L+R)/2, S = (L-R)/2 and
    L = M' + S', R = M' - S', the mid/side filters Hm, Hs give L' = (Hm+Hs)/2 L + (Hm-Hs)/2 R,
    and the left/right filters then scale each output row; a mono channel takes every band
    but ``side``. Everything shared multiplies all of it."""
    frequencies_hz = np.fft.rfftfreq(N_IMPULSE, 1.0 / sample_rate)
    h = {name: np.ones(len(frequencies_hz), dtype=complex) for name in ROUTED_HZ}
    for band in routed_bands(routings):
        h[band.channels] = h[band.channels] * response(
            band_sos(band, sample_rate), frequencies_hz, sample_rate
        )
    for kind, spec in PASSES.items():
        h["stereo"] *= response(pass_sos(kind, *spec, sample_rate), frequencies_hz, sample_rate)  # type: ignore[arg-type]
    if n_channels == 1:
        return (h["stereo"] * h["mid"] * h["left"] * h["right"])[np.newaxis, np.newaxis]
    h_mid, h_side = h["mid"], h["side"]
    ms = 0.5 * np.array([[h_mid + h_side, h_mid - h_side], [h_mid - h_side, h_mid + h_side]])
    return np.array([h["left"], h["right"]])[:, np.newaxis] * ms * h["stereo"]


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("routings", ROUTINGS, ids="+".join)
def test_equalize_routes_bands(
    routings: tuple[str, ...], sample_rate: int, n_channels: int
) -> None:
    """The whole chain (pass filters, shared bands, routed bands) measured against the matrix
    of responses the routing defines. The shared cascade runs folded into the mid and side (or
    left and right) cascades: rounding differs from filtering L and R first, far below 1e-9."""
    measured = measured_transfer(n_channels, sample_rate, routed_bands(routings), **PASSES)
    assert_transfer(measured, expected_transfer(routings, n_channels, sample_rate))


def block_edges(kind: str, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks covering ``n`` samples."""
    if kind == "tiny-first":
        sizes = [0, 1, 0, 1, 1, 2, 0, 3] * 8  # then the rest in one block
    elif kind == "tiny-last":
        sizes = [n - 100] + [1, 0] * 100
    elif kind == "random":
        sizes = list(rng.integers(0, 600, n // 100))  # 0 included: some blocks are empty
    else:
        sizes = [1_000] * (n // 1_000)
    return edges_from_sizes(sizes, n)


@pytest.mark.parametrize("kind", ["tiny-first", "tiny-last", "random", "blocks-of-1000"])
@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routings", ROUTINGS, ids="+".join)
def test_blocks_equal_the_whole_signal(
    rng: np.random.Generator, routings: tuple[str, ...], n_channels: int, kind: str
) -> None:
    """Every cascade carries its own ``sosfilt`` state from block to block, so any partition
    gives the very same bits as one call (exact: the same operations on the same numbers)."""
    x = noise(rng, n_channels)
    bands = routed_bands(routings)
    equalizer = Equalizer(48_000, n_channels, bands, **PASSES)
    edges = block_edges(kind, x.shape[1], rng)
    np.testing.assert_array_equal(
        process_in_blocks(equalizer.process, x, edges), equalize(x, 48_000, bands, **PASSES)
    )


def noise(rng: np.random.Generator, n_channels: int, mono_compatible: bool = False) -> np.ndarray:
    x = rng.standard_normal((1 if mono_compatible else n_channels, 4_800)) * 0.25
    return np.repeat(x, n_channels, axis=0) if mono_compatible else x


@pytest.mark.parametrize("n_channels", [1, 2])
def test_side_band_leaves_mono_compatible_input_untouched(
    rng: np.random.Generator, n_channels: int
) -> None:
    """L == R (or a mono signal) has no side: S = 0 filters to 0, and M = (L+L)/2 is L exactly."""
    x = noise(rng, n_channels, mono_compatible=True)
    side_bands = [
        Band("peak", 1_000.0, 9.0, channels="side"),
        Band("low_shelf", 200.0, -6.0, channels="side"),
    ]
    np.testing.assert_array_equal(equalize(x, 48_000, side_bands), x)


def test_mid_band_on_mono_compatible_input_filters_both_channels(rng: np.random.Generator) -> None:
    x = noise(rng, 2, mono_compatible=True)
    band = Band("peak", 1_000.0, 9.0, q=2.0)
    reference = scipy.signal.sosfilt(band_sos(band, 48_000), x[0])
    y = equalize(x, 48_000, [replace(band, channels="mid")])
    # Bit-identical: M = L exactly, S = 0, and the same sosfilt runs on the same samples.
    np.testing.assert_array_equal(y, [reference, reference])


@pytest.mark.parametrize(("routing", "filtered"), [("left", 0), ("right", 1)])
def test_one_sided_band_leaves_the_other_channel_bit_identical(
    rng: np.random.Generator, routing: str, filtered: int
) -> None:
    x = noise(rng, 2)
    band = Band("high_shelf", 5_000.0, 6.0, channels=routing)  # type: ignore[arg-type]
    y = equalize(x, 48_000, [band])
    np.testing.assert_array_equal(y[1 - filtered], x[1 - filtered])
    np.testing.assert_array_equal(
        y[filtered], scipy.signal.sosfilt(band_sos(band, 48_000), x[filtered])
    )


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routing", ["stereo", "mid", "side", "left", "right", None])
def test_input_is_not_modified(
    rng: np.random.Generator, n_channels: int, routing: str | None
) -> None:
    x = noise(rng, n_channels)
    before = x.copy()
    bands = [] if routing is None else [Band("peak", 500.0, 6.0, channels=routing)]  # type: ignore[arg-type]
    y = equalize(x, 48_000, bands, highpass=(30.0, 12) if routing else None)
    np.testing.assert_array_equal(x, before)
    assert y.shape == x.shape and y.dtype == np.float64
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: Band("peak", 0.0),
            r"peak band frequency_hz: got 0.0, expected a frequency > 0 Hz",
            id="zero-hz",
        ),
        pytest.param(lambda: Band("peak", math.nan), r"frequency_hz: got nan", id="nan-hz"),
        pytest.param(
            lambda: band_sos(Band("peak", 24_000.0), 48_000),
            r"got 24000.0, expected .* < 24000 \(Nyquist\)",
            id="nyquist",
        ),
        pytest.param(
            lambda: Band("peak", 1_000.0, q=0.0),
            r"peak band q: got 0.0, expected a number > 0",
            id="q-zero",
        ),
        pytest.param(
            lambda: Band("notch", 1_000.0, q=-1.0), r"notch band q: got -1.0", id="q-negative"
        ),
        pytest.param(
            lambda: Band("peak", 1_000.0, slope=1.0),
            r"only shelves have a slope",
            id="slope-on-peak",
        ),
        pytest.param(
            lambda: Band("low_shelf", 1_000.0, 6.0, q=1.0, slope=1.0),
            r"got both q=1.0 and slope=1.0",
            id="q-and-slope",
        ),
        # 12 dB: A + 1/A = 2.4968, so S must stay below 1 / (1 - 2/2.4968) = 5.03.
        pytest.param(
            lambda: Band("high_shelf", 1_000.0, 12.0, slope=6.0),
            r"S < 5.0286",
            id="slope-too-steep",
        ),
        pytest.param(
            lambda: Band("low_shelf", 1_000.0, 6.0, slope=0.0), r"slope: got 0.0", id="slope-zero"
        ),
        pytest.param(
            lambda: Band("band_pass", 1_000.0, 3.0),
            r"gain_db: got 3.0, expected 0",
            id="gain-on-band-pass",
        ),
        pytest.param(
            lambda: Band("bell", 1_000.0),
            r"type: got 'bell', expected one of peak, low_shelf",
            id="type",
        ),  # type: ignore[arg-type]
        pytest.param(
            lambda: Band("peak", 1_000.0, channels="centre"),
            r"channels: got 'centre'",
            id="channels",
        ),  # type: ignore[arg-type]
        pytest.param(
            lambda: pass_sos("highpass", 100.0, 30, 48_000),
            r"slope_db_per_oct: got 30, expected one of 6, 12, 18, 24, 36, 48",
            id="slope-db",
        ),
        pytest.param(
            lambda: pass_sos("lowpass", 30_000.0, 12, 48_000),
            r"lowpass cutoff_hz: got 30000.0",
            id="cutoff-nyquist",
        ),
        pytest.param(
            lambda: pass_sos("bandpass", 100.0, 12, 48_000), r"kind: got 'bandpass'", id="kind"
        ),  # type: ignore[arg-type]
        pytest.param(
            lambda: equalize(np.zeros((2, 8)), 48_000, highpass=(0.0, 12)),
            r"highpass cutoff_hz: got 0.0",
            id="equalize-highpass",
        ),
        pytest.param(
            lambda: equalize(np.zeros((2, 8)), 44_100, [Band("peak", 23_000.0)]),
            r"< 22050 \(Nyquist\)",
            id="equalize-band",
        ),
        pytest.param(
            lambda: equalize(np.zeros((3, 8)), 48_000),
            r"equalizer channels: got 3, expected 1 or 2",
            id="three-channels",
        ),
        pytest.param(
            lambda: equalize(np.zeros(8), 48_000),
            r"equalize x: got shape \(8,\), expected \(channels 1 or 2, samples\)",
            id="one-dimensional",
        ),
        pytest.param(
            lambda: Equalizer(48_000, 2).process(np.zeros((1, 8))),
            r"equalizer block: got shape \(1, 8\), expected \(2, samples\)",
            id="block-channels",
        ),
        pytest.param(
            lambda: Equalizer(48_000, 1).process(np.zeros(8)),
            r"equalizer block: got shape \(8,\), expected \(1, samples\)",
            id="block-one-dimensional",
        ),
    ],
)
def test_invalid_parameters_raise(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("channels", [1, 2])
def test_cascade_is_bit_identical_to_sosfilt(channels: int) -> None:
    """The kernel repeats sosfilt's transposed direct form II operation for operation, on
    one channel or two side by side, so its bits equal scipy's (the claim that lets it
    replace sosfilt)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.9, 0.9, (channels, 20_000))
    bands = [Band("low_shelf", 120.0, 3.0), Band("peak", 400.0, -4.0, q=2.0)]
    y = equalize(x, 48_000, bands, highpass=(30.0, 24))
    sos = np.concatenate(
        [pass_sos("highpass", 30.0, 24, 48_000), *(band_sos(b, 48_000) for b in bands)]
    )
    assert np.array_equal(y, scipy.signal.sosfilt(sos, x, axis=-1))


def test_sosfilt_is_scipys_to_the_bit_with_its_state() -> None:
    """``sosfilt`` on one signal and on two channels in two blocks, carrying ``zi``, gives
    scipy's bits and scipy's final state; three channels are refused."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.9, 0.9, (2, 5_000))
    sos = np.concatenate(
        [pass_sos("lowpass", 5_000.0, 36, 48_000), band_sos(Band("notch", 60.0), 48_000)]
    )
    assert np.array_equal(sosfilt(sos, x[0]), scipy.signal.sosfilt(sos, x[0]))
    zi = np.zeros((len(sos), 2, 2))
    blocks = [sosfilt(sos, x[:, :1_234], zi), sosfilt(sos, x[:, 1_234:], zi)]
    expected, final = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.zeros((len(sos), 2, 2)))
    assert np.array_equal(np.concatenate(blocks, axis=1), expected)
    assert np.array_equal(zi, final)
    with pytest.raises(ValueError, match=r"expected \[n\] or \[1 or 2, n\]"):
        sosfilt(sos, np.zeros((3, 10)))


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sections", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17])
def test_every_cascade_length_is_scipys_to_the_bit(channels: int, sections: int) -> None:
    """The emitted loop has one unrolled body per channel count and section count up to
    ``MOST_SECTIONS`` and runs longer cascades in parts: each is scipy's, with its state,
    over a block of one sample and one of many."""
    assert MOST_SECTIONS == 8  # the lengths above cross the part boundary at 8 and 16
    rng = np.random.default_rng(sections)
    designs = [
        band_sos(Band("peak", 300.0 * (k + 1), -6.0 + k, q=0.7 + 0.2 * k), 44_100)
        for k in range(sections)
    ]
    sos = np.concatenate(designs)
    x = rng.uniform(-0.9, 0.9, (channels, 3_001))
    zi = np.zeros((sections, channels, 2))
    blocks = [sosfilt(sos, x[:, :1], zi), sosfilt(sos, x[:, 1:], zi)]
    expected, final = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.zeros((sections, channels, 2)))
    assert np.array_equal(np.concatenate(blocks, axis=1), expected)
    assert np.array_equal(zi, final)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sections", [1, 4, 8, 9, 17])
def test_two_equalizers_side_by_side_are_each_their_own_bits(channels: int, sections: int) -> None:
    """``filter_pair`` runs two equalizers' cascades in one loop, each in its own lanes with
    its own coefficients and state: block after block, each gets what its own ``process``
    gives; equalizers that do not pair are refused."""
    rng = np.random.default_rng(sections)

    def bands(shift: float) -> list[Band]:
        return [Band("peak", shift * 200.0 * (k + 1), 4.0 - k, q=0.8) for k in range(sections)]

    made = [Equalizer(44_100, channels, bands(shift)) for shift in (1.0, 1.3, 1.0, 1.3)]
    first, second, first_alone, second_alone = made
    assert first.pairs_with(second)
    for n in (1, 3_001, 0, 500):
        x = rng.uniform(-0.9, 0.9, (2 * channels, n))
        y = filter_pair(first, second, x)
        assert np.array_equal(y[:channels], first_alone.process(x[:channels]))
        assert np.array_equal(y[channels:], second_alone.process(x[channels:]))
    assert not first.pairs_with(Equalizer(44_100, channels, bands(1.0)[1:]))
    assert not first.pairs_with(Equalizer(44_100, 3 - channels, bands(1.0)))
    with pytest.raises(ValueError, match="equalizer pair: got shape"):
        filter_pair(first, second, np.zeros((channels, 10)))


def test_cascade_kernel_reads_and_writes_strided_rows_in_place() -> None:
    """The delay runs the kernel on column slices of its ring (rows not adjacent) and may
    filter a block onto itself: both give scipy's bits."""
    rng = np.random.default_rng(11)
    sos = np.concatenate(
        [pass_sos("lowpass", 6_000.0, 24, 48_000), pass_sos("highpass", 80.0, 12, 48_000)]
    )
    ring = rng.uniform(-0.9, 0.9, (2, 4_000))
    before = ring.copy()
    x = ring[:, 1_000:3_000]  # a view: each row's samples 4000 apart from the other row's
    expected = scipy.signal.sosfilt(sos, x, axis=-1)
    zi = np.zeros((len(sos), 2, 2))
    _sosfilt(sos, x, zi, x)
    assert np.array_equal(x, expected)
    assert np.array_equal(
        np.delete(ring, np.s_[1_000:3_000], axis=1), np.delete(before, np.s_[1_000:3_000], axis=1)
    )


@pytest.mark.parametrize("slope_db_per_oct", PASS_SLOPES_DB_PER_OCT)
@pytest.mark.parametrize("kind", ["highpass", "lowpass"])
@pytest.mark.parametrize("cutoff_hz", [20.0, 1_000.0, 18_000.0])
def test_pass_filter_is_scipys_butterworth(
    kind: str, slope_db_per_oct: int, cutoff_hz: float
) -> None:
    """The closed-form sections have the poles and zeros ``scipy.signal.butter`` designs: the
    same power response, to the rounding of the coefficients (1e-8 where the response is
    above -60 dB; both designs land about 4e-9 from the exact one at 20 Hz)."""
    sample_rate, order = 48_000, slope_db_per_oct // 6
    ours = pass_sos(kind, cutoff_hz, slope_db_per_oct, sample_rate)  # type: ignore[arg-type]
    scipys = scipy.signal.butter(order, cutoff_hz, kind, fs=sample_rate, output="sos")
    radians = 2.0 * math.pi * np.geomspace(5.0, 23_900.0, 500) / sample_rate
    reference = sos_power(scipys, radians)
    heard = reference > 1e-6
    np.testing.assert_allclose(sos_power(ours, radians)[heard], reference[heard], rtol=1e-8)
    assert ours.shape == (math.ceil(order / 2), 6)


@pytest.mark.parametrize("kind", ["highpass", "lowpass"])
@pytest.mark.parametrize("slope_db_per_oct", [12, 18, 48])
def test_sosfiltfilt_is_scipys_without_padding(kind: str, slope_db_per_oct: int) -> None:
    """Forwards and backwards, each pass from its steady state for the sample it starts on:
    ``scipy.signal.sosfiltfilt(padtype=None)``, to rounding (the steady states cancel a
    DC gain near 0 for a high-pass, in scipy's linear solve and in the closed form alike:
    both ~1e-11 from exact)."""
    sos = pass_sos(kind, 120.0, slope_db_per_oct, 48_000)  # type: ignore[arg-type]
    x = np.random.default_rng(8).uniform(-1.0, 1.0, 20_000)
    expected = scipy.signal.sosfiltfilt(sos, x, padtype=None)
    np.testing.assert_allclose(sosfiltfilt(sos, x), expected, rtol=0, atol=1e-10)

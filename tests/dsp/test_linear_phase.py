"""Linear-phase EQ: the FIRs' magnitudes against ``sosfreqz`` of the minimum-phase design,
exact symmetry (hence constant group delay), the processor against plain convolution with
the FIR it states, each routed path measured against ``Equalizer``, and blocks against one
call, bit for bit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import scipy.signal

from render.dsp.eq import Band, band_sos, equalize, pass_sos
from render.dsp.levels import db_to_gain
from render.dsp.linear_phase import (
    BLOCK_SAMPLES,
    LinearPhaseEqualizer,
    equalize_linear_phase,
    linear_phase_latency_samples,
    linear_phase_tail_samples,
)
from tests.dsp.streaming import edges_from_sizes, process_in_blocks

SAMPLE_RATES = (44_100, 48_000, 96_000)
Passes = dict[str, tuple[float, int]]

# The design's promise (render.dsp.linear_phase.TOLERANCE_DB and FLOOR_DB): within 0.1 dB of
# |H| (both ways, so the bound is the tighter, downward side), a few times below the smallest
# level change anyone hears; below -40 dB, as close as 0.1 dB of -40 dB (a notch's bottom or
# a stopband is kept out of earshot, not matched in dB).
TOLERANCE = 1.0 - db_to_gain(-0.1)
FLOOR = db_to_gain(-40.0)
CHECKED_FROM_HZ = 20.0  # the design promises nothing below the limit of hearing
# FFT convolution rounds each output to ~1e-16 of the signal's size times log2 of the FFT
# size; 1e-12 leaves 3 orders of margin and still catches any wrong tap or misplaced block.
ROUNDING = 1e-12

TYPICAL_BANDS = (
    Band("low_shelf", 80.0, 2.0),
    Band("peak", 3_000.0, -1.5, q=1.2),
    Band("high_shelf", 12_000.0, 1.0),
)
TYPICAL_PASSES: Passes = {"highpass": (25.0, 12)}
MOVES: dict[str, tuple[tuple[Band, ...], Passes]] = {
    "typical-mastering": (TYPICAL_BANDS, TYPICAL_PASSES),
    # Mains hum: the signed amplitude keeps the notch a notch (|H| alone leaves it ~20 dB deep).
    "hum-notch-50hz": ((Band("notch", 50.0, q=8.0),), {}),
    "narrow-low-bell": ((Band("peak", 30.0, 4.0, q=6.0),), {}),
    "steep-passes": ((), {"highpass": (30.0, 48), "lowpass": (18_000.0, 48)}),
}


def cascade(sample_rate: int, bands: Sequence[Band], passes: Passes) -> np.ndarray:
    """The minimum-phase sections in series: passes first, then the bands."""
    parts = [pass_sos(kind, *spec, sample_rate) for kind, spec in passes.items()]  # type: ignore[arg-type]
    parts += [band_sos(band, sample_rate) for band in bands]
    return np.concatenate(parts) if parts else np.empty((0, 6))


def assert_within_tolerance(got: np.ndarray, target: np.ndarray) -> None:
    np.testing.assert_array_less(np.abs(got - target), TOLERANCE * np.maximum(target, FLOOR))


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("moves", MOVES, ids=str)
def test_fir_magnitude_matches_the_cascade(moves: str, sample_rate: int) -> None:
    """``freqz`` of the taps against ``sosfreqz`` of the sections, on a grid 4x denser than the
    design's (0.09 Hz at 48 kHz) from 20 Hz to 0.45 fs, and on 2001 points within 2 % of every
    band's centre and cutoff (0.001 Hz apart at 50 Hz; a chirp-z transform, within 1e-12 of
    ``freqz``), where a notch's magnitude plunges between the grid's points."""
    bands, passes = MOVES[moves]
    taps = LinearPhaseEqualizer(sample_rate, 2, bands, **passes).taps
    assert taps.shape[0] == 1  # stereo bands only: one path for both channels
    frequencies_hz, fir = scipy.signal.freqz(taps[0], worN=2**18, fs=sample_rate)
    keep = (frequencies_hz >= CHECKED_FROM_HZ) & (frequencies_hz <= 0.45 * sample_rate)
    grids, responses = [frequencies_hz[keep]], [fir[keep]]
    for centre_hz in [b.frequency_hz for b in bands] + [cutoff for cutoff, _ in passes.values()]:
        span_hz = [0.98 * centre_hz, 1.02 * centre_hz]
        grids.append(np.linspace(*span_hz, 2_001))
        responses.append(
            scipy.signal.zoom_fft(taps[0], span_hz, 2_001, fs=sample_rate, endpoint=True)
        )
    frequencies_hz = np.concatenate(grids)
    sos = cascade(sample_rate, bands, passes)
    target = np.abs(scipy.signal.sosfreqz(sos, worN=frequencies_hz, fs=sample_rate)[1])
    assert_within_tolerance(np.abs(np.concatenate(responses)), target)


ROUTED_HZ = {"stereo": 1_000.0, "mid": 700.0, "side": 2_500.0, "left": 300.0, "right": 5_000.0}
ROUTINGS = [*((name,) for name in ROUTED_HZ), ("mid", "side", "left", "right")]
# The 35 Hz bell rings long enough to need 32767 taps at 48 kHz: four partitions, so the
# spectra delay line turns (with two, its two directions would coincide).
SHARED_BANDS = (
    Band("peak", 35.0, 3.0, q=4.0),
    Band("high_shelf", 8_000.0, -4.0),
    Band("notch", 3_000.0, q=8.0),
)
PASSES: Passes = {"highpass": (40.0, 24), "lowpass": (16_000.0, 12)}


def routed_bands(routings: Sequence[str]) -> list[Band]:
    """The shared bands and one peak per routing, each at its own centre, so a band in the
    wrong path changes that path's magnitude."""
    return [
        *SHARED_BANDS,
        *(Band("peak", ROUTED_HZ[name], 6.0, q=2.0, channels=name) for name in routings),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routings", ROUTINGS, ids="+".join)
def test_taps_are_symmetric_so_group_delay_is_the_latency(
    routings: tuple[str, ...], n_channels: int
) -> None:
    """h[k] = h[N-1-k] to the bit with N odd: a type I FIR, H = A(w) e^(-jw(N-1)/2) with A
    real (Oppenheim & Schafer §5.7.3), so its group delay is (N-1)/2 at every frequency; the
    processor adds one block, and reports the same latency as the engine's query."""
    bands = routed_bands(routings)
    equalizer = LinearPhaseEqualizer(48_000, n_channels, bands, **PASSES)
    taps = equalizer.taps
    length = taps.shape[1]
    assert length % 2 == 1
    np.testing.assert_array_equal(taps, taps[:, ::-1])
    frequencies_hz = [100.0, 1_000.0, 10_000.0]  # away from the notch, where it is undefined
    for fir in taps:
        _, delay = scipy.signal.group_delay((fir, [1.0]), w=frequencies_hz, fs=48_000)
        # A ratio of two DTFT sums: rounding of ~1e-16 * N relative; 1e-6 samples is ample.
        np.testing.assert_allclose(delay, (length - 1) / 2, atol=1e-6)
    latency = (length - 1) // 2 + BLOCK_SAMPLES
    assert equalizer.latency_samples == latency
    assert linear_phase_latency_samples(48_000, bands, **PASSES) == latency


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routings", [("stereo",), ("left", "right")], ids="+".join)
def test_processor_is_the_stated_causal_fir(
    rng: np.random.Generator, routings: tuple[str, ...], n_channels: int
) -> None:
    """y[n] = sum_k g[k] x[n - k], g = BLOCK_SAMPLES zeros then the taps, over three blocks
    and a part: against ``fftconvolve`` (one transform of the whole signal, no partitions, no
    blocks; direct convolution agrees to 1e-14 but takes seconds)."""
    x = rng.standard_normal((n_channels, 3 * BLOCK_SAMPLES + 1_234))
    equalizer = LinearPhaseEqualizer(48_000, n_channels, routed_bands(routings), **PASSES)
    y = equalizer.process(x)
    # Mono folds left and right into one path; stereo has one FIR per channel here.
    taps = equalizer.taps if len(equalizer.taps) == n_channels else equalizer.taps[[0, 0]]
    for channel in range(n_channels):
        g = np.concatenate([np.zeros(BLOCK_SAMPLES), taps[channel]])
        expected = scipy.signal.fftconvolve(x[channel], g)[: x.shape[1]]
        np.testing.assert_allclose(y[channel], expected, rtol=0, atol=ROUNDING * np.abs(g).sum())


def test_impulse_peaks_at_the_latency() -> None:
    """A gentle EQ's response is a narrow, symmetric pulse: its peak is its centre."""
    x = np.zeros((2, 4 * BLOCK_SAMPLES))
    x[:, 0] = 1.0
    equalizer = LinearPhaseEqualizer(48_000, 2, TYPICAL_BANDS)
    y = equalizer.process(x)
    assert np.argmax(np.abs(y[0])) == np.argmax(np.abs(y[1])) == equalizer.latency_samples


def excitations(routings: Sequence[str], n_channels: int) -> list[np.ndarray]:
    """Inputs that drive one path each: M alone (L = R) and S alone (L = -R) when mid/side
    bands are present, else left alone and right alone; a mono channel."""
    if n_channels == 1:
        return [np.array([1.0])]
    if {"mid", "side"} & set(routings):
        return [np.array([1.0, 1.0]), np.array([1.0, -1.0])]
    return [np.array([1.0, 0.0]), np.array([0.0, 1.0])]


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routings", ROUTINGS, ids="+".join)
def test_each_path_has_the_minimum_phase_magnitude_and_zero_phase(
    routings: tuple[str, ...], n_channels: int
) -> None:
    """Per path (M or S, L or R, mono) the impulse response's spectrum has ``Equalizer``'s
    magnitude, and once advanced by the latency it is real: zero phase. (Across paths, as L
    to R through mid/side bands, magnitudes differ by design: the minimum-phase paths sum
    with their phase shifts, the linear-phase ones without.)"""
    n = 2**16  # holds the whole FIR with its latency, and the IIR's decay to below 1e-9
    bands = routed_bands(routings)
    frequencies_hz = np.fft.rfftfreq(n, 1.0 / 48_000)
    keep = (frequencies_hz >= CHECKED_FROM_HZ) & (frequencies_hz <= 0.45 * 48_000)
    for excitation in excitations(routings, n_channels):
        x = np.zeros((n_channels, n))
        x[:, 0] = excitation
        equalizer = LinearPhaseEqualizer(48_000, n_channels, bands, **PASSES)
        linear = np.fft.rfft(equalizer.process(x), axis=-1)
        minimum = np.abs(np.fft.rfft(equalize(x, 48_000, bands, **PASSES), axis=-1))
        assert_within_tolerance(np.abs(linear[:, keep]), minimum[:, keep])
        aligned = linear * np.exp(2j * np.pi * frequencies_hz / 48_000 * equalizer.latency_samples)
        # The taps are symmetric to the bit; rounding in the FFTs leaves ~1e-13 of imaginary.
        np.testing.assert_allclose(aligned.imag, 0.0, atol=1e-9 * np.abs(aligned).max())


@pytest.mark.parametrize(
    ("n_channels", "routing", "excitation", "untouched"),
    [
        (2, "side", (1.0, 1.0), True),  # L = R has no side
        (2, "side", (1.0, -1.0), False),  # pure side: all of it is filtered
        (2, "mid", (1.0, -1.0), True),  # L = -R has no mid
        (1, "side", (1.0,), True),  # mono has no side
    ],
    ids=["side-on-mono-compatible", "side-on-side", "mid-on-side", "side-on-mono"],
)
def test_mid_side_bands_act_only_on_their_signal(
    rng: np.random.Generator,
    n_channels: int,
    routing: str,
    excitation: tuple[float, ...],
    untouched: bool,
) -> None:
    """With no M (or S) in the signal, its path contributes exact zeros, and the other path
    is a pure delay: the output is the input, ``latency_samples`` late, up to FFT rounding."""
    x = np.outer(excitation, rng.standard_normal(2 * BLOCK_SAMPLES))
    bands = [
        Band("low_shelf", 200.0, -6.0, channels=routing),  # type: ignore[arg-type]
        Band("peak", 1_000.0, 9.0, channels=routing),  # type: ignore[arg-type]
    ]
    equalizer = LinearPhaseEqualizer(48_000, n_channels, bands)
    latency = equalizer.latency_samples
    change = equalizer.process(x)[:, latency:] - x[:, :-latency]
    if untouched:
        np.testing.assert_allclose(change, 0.0, atol=ROUNDING)
    else:  # a 9 dB bell and a 6 dB shelf move the noise by far more than 10 % of it
        assert np.abs(change).max() > 0.1 * np.abs(x).max()


def block_edges(kind: str, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks covering ``n`` samples."""
    if kind == "tiny-first":
        sizes = [0, 1, 0, 1, 1, 2, 0, 3] * 8  # then the rest in one block
    elif kind == "random":
        sizes = list(rng.integers(0, 3_000, n // 1_000))  # 0 included: some blocks are empty
    elif kind == "block-aligned":
        sizes = [BLOCK_SAMPLES] * (n // BLOCK_SAMPLES)
    else:  # straddling every block edge by one sample
        sizes = [BLOCK_SAMPLES - 1, 2] * (n // BLOCK_SAMPLES)
    return edges_from_sizes(sizes, n)


@pytest.mark.parametrize("kind", ["tiny-first", "random", "block-aligned", "straddling"])
@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("routings", [("stereo",), ("left",), ("mid", "side", "left", "right")])
def test_blocks_equal_one_call(
    rng: np.random.Generator, routings: tuple[str, ...], n_channels: int, kind: str
) -> None:
    """Input is gathered into fixed blocks counted from the first sample and every block is
    transformed alike, so any split gives the very same bits (exact)."""
    x = rng.standard_normal((n_channels, 3 * BLOCK_SAMPLES + 1_234))
    bands = routed_bands(routings)
    equalizer = LinearPhaseEqualizer(48_000, n_channels, bands, **PASSES)
    edges = block_edges(kind, x.shape[1], rng)
    np.testing.assert_array_equal(
        process_in_blocks(equalizer.process, x, edges),
        equalize_linear_phase(x, 48_000, bands, **PASSES),
    )


@pytest.mark.parametrize("n_channels", [1, 2])
def test_the_engines_recipe_gives_the_zero_phase_filter(
    rng: np.random.Generator, n_channels: int
) -> None:
    """Pad the input with the tail and the latency, drop the latency: the result is the
    zero-phase filtering, h centred on each sample, ringing ``tail`` samples past the end."""
    x = rng.standard_normal((n_channels, 5_000))
    latency = linear_phase_latency_samples(48_000, TYPICAL_BANDS, **TYPICAL_PASSES)
    tail = linear_phase_tail_samples(48_000, TYPICAL_BANDS, **TYPICAL_PASSES)
    padded = np.pad(x, ((0, 0), (0, tail + latency)))
    y = equalize_linear_phase(padded, 48_000, TYPICAL_BANDS, **TYPICAL_PASSES)[:, latency:]
    taps = LinearPhaseEqualizer(48_000, n_channels, TYPICAL_BANDS, **TYPICAL_PASSES).taps[0]
    assert tail == (len(taps) - 1) // 2
    for channel in range(n_channels):
        centred = np.convolve(x[channel], taps)[tail : tail + x.shape[1] + tail]
        np.testing.assert_allclose(y[channel], centred, rtol=0, atol=ROUNDING)


def test_lower_moves_get_longer_firs() -> None:
    """A bell rings for about Q / (pi f0) seconds, so the FIR that holds its response grows as
    it moves down (and the typical mastering moves stay well inside the 1.5 s limit)."""
    lengths = [
        LinearPhaseEqualizer(48_000, 2, [Band("peak", frequency_hz, 6.0, q=4.0)]).taps.shape[1]
        for frequency_hz in (3_000.0, 300.0, 30.0)
    ]
    assert lengths == sorted(set(lengths))
    typical = LinearPhaseEqualizer(48_000, 2, TYPICAL_BANDS, **TYPICAL_PASSES).taps.shape[1]
    assert all(math.log2(n + 1).is_integer() for n in [*lengths, typical])
    assert typical < 48_000 // 4


@pytest.mark.parametrize("n_channels", [1, 2])
@pytest.mark.parametrize("n", [0, 1, 5_000])
def test_input_is_not_modified(rng: np.random.Generator, n_channels: int, n: int) -> None:
    x = rng.standard_normal((n_channels, n))
    before = x.copy()
    y = equalize_linear_phase(x, 48_000, routed_bands(["mid"]), **PASSES)
    np.testing.assert_array_equal(x, before)
    assert y.shape == x.shape and y.dtype == np.float64
    assert not np.shares_memory(x, y)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: LinearPhaseEqualizer(48_000, 3),
            r"linear-phase equalizer channels: got 3, expected 1 or 2",
            id="channels",
        ),
        pytest.param(
            lambda: LinearPhaseEqualizer(48_000, 2).process(np.zeros((1, 8))),
            r"linear-phase equalizer block: got shape \(1, 8\), expected \(2, samples\)",
            id="block-shape",
        ),
        pytest.param(
            lambda: equalize_linear_phase(np.zeros(8), 48_000),
            r"equalize_linear_phase x: got shape \(8,\), expected \(channels 1 or 2, samples\)",
            id="one-dimensional",
        ),
        pytest.param(
            lambda: linear_phase_latency_samples(44_100, [Band("peak", 23_000.0)]),
            r"got 23000.0, expected .* < 22050 \(Nyquist\)",
            id="nyquist",
        ),
    ],
)
def test_errors_name_the_value_and_the_range(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]

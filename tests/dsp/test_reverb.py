"""Synthetic IR and convolution reverb, against ISO 3382-1 decay analysis and np.convolve."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from render.dsp.reverb import (
    PARTITION,
    ConvolutionReverb,
    reverb_tail_samples,
    reverberate,
    synthetic_ir,
    synthetic_ir_samples,
)
from tests.dsp.streaming import edges_from_sizes, process_in_blocks

SAMPLE_RATES = [44_100, 48_000, 96_000]


def _ir(sample_rate: int = 48_000, seed: int = 7, **overrides: float) -> np.ndarray:
    parameters = {"decay_s": 1.8, "predelay_ms": 0.0, "damping": 0.5, "size": 0.5, "width": 1.0}
    parameters.update(overrides)
    return synthetic_ir(sample_rate, rng=np.random.default_rng(seed), **parameters)


def _t30_s(h: np.ndarray, sample_rate: int) -> float:
    """T30 by Schroeder backward integration (JASA 37(3), 1965): least-squares line through
    the -5 to -35 dB span of the energy decay curve, extrapolated to 60 dB (ISO 3382-1)."""
    decay = np.cumsum(h[::-1] ** 2)[::-1]
    level_db = 10.0 * np.log10(decay / decay[0])
    span = (level_db <= -5.0) & (level_db >= -35.0)
    t = np.arange(len(h)) / sample_rate
    return -60.0 / np.polyfit(t[span], level_db[span], 1)[0]


def _octave(h: np.ndarray, centre_hz: float, sample_rate: int) -> np.ndarray:
    """An octave band: 6th-order Butterworth band-pass, edges at centre / and * sqrt(2)."""
    edges = [centre_hz / math.sqrt(2.0), centre_hz * math.sqrt(2.0)]
    return signal.sosfilt(signal.butter(3, edges, "bandpass", fs=sample_rate, output="sos"), h)


@pytest.mark.parametrize("damping", [0.0, 0.7])
@pytest.mark.parametrize("decay_s", [0.3, 1.0, 1.8, 4.0])
def test_broadband_t30_is_the_decay(decay_s: float, damping: float) -> None:
    # 10 %: the acceptance bound; one noise realisation scatters T30 by a few per cent.
    ir = _ir(decay_s=decay_s, damping=damping)
    for channel in ir:
        assert _t30_s(channel, 48_000) == pytest.approx(decay_s, rel=0.10)


@pytest.mark.parametrize("damping", [0.0, 0.5, 0.7, 1.0])
def test_damping_shortens_the_high_band(damping: float) -> None:
    # The 8 kHz octave lies wholly in the high band and 250 Hz in the low band, so their
    # T30 ratio is the designed 1 - 0.75 * damping; 10 % covers the realisation's scatter and
    # the octave filters' own ringing.
    ir = _ir(damping=damping)
    high, low = (_t30_s(_octave(ir[0], f, 48_000), 48_000) for f in (8000.0, 250.0))
    assert high / low == pytest.approx(1.0 - 0.75 * damping, rel=0.10)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert _ir(seed=3).tobytes() == _ir(seed=3).tobytes()
    assert _ir(seed=3).tobytes() != _ir(seed=4).tobytes()


@pytest.mark.parametrize("predelay_ms", [0.0, 12.34, 20.0, 150.0])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_predelay_is_silence_then_the_first_reflection(
    sample_rate: int, predelay_ms: float
) -> None:
    ir = _ir(sample_rate, decay_s=0.3, predelay_ms=predelay_ms)
    first = round(predelay_ms * sample_rate / 1000.0)
    for channel in ir:
        assert np.flatnonzero(channel)[0] == first


@pytest.mark.parametrize("damping", [0.0, 1.0])
def test_length_is_predelay_plus_the_low_band_falling_90_db(damping: float) -> None:
    # Undamped, both bands ring for decay_s: length = predelay + ceil(1.5 * decay_s * fs).
    # Damped, the low band rings longer (to keep the broadband T30), so the IR is longer.
    ir = _ir(decay_s=1.0, predelay_ms=10.0, damping=damping)
    undamped = 480 + math.ceil(1.5 * 1.0 * 48_000)
    assert ir.shape[1] == undamped if damping == 0.0 else ir.shape[1] > undamped


@pytest.mark.parametrize("width", [0.0, 0.5, 1.0])
def test_width_sets_the_channel_correlation(width: float) -> None:
    # L, R = M +- w S with independent M and S of equal energy: correlation
    # (1 - w**2) / (1 + w**2). 0.05: the sampling scatter of one IR's correlation.
    ir = _ir(width=width)
    if width == 0.0:
        np.testing.assert_array_equal(ir[0], ir[1])
    correlation = np.sum(ir[0] * ir[1]) / np.sqrt(np.sum(ir[0] ** 2) * np.sum(ir[1] ** 2))
    assert correlation == pytest.approx((1 - width**2) / (1 + width**2), abs=0.05)


@pytest.mark.parametrize("overrides", [{}, {"decay_s": 0.3, "size": 1.0}, {"width": 0.0}])
def test_each_channel_has_unit_energy(overrides: dict[str, float]) -> None:
    np.testing.assert_allclose(np.sum(_ir(**overrides) ** 2, axis=1), 1.0, rtol=1e-12)


def test_tail_is_the_ir_length() -> None:
    ir = _ir(decay_s=0.5, predelay_ms=30.0)
    assert reverb_tail_samples(ir) == ir.shape[1]


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize(
    "settings",
    [
        {"decay_s": 0.05, "predelay_ms": 0.0, "damping": 0.0},
        {"decay_s": 1.8, "predelay_ms": 20.0, "damping": 0.5},
        {"decay_s": 7.0, "predelay_ms": 150.0, "damping": 1.0},
    ],
)
def test_the_ir_length_is_known_without_making_it(
    sample_rate: int, settings: dict[str, float]
) -> None:
    """A render works out a synthetic reverb's tail before it starts, from the settings
    alone: the length must be that of the IR it makes later, whatever its size and width."""
    for size, width in ((0.0, 1.0), (1.0, 0.0)):
        ir = _ir(sample_rate=sample_rate, size=size, width=width, **settings)
        assert synthetic_ir_samples(sample_rate, **settings) == ir.shape[1]


@pytest.mark.parametrize(
    ("n", "m"),
    [(2000, 300), (1000, 3000), (50_000, 100)],
    ids=["short", "ir-longer-than-x", "many-blocks"],
)
@pytest.mark.parametrize("channels", [1, 2])
def test_reverberate_equals_np_convolve(
    rng: np.random.Generator, channels: int, n: int, m: int
) -> None:
    # 1e-12: FFT convolution rounding on unit-scale signals; a misplaced block is O(1).
    x = rng.standard_normal((channels, n))
    ir = rng.standard_normal((2, m)) / math.sqrt(m)
    wet = np.stack([np.convolve(x[c], ir[c])[:n] for c in range(channels)])
    y = reverberate(x, ir, mix=0.3, sample_rate=48_000)
    np.testing.assert_allclose(y, 0.7 * x + 0.3 * wet, rtol=0, atol=1e-12)


def test_a_mono_ir_serves_both_channels(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 1000))
    ir = rng.standard_normal((1, 200)) / math.sqrt(200)
    wet = np.stack([np.convolve(channel, ir[0])[:1000] for channel in x])
    np.testing.assert_allclose(reverberate(x, ir, mix=1.0, sample_rate=48_000), wet, atol=1e-12)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_filters_apply_to_the_wet_signal_only(rng: np.random.Generator, sample_rate: int) -> None:
    # Reference built from scipy.signal.butter directly: 2nd-order high-pass then low-pass.
    x = rng.standard_normal((2, 3000))
    ir = rng.standard_normal((2, 400)) / 20.0
    sos = np.vstack(
        [
            signal.butter(2, 150.0, "highpass", fs=sample_rate, output="sos"),
            signal.butter(2, 6000.0, "lowpass", fs=sample_rate, output="sos"),
        ]
    )
    wet = signal.sosfilt(sos, np.stack([np.convolve(x[c], ir[c])[:3000] for c in range(2)]))
    y = reverberate(x, ir, mix=0.4, sample_rate=sample_rate, highpass_hz=150.0, lowpass_hz=6000.0)
    np.testing.assert_allclose(y, 0.6 * x + 0.4 * wet, rtol=0, atol=1e-12)


def test_mix_zero_returns_x_and_input_is_untouched(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 2000))
    before = x.copy()
    ir = _ir(decay_s=0.2)
    np.testing.assert_array_equal(reverberate(x, ir, mix=0.0, sample_rate=48_000), x)
    reverberate(x, ir, mix=0.5, sample_rate=48_000, lowpass_hz=5000.0)
    np.testing.assert_array_equal(x, before)


def test_blocks_of_whole_partitions_equal_the_whole_signal(rng: np.random.Generator) -> None:
    """An IR three partitions long and a signal cut into blocks of one, two and one
    partitions plus a short rest: the same bits as the whole signal at once."""
    n = 4 * PARTITION + 1234
    x = rng.standard_normal((2, n))
    ir = rng.standard_normal((2, 2 * PARTITION + 17)) / PARTITION
    settings = {"mix": 0.4, "sample_rate": 48_000, "highpass_hz": 100.0, "lowpass_hz": 9000.0}
    streamed = ConvolutionReverb(ir, 2, **settings)
    edges = edges_from_sizes([PARTITION, 2 * PARTITION, PARTITION], n)
    whole = reverberate(x, ir, **settings)
    np.testing.assert_array_equal(process_in_blocks(streamed.process, x, edges), whole)
    # Several IR and input partitions against one FFT over everything (1e-12: rounding).
    reference = signal.fftconvolve(x, ir, axes=-1)[:, :n]
    wet = reverberate(x, ir, mix=1.0, sample_rate=48_000)
    np.testing.assert_allclose(wet, reference, rtol=0, atol=1e-12)


def test_a_block_after_a_short_one_is_refused(rng: np.random.Generator) -> None:
    reverb = ConvolutionReverb(rng.standard_normal((2, 100)), 2, 0.5, 48_000)
    reverb.process(np.zeros((2, 1000)))
    with pytest.raises(ValueError, match="only the last block may be shorter"):
        reverb.process(np.zeros((2, 1000)))

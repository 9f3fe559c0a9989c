"""Mid/side width: side scaling by the amount, and a mono low end that leaves the mid alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from render.dsp.stereo import width

SAMPLE_RATES = [44_100, 48_000, 96_000]


def _mid_side(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (x[0] + x[1]) / 2.0, (x[0] - x[1]) / 2.0


def _phasor(y: np.ndarray, frequency_hz: float, sample_rate: int) -> complex:
    """The ``frequency_hz`` component of ``y`` as a complex amplitude (least-squares fit)."""
    t = np.arange(len(y)) / sample_rate
    basis = np.stack([np.cos(2 * np.pi * frequency_hz * t), np.sin(2 * np.pi * frequency_hz * t)])
    cosine, sine = np.linalg.lstsq(basis.T, y, rcond=None)[0]
    return complex(cosine, -sine)


def test_amount_one_returns_x(rng: np.random.Generator) -> None:
    # 1e-12: (L+R)/2 + (L-R)/2 rounds to within an ulp of L.
    x = rng.standard_normal((2, 4000))
    np.testing.assert_allclose(width(x, 48_000, amount=1.0), x, rtol=0, atol=1e-12)


def test_amount_zero_folds_to_mono(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 4000))
    y = width(x, 48_000, amount=0.0)
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_allclose(y[0], (x[0] + x[1]) / 2.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("amount", [0.0, 0.5, 1.3, 2.0])
def test_amount_scales_the_side_and_keeps_the_mid(rng: np.random.Generator, amount: float) -> None:
    x = rng.standard_normal((2, 4000))
    mid, side = _mid_side(x)
    out_mid, out_side = _mid_side(width(x, 48_000, amount=amount))
    np.testing.assert_allclose(out_mid, mid, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out_side, amount * side, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ratio", [0.25, 4.0])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_bass_mono_removes_the_low_side_with_zero_phase(sample_rate: int, ratio: float) -> None:
    # Side alone (L = -R) at cutoff/4 and 4*cutoff. Forward-backward 2nd-order Butterworth:
    # |H|**2 with the bilinear map w -> tan(w/2), i.e. W**4 / (W**4 + Wc**4): -48.2 dB at
    # cutoff/4, -0.03 dB at 4*cutoff, and no phase shift (a causal filter of this slope turns
    # the side by 41 degrees at 4*cutoff). A steady tone's fit is exact to rounding, so the
    # tolerances (1e-4 dB, 1e-4 degrees) only absorb that.
    cutoff_hz = 120.0
    frequency_hz = ratio * cutoff_hz
    tone = 0.5 * np.cos(2 * np.pi * frequency_hz * np.arange(sample_rate) / sample_rate)
    y = width(np.stack([tone, -tone]), sample_rate, amount=1.0, bass_mono_hz=cutoff_hz)
    steady = slice(sample_rate // 4, 3 * sample_rate // 4)
    gain = _phasor(_mid_side(y)[1][steady], frequency_hz, sample_rate) / _phasor(
        tone[steady], frequency_hz, sample_rate
    )
    warp, warp_cutoff = (math.tan(math.pi * f / sample_rate) for f in (frequency_hz, cutoff_hz))
    expected_db = 20 * math.log10(warp**4 / (warp**4 + warp_cutoff**4))
    assert 20 * math.log10(abs(gain)) == pytest.approx(expected_db, abs=1e-4)
    assert math.degrees(np.angle(gain)) == pytest.approx(0.0, abs=1e-4)
    assert expected_db < -48.0 if ratio < 1 else expected_db > -0.04


@pytest.mark.parametrize("amount", [0.5, 1.0, 2.0])
def test_bass_mono_leaves_the_mid_untouched(rng: np.random.Generator, amount: float) -> None:
    x = rng.standard_normal((2, 6000))
    y = width(x, 48_000, amount=amount, bass_mono_hz=150.0)
    np.testing.assert_allclose(_mid_side(y)[0], _mid_side(x)[0], rtol=0, atol=1e-12)


def test_short_signals_are_filtered(rng: np.random.Generator) -> None:
    # A few samples are still a valid buffer; the mid is kept whatever the length.
    x = rng.standard_normal((2, 3))
    y = width(x, 48_000, amount=1.0, bass_mono_hz=100.0)
    np.testing.assert_allclose(_mid_side(y)[0], _mid_side(x)[0], rtol=0, atol=1e-15)


def test_mono_is_returned_unchanged_and_input_untouched(rng: np.random.Generator) -> None:
    mono = rng.standard_normal((1, 1000))
    y = width(mono, 48_000, amount=2.0, bass_mono_hz=100.0)
    assert y is not mono
    np.testing.assert_array_equal(y, mono)
    stereo = rng.standard_normal((2, 1000))
    before = stereo.copy()
    width(stereo, 48_000, amount=1.5, bass_mono_hz=100.0)
    np.testing.assert_array_equal(stereo, before)

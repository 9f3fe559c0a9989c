"""Saturation: small-signal gain, the curves' ceiling, aliasing, zero latency, blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from render.dsp import saturation
from render.dsp.saturation import saturate
from tests.conftest import sine

CURVES = ["tanh", "soft_clip"]


def _amplitude(y: np.ndarray, frequency_hz: float, sample_rate: int) -> float:
    """Amplitude of the ``frequency_hz`` component by a least-squares sine/cosine fit."""
    t = np.arange(len(y)) / sample_rate
    basis = np.stack([np.sin(2 * np.pi * frequency_hz * t), np.cos(2 * np.pi * frequency_hz * t)])
    return float(np.hypot(*np.linalg.lstsq(basis.T, y, rcond=None)[0]))


@pytest.mark.parametrize("frequency_hz", [1000.0, 20_000.0])
@pytest.mark.parametrize("oversample", [1, 2, 4, 8])
@pytest.mark.parametrize("drive_db", [0.0, 12.0, 24.0])
@pytest.mark.parametrize("curve", CURVES)
def test_small_signal_gain_is_drive_plus_output(
    curve: str, drive_db: float, oversample: int, frequency_hz: float
) -> None:
    # Both curves have slope 1 at 0, so a -60 dBFS tone gains drive_db + output_db. The cubic
    # term at the largest level reached (-36 dBFS) compresses by under 0.001 dB; 0.01 dB.
    # At 20 kHz too: the linear part bypasses the resampling filters, whose transition band
    # starts at 18 kHz and would take dBs off.
    x = sine(frequency_hz, 0.2, amplitude=0.001)
    y = saturate(x, drive_db=drive_db, curve=curve, output_db=-3.0, oversample=oversample)
    gain_db = 20 * math.log10(_amplitude(y[0], frequency_hz, 48_000) / 0.001)
    assert gain_db == pytest.approx(drive_db - 3.0, abs=0.01)


def test_soft_clip_is_the_scaled_cubic() -> None:
    # 3/2 f(2u/3) with f(v) = v - v**3/3 (|v| <= 1), +-2/3 beyond: u - 4u**3/27 up to
    # |u| = 3/2, then +-1.
    u = np.linspace(-3.0, 3.0, 601)[np.newaxis, :]
    v = np.clip(2.0 * u / 3.0, -1.0, 1.0)
    expected = 1.5 * (v - v**3 / 3.0)
    y = saturate(u, drive_db=0.0, curve="soft_clip", oversample=1)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("curve", CURVES)
def test_curve_output_never_exceeds_full_scale(rng: np.random.Generator, curve: str) -> None:
    # At the input rate the curve is the whole effect, so its bound holds sample by sample.
    x = rng.uniform(-1.0, 1.0, (2, 48_000))
    y = saturate(x, drive_db=48.0, curve=curve, oversample=1)
    assert np.max(np.abs(y)) <= 1.0
    assert np.max(np.abs(y)) > 0.999


def _inharmonic_energy(y: np.ndarray, fundamental_hz: float, sample_rate: int) -> float:
    """Energy away from multiples of the fundamental (+-20 Hz: the Blackman-Harris main
    lobe at 0.5 s), i.e. the aliases; the window's -92 dB sidelobes set the floor."""
    spectrum = np.abs(np.fft.rfft(y * signal.windows.blackmanharris(len(y)))) ** 2
    frequencies = np.fft.rfftfreq(len(y), 1.0 / sample_rate)
    distance = np.abs(frequencies - fundamental_hz * np.round(frequencies / fundamental_hz))
    return float(np.sum(spectrum[distance > 20.0]))


@pytest.mark.parametrize("curve", CURVES)
def test_oversampling_removes_the_aliases(curve: str) -> None:
    # 9 kHz at 48 kHz: the odd harmonics 27, 45, 63 kHz fold to 21, 3, 15 kHz at the input
    # rate. At 4x they are filtered instead; the filter's 60 dB stopband gives about 60 dB
    # less alias energy, so 40 dB (the acceptance bound) has margin.
    x = sine(9000.0, 0.5)
    energies = [
        _inharmonic_energy(
            saturate(x, drive_db=12.0, curve=curve, oversample=factor)[0], 9000.0, 48_000
        )
        for factor in (1, 4)
    ]
    assert 10 * math.log10(energies[1] / energies[0]) < -40.0


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_resampling_filter_stops_everything_above_nyquist(factor: int) -> None:
    # scipy.signal.freqz of the designed taps, frequency in units of the output Nyquist.
    frequencies, response = signal.freqz(
        saturation.resampling_filter(factor), worN=1 << 16, fs=2.0 * factor
    )
    stopband = np.abs(response[frequencies >= 1.0])
    assert 20 * np.log10(stopband.max()) < -saturation.ALIAS_REJECTION_DB


@pytest.mark.parametrize("oversample", [1, 2, 4, 8])
def test_no_latency(oversample: int) -> None:
    # A symmetric transient stays symmetric about the same sample: zero-phase resampling
    # delays nothing (a delay of even one sample breaks the symmetry by O(1)).
    n, centre = 2001, 1000
    x = np.zeros((1, n))
    x[0, centre - 20 : centre + 21] = 0.5 * np.hanning(41)
    y = saturate(x, drive_db=6.0, curve="tanh", oversample=oversample)[0]
    assert np.argmax(np.abs(y)) == centre
    np.testing.assert_allclose(y[centre + 1 :], y[centre - 1 :: -1], rtol=0, atol=1e-12)


def test_blocks_join_seamlessly(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Oversampling in blocks equals oversampling at once (each block carries the filters'
    # reach of context); 1e-12 is rounding, a seam would be O(0.1).
    x = 0.5 * rng.standard_normal((2, 5000))
    whole = saturate(x, drive_db=12.0, curve="tanh")
    monkeypatch.setattr(saturation, "CHUNK_SAMPLES", 777)
    np.testing.assert_allclose(saturate(x, drive_db=12.0, curve="tanh"), whole, atol=1e-12)


def test_mix_zero_returns_x_and_input_is_untouched(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3000))
    before = x.copy()
    y = saturate(x, drive_db=24.0, curve="tanh", mix=0.0, output_db=-6.0)
    np.testing.assert_array_equal(y, x)
    saturate(x, drive_db=24.0, curve="soft_clip", mix=0.5)
    np.testing.assert_array_equal(x, before)


def test_mix_blends_dry_and_trimmed_wet(rng: np.random.Generator) -> None:
    # At the input rate the wet path is exactly output * tanh(drive * x) (the same as
    # pedalboard's Distortion, tanh after drive_db of gain, to its float32 precision).
    x = 0.2 * rng.standard_normal((2, 2000))
    y = saturate(x, drive_db=6.0, curve="tanh", mix=0.4, output_db=-6.0, oversample=1)
    wet = 10 ** (-6 / 20) * np.tanh(10 ** (6 / 20) * x)
    np.testing.assert_allclose(y, 0.6 * x + 0.4 * wet, rtol=0, atol=1e-15)


@pytest.mark.parametrize("factor", [2, 3, 4, 8])
@pytest.mark.parametrize("curve", CURVES)
def test_one_pass_departure_is_two_resample_polys(
    curve: str, factor: int, rng: np.random.Generator
) -> None:
    """The fused polyphase kernel computes what scipy's resampler does in two calls: the
    segment up ``factor`` times, the curve's departure, and down again (inside the context
    either side), to rounding."""
    h = saturation.resampling_filter(factor)
    reach = 2 * ((len(h) // 2) // factor + 1)
    segment = rng.uniform(-2.0, 2.0, 500)
    out = np.zeros(segment.size - 2 * reach)
    saturation._departure_block(segment, h, factor, curve == "soft_clip", reach, out)
    fast = signal.resample_poly(segment, factor, 1, window=h)
    departure = saturation._shape(fast, curve) - fast  # type: ignore[arg-type]
    expected = signal.resample_poly(departure, 1, factor, window=h)[reach:-reach]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)

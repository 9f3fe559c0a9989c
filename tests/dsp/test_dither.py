"""Noise-shaped TPDF quantisation: the error spectrum has the designed shape, the in-band
noise drops by the designed amount, codes stay in range without the loop running away, and
the same seed gives the same codes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.signal import freqz, welch

from render.dsp.dither import Dither, Quantiser, _tpdf_lsb, quantise

FS = 44100  # the rate the filter was designed for (the quantiser itself has no rate)
LO, HI = -32768.0, 32767.0  # 16-bit codes
# Lipshitz, Vanderkooy & Wannamaker, JAES 39(11) 1991: 5-coefficient E-weighted filter.
PUBLISHED = np.array([2.033, -2.165, 1.959, -1.590, 0.6149])
TPDF_ERROR_VARIANCE = 0.25  # LSB²: dither LSB²/6 + rounding LSB²/12 (Wannamaker et al. 2000)


def quiet_signal(rng: np.random.Generator, channels: int, n: int) -> np.ndarray:
    """A -60 dBFS 1 kHz sine plus a little noise, in 16-bit LSB units."""
    t = np.arange(n) / FS
    x = 1e-3 * np.sin(2 * np.pi * 1000.0 * t) + 1e-6 * rng.standard_normal((channels, n))
    return x * 32768.0


def codes_of(x: np.ndarray, rng: np.random.Generator, dither: Dither = "tpdf_shaped") -> np.ndarray:
    """16-bit codes of ``x`` (in LSB units) as float64 ``[channels, samples]``; the scaling
    by 2^15 is exact, so the codes are those of ``x`` itself."""
    return quantise(x / 32768.0, 16, rng, dither).T.astype(np.float64)


def error_psd(x: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Welch PSD of the output error (LSB²/Hz), averaged over channels."""
    f, p = welch(codes - x, fs=FS, nperseg=2048, axis=-1)
    return f, p.mean(axis=0)


def designed_gain(f: np.ndarray) -> np.ndarray:
    """|NTF|² = |1 - sum ck z^-k|² of the published coefficients, at ``f``."""
    _, h = freqz(np.r_[1.0, -PUBLISHED], 1.0, worN=f, fs=FS)
    return np.abs(h) ** 2


OCTAVES = [(FS / 2 ** (k + 1), FS / 2**k) for k in range(1, 10)]  # 43 Hz - 22.05 kHz
WHITE = 2.0 * TPDF_ERROR_VARIANCE / FS  # one-sided PSD of flat TPDF's error, LSB²/Hz


@pytest.fixture(scope="module")
def spectra() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies and error PSDs (shaped, flat TPDF) of 2**20 stereo samples (24 s)."""
    rng = np.random.default_rng(20261124)
    x = quiet_signal(rng, 2, 2**20)
    f, shaped = error_psd(x, codes_of(x, rng))
    _, flat = error_psd(x, codes_of(x, rng, "tpdf"))
    return f, shaped, flat


def test_error_spectrum_follows_the_noise_transfer_function(
    spectra: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The shaped error's PSD over flat TPDF's (white, LSB²/4) follows |NTF|² octave by
    octave, from -16.6 dB in the bottom octave to +15 dB in the top one; flat TPDF, measured
    the same way, is white at LSB²/4. 0.5 dB: the lowest octave averages 2 bins over 1023
    half-overlapping segments of two channels, an estimate with a standard deviation of
    0.09 dB (measured over seeds), higher octaves less; a wrong sign or a missing tap moves
    some octave by several dB."""
    f, shaped, flat = spectra
    gain = designed_gain(f)
    for low, high in OCTAVES:
        band = (f >= low) & (f < high)
        assert 10 * np.log10(flat[band].mean() / WHITE) == pytest.approx(0.0, abs=0.5)
        measured_db = 10 * np.log10(shaped[band].mean() / WHITE)
        assert measured_db == pytest.approx(10 * np.log10(gain[band].mean()), abs=0.5)


def test_noise_between_1_and_5_khz_drops_by_the_designed_17_6_db(
    spectra: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Over 1-5 kHz, where hearing is most sensitive, |NTF|² averages -17.55 dB at 44.1 kHz:
    the shaped error there is that far below flat TPDF. 0.1 dB: 186 bins x 1023 segments
    (standard deviation about 0.01 dB)."""
    f, shaped, _ = spectra
    band = (f >= 1000.0) & (f <= 5000.0)
    designed_db = 10 * np.log10(designed_gain(f[band]).mean())
    assert designed_db == pytest.approx(-17.55, abs=0.05)
    assert 10 * np.log10(shaped[band].mean() / WHITE) == pytest.approx(designed_db, abs=0.1)


@pytest.mark.parametrize("channels", [1, 2])
def test_overload_is_clipped_without_the_loop_running_away(
    rng: np.random.Generator, channels: int
) -> None:
    """A sine 3.5 dB over full scale, then silence: codes are whole numbers in range, and
    wherever a code is not clipped its error is within 1.5 LSB x (1 + sum |ck|) = 14.04 LSB,
    the bound of NTF applied to a total error of at most 1.5 LSB. Feeding back the clipped
    code's error (up to thousands of LSB) breaks the bound right after each clipped run."""
    n = 20_000
    t = np.arange(n) / FS
    x = np.tile(1.5 * 32768.0 * np.sin(2 * np.pi * 100.0 * t) * (t < 0.25), (channels, 1))
    codes = codes_of(x, rng)
    assert codes.min() == LO and codes.max() == HI
    np.testing.assert_array_equal(codes, np.rint(codes))
    inside = (codes > LO) & (codes < HI)
    assert np.abs(codes - x)[inside].max() <= 1.5 * (1.0 + np.abs(PUBLISHED).sum())


def test_same_seed_same_codes_and_channels_keep_their_own_state() -> None:
    """The same seed gives the same codes and another seed other codes; changing the left
    channel leaves the right one's codes untouched (per-channel error state)."""
    x = quiet_signal(np.random.default_rng(5), 2, 10_000)
    first = codes_of(x, np.random.default_rng(1))
    np.testing.assert_array_equal(first, codes_of(x, np.random.default_rng(1)))
    assert not np.array_equal(first, codes_of(x, np.random.default_rng(2)))
    changed = x.copy()
    changed[0] *= -3.0
    other = codes_of(changed, np.random.default_rng(1))
    np.testing.assert_array_equal(other[1], first[1])
    assert not np.array_equal(other[0], first[0])


def test_dither_words_are_splitmix64() -> None:
    """Sample k's dither is the sum of the two 32-bit halves of SplitMix64's (k+1)-th output
    from the key, scaled to (-1, 1) LSB: with key 0, the generator's published first outputs
    (Vigna's splitmix64.c seeded with 0)."""
    first_words = (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F)
    for index, word in enumerate(first_words):
        halves = (word >> 32) + (word & 0xFFFFFFFF)
        assert _tpdf_lsb(np.uint64(0), index) == halves * 2.0**-32 - 1.0


def test_dither_does_not_depend_on_how_the_signal_is_split() -> None:
    """A sample's dither depends on its place in the file alone: quantising the first half
    of a signal gives the first half of the whole signal's codes."""
    x = np.random.default_rng(11).uniform(-0.9, 0.9, (2, 5000))
    whole = quantise(x, 16, np.random.default_rng(4), "tpdf")
    half = quantise(x[:, :2500], 16, np.random.default_rng(4), "tpdf")
    np.testing.assert_array_equal(half, whole[:2500])


@pytest.mark.parametrize("dither", ["tpdf", "tpdf_shaped", "none"])
@pytest.mark.parametrize(("channels", "bit_depth"), [(1, 16), (2, 24), (2, 16)])
def test_blocks_of_any_size_give_the_whole_signals_codes(
    dither: Dither, channels: int, bit_depth: int
) -> None:
    """A ``Quantiser`` fed block after block (sizes 1, 0, odd, large) writes the codes one
    ``quantise`` of the whole writes: the dither follows the place, the shaper's errors
    carry over."""
    x = np.random.default_rng(12).uniform(-1.1, 1.1, (channels, 9_001))
    whole = quantise(x, bit_depth, np.random.default_rng(6), dither)
    quantiser = Quantiser(channels, bit_depth, np.random.default_rng(6), dither)
    blocks = np.full(whole.shape, 7, whole.dtype)
    edges = [0, 1, 1, 1_000, 4_097, 9_001]
    for start, stop in itertools.pairwise(edges):
        quantiser.quantise_into(x[:, start:stop], blocks[start:stop])
    np.testing.assert_array_equal(blocks, whole)

"""TPDF dither, flat or noise-shaped, for the final requantisation to integer PCM.

Flat TPDF dither of ±1 LSB peak (the sum of two independent uniform ±0.5 LSB variables)
makes the first two moments of the total error independent of the signal, leaving white
noise of variance LSB²/4 (Vanderkooy & Lipshitz, "Dither in digital audio", JAES 35(12),
1987; Wannamaker, Lipshitz & Vanderkooy, "A theory of nonsubtractive dither", IEEE Trans.
Signal Processing 48(2), 2000, §IV).

Noise shaping is the error-feedback quantiser of Lipshitz, Vanderkooy & Wannamaker,
"Minimally audible noise shaping", JAES 39(11), 1991: the filtered past total errors are
subtracted from the input before the dither is added and the sum rounded, so the error
reaching the output is that white error filtered by the noise transfer function

    NTF(z) = 1 - (c1 z^-1 + c2 z^-2 + ... + c5 z^-5).

The coefficients are the paper's 5-coefficient E-weighted design for 44.1 kHz (the same
values SoX ships as its "lipshitz" filter). NTF is minimum phase, so its log magnitude
averages to 0 dB over frequency (Gerzon & Craven, "Optimal noise shaping and dither of digital
signals", AES 87th Convention, 1989): the noise cannot shrink, only move. At 44.1 kHz it sits
-16.6 dB at DC, -17.6 dB on average over 1-5 kHz (the ear's most sensitive region), -27.2 dB
at its 4.0 kHz notch and +19.4 dB at Nyquist, rising above 0 dB only from 13.5 kHz up (and by
at most 0.3 dB between 8.6 and 10.2 kHz); the total noise power rises by 12.2 dB (1 + sum ck²). The
filter is defined per sample, so at 48 kHz every feature moves up by 48/44.1: the notch to
4.4 kHz, the rise to 14.6 kHz, and 1-5 kHz still averages -17.6 dB. At 88.2 kHz and above the
design no longer matches hearing; use flat TPDF there.
"""

from __future__ import annotations

import numpy as np
from numba import njit

E_WEIGHTED_44K1 = (2.033, -2.165, 1.959, -1.590, 0.6149)
"""Error-feedback coefficients c1..c5 of the 5-coefficient E-weighted noise shaper
(Lipshitz, Vanderkooy & Wannamaker 1991), for 44.1 kHz."""


def add_tpdf(x_scaled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x_scaled`` (in LSB) plus TPDF dither of ±1 LSB peak, drawn from ``rng``.

    The draw order (two whole uniform arrays) and the left-to-right sum are fixed: they
    decide the bytes of every dithered file.
    """
    shape = x_scaled.shape
    return x_scaled + rng.uniform(-0.5, 0.5, shape) + rng.uniform(-0.5, 0.5, shape)


def shaped_tpdf_codes(
    x_scaled: np.ndarray, rng: np.random.Generator, lo: float, hi: float
) -> np.ndarray:
    """Round ``x_scaled`` to integer codes with TPDF dither and E-weighted noise shaping.

    Parameters
    ----------
    x_scaled : np.ndarray
        ``float64[channels, samples]`` already scaled to LSB units (``x * 2**(bits - 1)``).
        Each channel has its own error-feedback state, starting from silence.
    rng : np.random.Generator
        Source of the dither, drawn in one vectorised call before the loop (``add_tpdf``).
    lo, hi : float
        The code range, e.g. -32768 and 32767 for 16 bit; the output is clipped to it.

    Returns
    -------
    np.ndarray
        ``float64`` codes of the same shape: whole numbers in ``[lo, hi]``.

    The error fed back is that of the unclipped code: the rounding of a TPDF-dithered value,
    which never exceeds 1.5 LSB, the same clamp an in-range quantiser obeys. Feeding back the
    clipped code's error instead would return the whole overshoot of an over-full-scale
    sample through coefficients summing to 8.4 in magnitude: on a sine 3.5 dB over full
    scale, the first samples after each clipped run then miss the input by up to 1500 LSB.
    With the bounded error the output stays within 1.5 * (1 + sum |ck|) = 14 LSB of the input
    wherever it is not clipped.
    """
    x = np.ascontiguousarray(x_scaled, dtype=np.float64)
    return _shape(x, add_tpdf(x, rng), E_WEIGHTED_44K1, float(lo), float(hi))


@njit(nogil=True, cache=True)
def _shape(
    x: np.ndarray,
    dithered: np.ndarray,
    coefficients: tuple[float, float, float, float, float],
    lo: float,
    hi: float,
) -> np.ndarray:
    # Five taps held in scalars (e1: the total error one sample ago): the recursion is a
    # serial dependency chain, and registers keep it shortest.
    c1, c2, c3, c4, c5 = coefficients
    codes = np.empty_like(x)
    for channel in range(x.shape[0]):
        e1 = e2 = e3 = e4 = e5 = 0.0
        for i in range(x.shape[1]):
            feedback = c1 * e1 + c2 * e2 + c3 * e3 + c4 * e4 + c5 * e5
            code = np.rint(dithered[channel, i] - feedback)
            e5, e4, e3, e2 = e4, e3, e2, e1
            e1 = code - (x[channel, i] - feedback)
            codes[channel, i] = min(max(code, lo), hi)
    return codes

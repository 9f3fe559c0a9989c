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

from typing import Literal

import numpy as np

from render.jit import njit

Dither = Literal["tpdf", "tpdf_shaped", "none"]

E_WEIGHTED_44K1 = (2.033, -2.165, 1.959, -1.590, 0.6149)
"""Error-feedback coefficients c1..c5 of the 5-coefficient E-weighted noise shaper
(Lipshitz, Vanderkooy & Wannamaker 1991), for 44.1 kHz."""


def quantise(x: np.ndarray, bit_depth: int, rng: np.random.Generator, dither: Dither) -> np.ndarray:
    """Float audio (``float64[channels, samples]``, full scale 1.0) to integer PCM frames:
    ``[samples, channels]``, int16 for 16-bit, else int32 with the code left-aligned in 32
    bits (libsndfile's convention for int32 input). Values beyond full scale are clipped.

    ``tpdf``: TPDF dither of ±1 LSB peak added before rounding. ``tpdf_shaped``: the same
    dither inside the E-weighted error-feedback loop. ``none``: plain rounding (half to even).

    The error fed back by ``tpdf_shaped`` is that of the unclipped code: the rounding of a
    TPDF-dithered value, which never exceeds 1.5 LSB, the same clamp an in-range quantiser
    obeys. Feeding back the clipped code's error instead would return the whole overshoot of
    an over-full-scale sample through coefficients summing to 8.4 in magnitude: on a sine 3.5
    dB over full scale, the first samples after each clipped run then miss the input by up
    to 1500 LSB. With the bounded error the output stays within 1.5 * (1 + sum |ck|) = 14 LSB
    of the input wherever it is not clipped.

    The signal is quantised ``_CHUNK`` samples at a time, the dither drawn per chunk as raw
    64-bit words of ``rng``'s bit generator, so no whole-song temporary is formed.
    """
    channels, n = x.shape
    frames = np.empty((n, channels), np.int16 if bit_depth == 16 else np.int32)
    scale = float(2 ** (bit_depth - 1))
    shift = 0 if bit_depth == 16 else 32 - bit_depth
    coefficients = np.array(E_WEIGHTED_44K1)
    errors = np.zeros((channels, len(coefficients)))  # each channel's last total errors
    for start in range(0, n, _CHUNK):
        block = np.ascontiguousarray(x[:, start : start + _CHUNK], dtype=np.float64)
        words = rng.bit_generator.random_raw(block.size if dither != "none" else 0)
        if dither == "tpdf_shaped":
            _quantise_shaped(block, words, scale, shift, coefficients, errors, frames[start:])
        else:
            _quantise_flat(block, words, scale, shift, frames[start:])
    return frames


_CHUNK = 1 << 16
"""Samples quantised per kernel call: the chunk's dither (1 MB for stereo) stays in cache."""


@njit(nogil=True, cache=True)
def _tpdf_lsb(words: np.ndarray, index: int) -> float:
    """TPDF dither on (-1, 1) LSB from ``words[index]`` (none for empty ``words``): its two
    32-bit halves, each a uniform variable on [0, 1), summed, minus 1."""
    if words.size == 0:
        return 0.0
    word = words[index]
    return (float(word >> 32) + float(word & 0xFFFFFFFF)) * 2.0**-32 - 1.0


@njit(nogil=True, cache=True)
def _quantise_flat(
    x: np.ndarray, words: np.ndarray, scale: float, shift: int, frames: np.ndarray
) -> None:
    """Round ``x * scale`` plus each sample's dither (``words`` row-major over ``x``) to
    codes in ``[-scale, scale - 1]``, written shifted left by ``shift`` into
    ``frames[i, channel]``."""
    channels, n = x.shape
    for channel in range(channels):
        for i in range(n):
            code = np.rint(x[channel, i] * scale + _tpdf_lsb(words, channel * n + i))
            frames[i, channel] = np.int32(min(max(code, -scale), scale - 1.0)) << shift


@njit(nogil=True, cache=True)
def _quantise_shaped(
    x: np.ndarray,
    words: np.ndarray,
    scale: float,
    shift: int,
    coefficients: np.ndarray,
    errors: np.ndarray,
    frames: np.ndarray,
) -> None:
    """``_quantise_flat`` with the error feedback of ``coefficients``; ``errors`` carries
    each channel's last five total errors to the next chunk."""
    channels, n = x.shape
    c1, c2, c3, c4, c5 = coefficients
    for channel in range(channels):
        # Five taps held in scalars (e1: the total error one sample ago): the recursion is
        # a serial dependency chain, and registers keep it shortest.
        e1, e2, e3, e4, e5 = errors[channel]
        for i in range(n):
            target = x[channel, i] * scale
            feedback = c1 * e1 + c2 * e2 + c3 * e3 + c4 * e4 + c5 * e5
            code = np.rint(target + _tpdf_lsb(words, channel * n + i) - feedback)
            e5, e4, e3, e2 = e4, e3, e2, e1
            e1 = code - (target - feedback)
            frames[i, channel] = np.int32(min(max(code, -scale), scale - 1.0)) << shift
        errors[channel] = e1, e2, e3, e4, e5

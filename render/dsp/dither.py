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

    Each sample's dither comes from one 64-bit word of SplitMix64 (Steele, Lea & Flood,
    "Fast splittable pseudorandom number generators", OOPSLA 2014) at the sample's place in
    the file (frame by frame, channel by channel), keyed by one word of ``rng``: the whole
    signal is dithered in one pass with no random array drawn first (drawing it cost 0.12 s
    per 3 minutes of stereo, four times the rounding itself), and the codes do not depend
    on how the signal is split.
    """
    quantiser = Quantiser(x.shape[0], bit_depth, rng, dither)
    frames = np.empty((x.shape[1], x.shape[0]), quantiser.dtype)
    quantiser.quantise_into(x, frames)
    return frames


class Quantiser:
    """``quantise`` block after block: the codes of consecutive blocks are those of one call
    on their whole (each sample's dither is keyed by its place, the noise shaper's past
    errors carry over), so a file is written as it is quantised, with no whole-song array
    of codes (71 MB for 3 minutes of stereo, whose first pages cost 0.06-0.13 s)."""

    def __init__(
        self, channels: int, bit_depth: int, rng: np.random.Generator, dither: Dither
    ) -> None:
        self.dtype = np.int16 if bit_depth == 16 else np.int32
        self._scale = float(2 ** (bit_depth - 1))
        self._shift = 0 if bit_depth == 16 else 32 - bit_depth
        self._key = np.uint64(rng.bit_generator.random_raw())
        self._dither = dither
        self._coefficients = np.array(E_WEIGHTED_44K1)
        self._errors = np.zeros((channels, len(E_WEIGHTED_44K1)))  # e1..e5 per channel
        self._done = 0  # frames quantised so far

    def quantise_into(self, x: np.ndarray, frames: np.ndarray) -> None:
        """The next block ``x`` (``float64[channels, n]``) into ``frames`` (``[n, channels]``
        of ``dtype``)."""
        samples = np.ascontiguousarray(x, dtype=np.float64)
        if self._dither == "tpdf_shaped":
            _quantise_shaped(
                samples,
                self._key,
                self._scale,
                self._shift,
                self._coefficients,
                self._done,
                self._errors,
                frames,
            )
        else:
            dithered = self._dither == "tpdf"
            _quantise_flat(
                samples, self._key, dithered, self._scale, self._shift, self._done, frames
            )
        self._done += samples.shape[1]


_GAMMA = np.uint64(0x9E3779B97F4A7C15)
"""SplitMix64's increment: 2^64 over the golden ratio, odd."""


@njit(nogil=True, cache=True, inline="always")
def _tpdf_lsb(key: np.uint64, index: int) -> float:
    """TPDF dither on (-1, 1) LSB for sample ``index`` (frame * channels + channel): the
    SplitMix64 word of state ``key + (index + 1) * gamma``, its two 32-bit halves each a
    uniform variable on [0, 1), summed, minus 1."""
    z = key + np.uint64(index + 1) * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return (float(z >> np.uint64(32)) + float(z & np.uint64(0xFFFFFFFF))) * 2.0**-32 - 1.0


@njit(nogil=True, cache=True)
def _quantise_flat(
    x: np.ndarray,
    key: np.uint64,
    dithered: bool,
    scale: float,
    shift: int,
    first: int,
    frames: np.ndarray,
) -> None:
    """Round ``x * scale`` plus each sample's dither (where ``dithered``) to codes in
    ``[-scale, scale - 1]``, written shifted left by ``shift`` into ``frames[i, channel]``;
    ``x`` starts at frame ``first`` of the file."""
    channels, n = x.shape
    for channel in range(channels):
        for i in range(n):
            index = (first + i) * channels + channel
            dither = _tpdf_lsb(key, index) if dithered else 0.0
            code = np.rint(x[channel, i] * scale + dither)
            frames[i, channel] = np.int32(min(max(code, -scale), scale - 1.0)) << shift


@njit(nogil=True, cache=True)
def _quantise_shaped(
    x: np.ndarray,
    key: np.uint64,
    scale: float,
    shift: int,
    coefficients: np.ndarray,
    first: int,
    errors: np.ndarray,
    frames: np.ndarray,
) -> None:
    """``_quantise_flat`` (dithered) with the error feedback of ``coefficients``, from and
    into each channel's past total errors ``errors[channel]`` (e1..e5)."""
    channels, n = x.shape
    c1, c2, c3, c4, c5 = coefficients
    for channel in range(channels):
        # Five taps held in scalars (e1: the total error one sample ago): the recursion is
        # a serial dependency chain, and registers keep it shortest.
        e1, e2, e3, e4, e5 = errors[channel]
        for i in range(n):
            target = x[channel, i] * scale
            feedback = c1 * e1 + c2 * e2 + c3 * e3 + c4 * e4 + c5 * e5
            code = np.rint(target + _tpdf_lsb(key, (first + i) * channels + channel) - feedback)
            e5, e4, e3, e2 = e4, e3, e2, e1
            e1 = code - (target - feedback)
            frames[i, channel] = np.int32(min(max(code, -scale), scale - 1.0)) << shift
        errors[channel] = e1, e2, e3, e4, e5

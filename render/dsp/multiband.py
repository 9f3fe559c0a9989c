"""Multiband compression: Linkwitz-Riley crossovers, one compressor per band, summed again.

Crossover: the 4th-order Linkwitz-Riley split (S. H. Linkwitz, "Active Crossover Networks for
Noncoincident Drivers", JAES 24(1), 1976): each side is a 2nd-order Butterworth section
(Q = 1/sqrt(2)) applied twice at the same frequency, so both are -6.02 dB at the crossover,
fall at 24 dB/octave, and are in phase at every frequency. With ``D(s) = s^2 + sqrt(2) w s +
w^2`` the sides are ``w^4 / D^2`` and ``s^4 / D^2``, and since ``D(s) D(-s) = s^4 + w^4``
their sum is the all-pass ``D(-s) / D(s)``: low + high, added with the same polarity, has
unit magnitude. The bilinear transform (``eq.pass_sos``, prewarped) keeps the
identity, as it maps ``-s`` to ``z -> 1/z``: with ``t = tan(pi f / Fs)`` the digital sides'
amplitudes are ``1 / (1 + (t / tc)^4)`` and ``1 / (1 + (tc / t)^4)``, and their sum is the
all-pass ``(a2 + a1 z^-1 + z^-2) / (1 + a1 z^-1 + a2 z^-2)``, ``a`` the Butterworth
section's denominator. The high side is computed as that all-pass minus the low side: the
same filter to rounding, one section instead of two, and low + high is the all-pass by
construction.

Three or four bands split a tree, lowest crossover first: band ``i`` is the high side of
crossovers ``f_1 .. f_{i-1}`` and the low side of ``f_i``, then the all-pass of every
crossover above ``f_i``, which the bands above meet as a low-plus-high pair; so every band
carries the same phase and the bands sum to the cascade of all the all-passes (J. A.
D'Appolito, "Active Realization of Multiway All-Pass Crossover Systems", JAES 35(4), 1987;
the same tree as ``crossover3LR4``/``crossover4LR4`` of Faust's filters.lib). For
crossovers f1 < f2 < f3: low = LP1 AP2 AP3, low-mid = HP1 LP2 AP3, high-mid = HP1 HP2 LP3,
high = HP1 HP2 HP3, and their sum is AP1 AP2 AP3.

Each band that is not bypassed runs through its own ``render.dsp.dynamics.Compressor``
(peak detector, stereo link 1: one gain for both channels, as on a stereo bus). The dry/wet
``mix`` is each band compressor's own mix: the bands of the dry signal add up to the
all-passed input, so the dry path is phase-aligned with the wet one and a partial mix with
idle compressors stays flat (a dry path of the raw input would comb against the all-passed
wet path). A bypassed band passes its crossover output unchanged.

Streaming: ``MultibandCompressor`` carries the filter state and every compressor's state
from block to block; internally each block is cut into slices of ``_SLICE`` samples so the
band signals stay in the processor's cache. Any split into blocks gives the bytes of one
call on the whole signal. The filters are causal IIR: no latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from render.dsp.dynamics import Compressor
from render.dsp.filters import butterworth_sos
from render.dsp.kernel_math import JIT
from render.dsp.shapes import check_channels, checked_block
from render.jit import njit

MAX_CROSSOVERS = 3
"""1 to 3 crossovers: 2 to 4 bands, the usual range of a mastering multiband."""
_SLICE = 16_384
"""Samples per internal slice: a 3-band stereo slice's bands and their compressed copies
take 1.6 MB, which stay in cache and are reused, where whole-signal bands (830 MB for 180 s)
would be paged in fresh (splitting 180 s at once measured 3x slower); the Python overhead
per slice is spread over 16k samples."""


@dataclass(frozen=True)
class BandSettings:
    """One band's compressor (``render.dsp.dynamics.Compressor`` settings, units alike).

    Parameters
    ----------
    threshold_db : float
        Centre of the knee, dBFS. Default -18 dB: a few dB of reduction on a master that
        peaks around -6 dBFS.
    ratio : float
        >= 1 (``math.inf`` limits). Default 2: a mastering multiband shapes the balance
        gently.
    knee_db : float
        Knee width centred on the threshold, dB >= 0. Default 6 dB: a soft onset.
    attack_ms, release_ms : float
        Time constants of the gain reduction, ms >= 0. Defaults 10 ms and 100 ms: transients
        pass in part, and the release recovers between beats without pumping.
    makeup_db : float
        Gain after compression, dB. Default 0.
    bypass : bool
        Pass the band uncompressed (still through the crossover, so the sum stays flat).
    """

    threshold_db: float = -18.0
    ratio: float = 2.0
    knee_db: float = 6.0
    attack_ms: float = 10.0
    release_ms: float = 100.0
    makeup_db: float = 0.0
    bypass: bool = False


class Crossover:
    """The Linkwitz-Riley band split of a stream (module docstring), filter state carried.

    Parameters
    ----------
    sample_rate : int
        Samples per second, Hz.
    channels : int
        Channels of every block, 1 or 2.
    crossovers_hz : sequence of float
        1 to ``MAX_CROSSOVERS`` frequencies in Hz, strictly ascending, each strictly between
        0 and Nyquist.
    """

    def __init__(self, sample_rate: int, channels: int, crossovers_hz: Sequence[float]) -> None:
        check_channels("multiband", channels)
        _check_crossovers(crossovers_hz, sample_rate)
        lows = [butterworth_sos("lowpass", f, sample_rate) for f in crossovers_hz]
        allpasses = [_allpass(low) for low in lows]
        # Band i's cascade: the crossover's low side, then the all-pass of each crossover above.
        cascades = [[low, low, *allpasses[i + 1 :]] for i, low in enumerate(lows)]
        self._channels = channels
        self._lows = np.concatenate([np.concatenate(c) for c in cascades])
        self._ends = np.cumsum([len(c) for c in cascades])
        self._allpasses = np.concatenate(allpasses)
        # Transposed direct form II state per section and lane (lane 1 repeats mono's lane 0).
        self._low_zi = np.zeros((len(self._lows), 2, 2))
        self._allpass_zi = np.zeros((len(self._allpasses), 2, 2))

    @property
    def band_count(self) -> int:
        return len(self._ends) + 1

    def process(self, x: np.ndarray) -> np.ndarray:
        """The next block ``float64[channels, n]`` (left untouched) split into a new
        ``float64[bands, channels, n]``, lowest band first; the bands sum to the all-passed
        block."""
        x = checked_block("multiband", x, self._channels)
        y = np.empty((self.band_count, *x.shape))
        _split(x, self._lows, self._ends, self._allpasses, self._low_zi, self._allpass_zi, y)
        return y


def crossover_bands(x: np.ndarray, sample_rate: int, crossovers_hz: Sequence[float]) -> np.ndarray:
    """The whole of ``x`` (``float64[channels, samples]``) split by a fresh ``Crossover``:
    ``float64[bands, channels, samples]``, lowest band first."""
    return Crossover(sample_rate, _channels_of(x), crossovers_hz).process(x)


class MultibandCompressor:
    """Split, compress each band, sum: block by block, every state carried.

    Parameters
    ----------
    sample_rate : int
        Samples per second, Hz.
    channels : int
        Channels of every block, 1 or 2.
    crossovers_hz : sequence of float
        1 to 3 crossover frequencies, Hz, strictly ascending, within (0, Nyquist).
    bands : sequence of BandSettings
        One per band, lowest first: ``len(crossovers_hz) + 1`` of them.
    mix : float
        Wet share 0..1: ``mix * compressed + (1 - mix) * all-passed input`` (module
        docstring: the dry path carries the crossover's phase). Default 1: a plain insert.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        crossovers_hz: Sequence[float],
        bands: Sequence[BandSettings],
        mix: float = 1.0,
    ) -> None:
        self._crossover = Crossover(sample_rate, channels, crossovers_hz)
        if len(bands) != self._crossover.band_count:
            raise ValueError(
                f"multiband bands: got {len(bands)} band settings, expected "
                f"{self._crossover.band_count} for {len(crossovers_hz)} crossovers"
            )
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"multiband mix: got {mix}, expected a fraction from 0 to 1")
        self._channels = channels
        self._compressors = [
            _band_compressor(index, band, sample_rate, channels, mix)
            for index, band in enumerate(bands)
        ]

    def process(self, x: np.ndarray) -> np.ndarray:
        """The next block, ``float64[channels, n]`` (left untouched), processed into a new
        array of the same shape; no latency."""
        x = checked_block("multiband", x, self._channels)
        y = np.empty_like(x)
        for start in range(0, x.shape[-1], _SLICE):
            stop = min(start + _SLICE, x.shape[-1])
            out = y[:, start:stop]
            for index, (band, compressor) in enumerate(
                zip(self._crossover.process(x[:, start:stop]), self._compressors, strict=True)
            ):
                processed = band if compressor is None else compressor.process(band)
                if index:
                    out += processed
                else:
                    out[...] = processed
        return y


def multiband_compress(
    x: np.ndarray,
    sample_rate: int,
    *,
    crossovers_hz: Sequence[float],
    bands: Sequence[BandSettings],
    mix: float = 1.0,
) -> np.ndarray:
    """The whole of ``x`` (``float64[channels, samples]``) as one ``MultibandCompressor``
    block; a new array of the same shape."""
    return MultibandCompressor(sample_rate, _channels_of(x), crossovers_hz, bands, mix).process(x)


def _band_compressor(
    index: int, band: BandSettings, sample_rate: int, channels: int, mix: float
) -> Compressor | None:
    """Band ``index``'s compressor (None when bypassed); its settings are checked either way,
    and a bad one is reported with the band's place."""
    try:
        compressor = Compressor(
            sample_rate,
            channels,
            threshold_db=band.threshold_db,
            ratio=band.ratio,
            knee_db=band.knee_db,
            attack_ms=band.attack_ms,
            release_ms=band.release_ms,
            makeup_db=band.makeup_db,
            mix=mix,
        )
    except ValueError as e:
        raise ValueError(f"multiband bands[{index}]: {e}") from e
    return None if band.bypass else compressor


def _channels_of(x: np.ndarray) -> int:
    """The channel count of a whole signal given to a one-block function."""
    if x.ndim != 2:
        raise ValueError(f"multiband x: got shape {x.shape}, expected (channels 1 or 2, samples)")
    return x.shape[0]


def _check_crossovers(crossovers_hz: Sequence[float], sample_rate: int) -> None:
    if not 1 <= len(crossovers_hz) <= MAX_CROSSOVERS:
        raise ValueError(
            f"multiband crossovers_hz: got {len(crossovers_hz)} frequencies, expected 1 to "
            f"{MAX_CROSSOVERS} (2 to {MAX_CROSSOVERS + 1} bands)"
        )
    nyquist_hz = sample_rate / 2.0
    for index, frequency_hz in enumerate(crossovers_hz):
        if not 0.0 < frequency_hz < nyquist_hz:
            raise ValueError(
                f"multiband crossovers_hz[{index}]: got {frequency_hz} Hz, expected a frequency "
                f"> 0 Hz and < {nyquist_hz:g} Hz (Nyquist)"
            )
        if index and not frequency_hz > crossovers_hz[index - 1]:
            raise ValueError(
                f"multiband crossovers_hz[{index}]: got {frequency_hz} Hz after "
                f"{crossovers_hz[index - 1]} Hz, expected strictly ascending frequencies"
            )


def _allpass(lowpass: np.ndarray) -> np.ndarray:
    """The 2nd-order all-pass that the LR4 low and high sides at this section's frequency
    sum to: numerator the denominator reversed, ``[a2, a1, 1, 1, a1, a2]``."""
    a = lowpass[0, 3:]
    return np.concatenate([a[::-1], a])[np.newaxis, :]


@njit(**JIT)
def _split(
    x: np.ndarray,
    lows: np.ndarray,
    ends: np.ndarray,
    allpasses: np.ndarray,
    low_zi: np.ndarray,
    allpass_zi: np.ndarray,
    y: np.ndarray,
) -> None:
    """The crossover tree into ``y[band, channel]``, one sample at a time through every
    cascade. At crossover i the signal goes through ``lows[ends[i-1]:ends[i]]``: its LR4 low
    side (the first two sections, whose output is kept) and the all-passes of the crossovers
    above, giving band i; the high side passed on to the next split is the crossover's
    all-pass ``allpasses[i]`` minus that low side (Linkwitz's sum read backwards: one
    section where the two of a Butterworth high-pass pair would do). Each section is
    ``scipy.signal.sosfilt``'s transposed direct form II, operation for operation. Both
    lanes (channel 0 and the last channel: mono runs its channel twice, so no branch on the
    count) share each step, and the cascades are independent, so their recursions overlap."""
    last = x.shape[0] - 1
    for n in range(x.shape[1]):
        left, right = x[0, n], x[last, n]
        start = 0
        for band in range(ends.size):
            half_left, half_right = _section(lows[start], low_zi[start], left, right)
            low_left, low_right = _section(
                lows[start + 1], low_zi[start + 1], half_left, half_right
            )
            pass_left, pass_right = _section(allpasses[band], allpass_zi[band], left, right)
            left, right = pass_left - low_left, pass_right - low_right
            for k in range(start + 2, ends[band]):
                low_left, low_right = _section(lows[k], low_zi[k], low_left, low_right)
            y[band, 0, n], y[band, last, n] = low_left, low_right
            start = ends[band]
        y[ends.size, 0, n], y[ends.size, last, n] = left, right


@njit(**JIT)
def _section(sos: np.ndarray, zi: np.ndarray, left: float, right: float) -> tuple[float, float]:
    """One sample of both lanes through one second-order section, ``zi[lane, 2]`` updated."""
    b0, b1, b2, a1, a2 = sos[0], sos[1], sos[2], sos[4], sos[5]
    new_left, new_right = b0 * left + zi[0, 0], b0 * right + zi[1, 0]
    zi[0, 0] = b1 * left - a1 * new_left + zi[0, 1]
    zi[1, 0] = b1 * right - a1 * new_right + zi[1, 1]
    zi[0, 1] = b2 * left - a2 * new_left
    zi[1, 1] = b2 * right - a2 * new_right
    return new_left, new_right

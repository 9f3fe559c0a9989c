"""Parametric EQ: RBJ cookbook biquads, Butterworth pass filters and mid/side routing.

Every band is one second-order section designed by the bilinear transform with the
frequency prewarped to ``f0``, as in R. Bristow-Johnson, "Audio EQ Cookbook", W3C Group Note
(2021), https://www.w3.org/TR/audio-eq-cookbook/. The note's intermediate variables are

    A = 10^(dBgain/40),  w0 = 2*pi*f0/Fs,  alpha = sin(w0)/(2*Q)

or, for shelves given the shelf slope S instead of Q,

    alpha = sin(w0)/2 * sqrt((A + 1/A)*(1/S - 1) + 2).

The high- and low-pass filters are Butterworth (maximally flat, -3.01 dB at the cutoff and
``6 * order`` dB/octave far in the stopband): cookbook sections with the Butterworth Qs.

Bands routed to ``mid``/``side`` act on M = (L+R)/2 and S = (L-R)/2, decoded back with
L = M + S, R = M - S; bands routed to ``left``/``right`` act on that channel only. A mono
input has one channel and no side: ``stereo``, ``mid``, ``left`` and ``right`` bands all
filter that channel (its mid is itself, and it feeds both sides of the mix), while ``side``
bands leave it unchanged.

``Equalizer`` filters a stream block by block, carrying each cascade's ``sosfilt`` state;
``equalize`` is one block holding the whole signal. ``sosfilt``'s cost is set by the number
of channel passes, hardly by the sections in a pass (measured with scipy 1.17 on 180 s at
48 kHz: 1 section 59 ms, 4 sections 60 ms, 6 sections 73 ms per channel), so every filter
that can share a pass does: the pass filters and ``stereo`` bands run as one cascade, and are
folded into the M and S cascades when mid/side bands are present, or into each channel's
cascade when left/right bands are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from render.dsp.biquad_loop import MOST_SECTIONS, cascade_part
from render.dsp.levels import db_to_gain
from render.dsp.shapes import check_channels, checked_block
from render.jit import njit

BandType = Literal["peak", "low_shelf", "high_shelf", "notch", "band_pass"]
BandChannels = Literal["stereo", "mid", "side", "left", "right"]
PassKind = Literal["highpass", "lowpass"]

SHELF_DEFAULT_Q = math.sqrt(0.5)
"""1/sqrt(2) = 0.7071: the Q the cookbook's shelf slope S = 1 gives (alpha = sin(w0)/sqrt(2)),
the steepest shelf whose gain still moves monotonically from one plateau to the other."""
BAND_DEFAULT_Q = 1.0
"""Q = 1 (a bandwidth of about 1.39 octaves): a broad, musical bell, notch or band-pass."""
PASS_SLOPES_DB_PER_OCT = (6, 12, 18, 24, 36, 48)
"""Butterworth orders 1, 2, 3, 4, 6 and 8: the slopes mixing consoles and plug-ins offer."""

_SHELVES = ("low_shelf", "high_shelf")
_GAIN_TYPES = ("peak", *_SHELVES)


@dataclass(frozen=True)
class Band:
    """One EQ band: a single RBJ biquad, routed to some channels.

    Parameters
    ----------
    type
        The cookbook filter: ``peak`` (peakingEQ), ``low_shelf``, ``high_shelf``, ``notch``
        or ``band_pass`` (the constant 0 dB peak gain band-pass).
    frequency_hz
        Centre frequency (peak, notch, band-pass) or shelf midpoint, in Hz; must lie
        strictly between 0 and the Nyquist frequency of the signal it is applied to.
    gain_db
        Boost (positive) or cut in dB at the centre (peak) or on the shelf plateau (shelves);
        must stay 0 for notch and band-pass, whose gain is fixed by their definition.
    q
        Quality factor, > 0. ``None`` uses ``SHELF_DEFAULT_Q`` for shelves (the same filter
        as S = 1) and ``BAND_DEFAULT_Q`` for the others.
    slope
        The cookbook's shelf slope S (shelves only, instead of ``q``), > 0 and small enough
        that (A + 1/A)(1/S - 1) + 2 > 0 for this gain; S = 1 is the steepest monotone shelf.
    channels
        Where the band acts on a stereo signal: both channels, mid, side, left or right.
        On a mono signal ``side`` does nothing and every other choice filters the channel.
    """

    type: BandType
    frequency_hz: float
    gain_db: float = 0.0
    q: float | None = None
    slope: float | None = None
    channels: BandChannels = "stereo"

    def __post_init__(self) -> None:
        _check_choice("type", self.type, get_args(BandType))
        _check_choice("channels", self.channels, get_args(BandChannels))
        _check_frequency(f"{self.type} band frequency_hz", self.frequency_hz, math.inf)
        if not math.isfinite(self.gain_db):
            raise ValueError(f"{self.type} band gain_db: got {self.gain_db}, expected a finite dB")
        if self.type not in _GAIN_TYPES and self.gain_db != 0.0:
            raise ValueError(
                f"{self.type} band gain_db: got {self.gain_db}, expected 0 "
                f"(only {', '.join(_GAIN_TYPES)} bands have a gain)"
            )
        if self.q is not None and not (math.isfinite(self.q) and self.q > 0.0):
            raise ValueError(f"{self.type} band q: got {self.q}, expected a number > 0")
        if self.slope is not None:
            if self.type not in _SHELVES:
                raise ValueError(
                    f"{self.type} band slope: got {self.slope}, but only shelves have a slope "
                    "(use q)"
                )
            if self.q is not None:
                raise ValueError(
                    f"{self.type} band: got both q={self.q} and slope={self.slope}, "
                    "expected one of them"
                )
            if _shelf_slope_term(self.gain_db, self.slope) <= 0.0:
                raise ValueError(
                    f"{self.type} band slope: got {self.slope}, expected a number > 0 with "
                    f"(A + 1/A)(1/S - 1) + 2 > 0, i.e. S < "
                    f"{_max_shelf_slope(self.gain_db):.6g} for gain_db={self.gain_db}"
                )


def band_sos(band: Band, sample_rate: int) -> np.ndarray:
    """The band's biquad from the Audio EQ Cookbook (W3C Note 2021, "Biquad filter formulae").

    With ``cw = cos(w0)`` and ``sa = 2*sqrt(A)*alpha`` the note's coefficients are

    - peakingEQ: b = [1 + alpha*A, -2cw, 1 - alpha*A], a = [1 + alpha/A, -2cw, 1 - alpha/A]
    - lowShelf: b = A*[(A+1) - (A-1)cw + sa, 2((A-1) - (A+1)cw), (A+1) - (A-1)cw - sa],
      a = [(A+1) + (A-1)cw + sa, -2((A-1) + (A+1)cw), (A+1) + (A-1)cw - sa]
    - highShelf: b = A*[(A+1) + (A-1)cw + sa, -2((A-1) + (A+1)cw), (A+1) + (A-1)cw - sa],
      a = [(A+1) - (A-1)cw + sa, 2((A-1) - (A+1)cw), (A+1) - (A-1)cw - sa]
    - notch: b = [1, -2cw, 1], a = [1 + alpha, -2cw, 1 - alpha]
    - BPF (constant 0 dB peak gain): b = [alpha, 0, -alpha], a = [1 + alpha, -2cw, 1 - alpha]

    so the peak gain at f0 is dBgain, a shelf sits at dBgain/2 at f0 and reaches dBgain at DC
    (low) or Nyquist (high), and the notch is a zero on the unit circle at f0.

    Parameters
    ----------
    band
        The band to design.
    sample_rate
        Sampling rate in Hz; ``band.frequency_hz`` must be below half of it.

    Returns
    -------
    numpy.ndarray
        ``float64[1, 6]``: one section ``[b0, b1, b2, 1, a1, a2]`` normalised so a0 = 1.
    """
    _check_frequency(f"{band.type} band frequency_hz", band.frequency_hz, sample_rate / 2.0)
    w0 = 2.0 * math.pi * band.frequency_hz / sample_rate
    cw, sw = math.cos(w0), math.sin(w0)
    big_a = math.sqrt(db_to_gain(band.gain_db))  # 10^(dBgain/40)
    if band.slope is not None:
        alpha = sw / 2.0 * math.sqrt(_shelf_slope_term(band.gain_db, band.slope))
    else:
        default_q = SHELF_DEFAULT_Q if band.type in _SHELVES else BAND_DEFAULT_Q
        alpha = sw / (2.0 * (band.q if band.q is not None else default_q))

    if band.type == "peak":
        b = [1.0 + alpha * big_a, -2.0 * cw, 1.0 - alpha * big_a]
        a = [1.0 + alpha / big_a, -2.0 * cw, 1.0 - alpha / big_a]
    elif band.type in _SHELVES:
        # The high shelf is the low shelf with cos(w0) negated and the sign of b1, a1 flipped.
        sign = 1.0 if band.type == "low_shelf" else -1.0
        p, m, sa = big_a + 1.0, big_a - 1.0, 2.0 * math.sqrt(big_a) * alpha
        b = [
            big_a * (p - sign * m * cw + sa),
            sign * 2.0 * big_a * (m - sign * p * cw),
            big_a * (p - sign * m * cw - sa),
        ]
        a = [p + sign * m * cw + sa, -sign * 2.0 * (m + sign * p * cw), p + sign * m * cw - sa]
    else:
        b = [1.0, -2.0 * cw, 1.0] if band.type == "notch" else [alpha, 0.0, -alpha]
        a = [1.0 + alpha, -2.0 * cw, 1.0 - alpha]
    return np.array([[*b, *a]], dtype=np.float64) / a[0]


def pass_sos(
    kind: PassKind, cutoff_hz: float, slope_db_per_oct: int, sample_rate: int
) -> np.ndarray:
    """A Butterworth high- or low-pass of order ``slope_db_per_oct / 6`` in SOS form.

    Butterworth (S. Butterworth, "On the Theory of Filter Amplifiers", 1930): maximally flat
    passband, exactly -3.01 dB at the cutoff for every order, and an asymptotic roll-off of
    6.02 dB/octave per order. The analog prototype's poles lie evenly on the unit circle's
    left half, so an order N splits into a first-order section when N is odd and a
    second-order one per pole pair k = 1..N/2 with ``Q_k = 1 / (2 sin((2k - 1) pi / (2N)))``
    (e.g. 0.7071 for N = 2; 0.5412 and 1.3066 for N = 4). Each section goes through the
    bilinear transform with the cutoff pre-warped, ``K = tan(pi fc / Fs)`` (the Audio EQ
    Cookbook's LPF and HPF with that Q, written with K; U. Zoelzer, "Digital Audio Signal
    Processing", 2nd ed., 2008, ch. 5), so the digital response is
    |H|^2 = 1 / (1 + (tan(pi f/Fs) / tan(pi fc/Fs))^(+-2N)). Each section has unit gain in
    the passband; they run in order of rising Q, the most resonant last.

    The poles and zeros are ``scipy.signal.butter``'s (``analog=False``); designed here in
    closed form, since importing ``scipy.signal`` takes 0.6 s of a render's start.

    Parameters
    ----------
    kind
        ``"highpass"`` or ``"lowpass"``.
    cutoff_hz
        The -3 dB frequency in Hz, strictly between 0 and Nyquist.
    slope_db_per_oct
        One of ``PASS_SLOPES_DB_PER_OCT`` (6, 12, 18, 24, 36, 48 dB/octave: order 1..8).
    sample_rate
        Sampling rate in Hz.

    Returns
    -------
    numpy.ndarray
        ``float64[sections, 6]`` with ``ceil(order / 2)`` sections.
    """
    _check_choice("pass filter kind", kind, get_args(PassKind))
    _check_choice(f"{kind} slope_db_per_oct", slope_db_per_oct, PASS_SLOPES_DB_PER_OCT)
    _check_frequency(f"{kind} cutoff_hz", cutoff_hz, sample_rate / 2.0)
    order = int(slope_db_per_oct) // 6
    k = math.tan(math.pi * cutoff_hz / sample_rate)  # math's tan: the same bits on every CPU
    lowpass = kind == "lowpass"
    sections = []
    if order % 2:
        norm = 1.0 / (1.0 + k)
        b = [k * norm, k * norm, 0.0] if lowpass else [norm, -norm, 0.0]
        sections.append([*b, 1.0, (k - 1.0) * norm, 0.0])
    for pair in range(order // 2, 0, -1):
        k_over_q = 2.0 * k * math.sin((2 * pair - 1) * math.pi / (2 * order))  # K / Q_pair
        norm = 1.0 / (1.0 + k_over_q + k * k)
        b0 = k * k * norm if lowpass else norm
        b = [b0, 2.0 * b0 if lowpass else -2.0 * b0, b0]
        sections.append([*b, 1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - k_over_q + k * k) * norm])
    return np.array(sections, dtype=np.float64)


def sos_power(sos: np.ndarray, radians: np.ndarray) -> np.ndarray:
    """``|H(e^jw)|^2`` of the cascade ``sos`` (``[sections, 6]``) at ``radians`` (0..pi).

    From real arithmetic: ``scipy.signal.sosfreqz`` multiplies complex numbers, which numpy
    does with fused multiply-adds on CPUs that have FMA and without elsewhere, so its last
    bits depend on the machine. On the unit circle a quadratic ``c0 + c1 z^-1 + c2 z^-2`` has
    real part ``c0 + c1 cos w + c2 cos 2w`` and imaginary part ``-(c1 sin w + c2 sin 2w)``.
    """
    cos_1, sin_1 = np.cos(radians), np.sin(radians)
    cos_2, sin_2 = np.cos(2.0 * radians), np.sin(2.0 * radians)
    power = np.ones(np.shape(radians))
    for b0, b1, b2, a0, a1, a2 in sos:
        numerator = (b0 + b1 * cos_1 + b2 * cos_2) ** 2 + (b1 * sin_1 + b2 * sin_2) ** 2
        denominator = (a0 + a1 * cos_1 + a2 * cos_2) ** 2 + (a1 * sin_1 + a2 * sin_2) ** 2
        power *= numerator / denominator
    return power


def routed_sections(
    sample_rate: int,
    channels: int,
    bands: Sequence[Band],
    highpass: tuple[float, int] | None,
    lowpass: tuple[float, int] | None,
) -> dict[BandChannels, list[np.ndarray]]:
    """Each band's SOS sections grouped by where they act: ``stereo`` (the pass filters
    first, then the all-channel bands), ``mid``, ``side``, ``left``, ``right``, each in the
    bands' order. On mono, mid/left/right bands join ``stereo`` and side bands are dropped
    (the module docstring says why)."""
    everywhere = ("stereo",) if channels == 2 else ("stereo", "mid", "left", "right")
    routed: dict[BandChannels, list[np.ndarray]] = {name: [] for name in get_args(BandChannels)}
    routed["stereo"] = [
        pass_sos(kind, *spec, sample_rate)
        for kind, spec in (("highpass", highpass), ("lowpass", lowpass))
        if spec is not None
    ]
    for band in bands:
        if channels == 2 or band.channels != "side":
            routed["stereo" if band.channels in everywhere else band.channels].append(
                band_sos(band, sample_rate)
            )
    return routed


class Equalizer:
    """The pass filters and bands over a stream of blocks, each cascade's state carried over.

    Every cascade is designed once. ``scipy.signal.sosfilt`` keeps the transposed direct
    form II state of each section (two delays per channel) in ``zi``, which this object hands
    from one block to the next, so each sample meets the same operations whatever the
    partition into blocks: the concatenated outputs equal one call on the whole signal bit
    for bit. The pass filters and ``stereo`` bands act first, then mid/side, then left/right
    (the module docstring gives the routing, and what mono does with it).

    Parameters
    ----------
    sample_rate
        Sampling rate in Hz.
    channels
        Channels of every block, 1 or 2.
    bands
        The bands, applied in order within each routing.
    highpass, lowpass
        ``(cutoff_hz, slope_db_per_oct)`` for a Butterworth pass filter, or ``None``.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        bands: Sequence[Band] = (),
        highpass: tuple[float, int] | None = None,
        lowpass: tuple[float, int] | None = None,
    ) -> None:
        check_channels("equalizer", channels)
        routed = routed_sections(sample_rate, channels, bands, highpass, lowpass)
        shared = routed["stereo"]
        left_right = [routed["left"], routed["right"]]
        self._channels = channels
        self._mid_side = channels == 2 and bool(routed["mid"] or routed["side"])
        # Linear filters commute, and the shared cascade treats both channels alike, so it
        # runs inside the mid and side cascades, or else inside the left and right ones.
        if self._mid_side:
            rows, after = [shared + routed["mid"], shared + routed["side"]], left_right
        elif any(left_right):
            rows, after = [shared + sections for sections in left_right], []
        else:
            rows, after = [shared], []
        # One cascade over every channel at once, or one per row.
        self._all = _Cascade(rows[0], channels) if len(rows) == 1 else None
        self._rows = [] if self._all is not None else [_Cascade(sections, 1) for sections in rows]
        self._after = [
            (row, _Cascade(sections, 1)) for row, sections in enumerate(after) if sections
        ]

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter the next block.

        Parameters
        ----------
        x
            ``float64[channels, n]``, any ``n >= 0``; left untouched.

        Returns
        -------
        numpy.ndarray
            A new ``float64[channels, n]``. The filters are causal and add no latency.
        """
        x = checked_block("equalizer", x, self._channels)
        if x.shape[1] == 0:  # sosfilt refuses an empty signal; no state moves
            return x.copy()
        if self._all is not None:
            return self._all(x)
        # Each row is filtered into y with at most one row-sized temporary alive: with more
        # (filtered rows stacked afterwards) glibc gave back and re-faulted ~2.5 MB of heap
        # per 65536-sample block, which doubled the time.
        y = np.empty((2, x.shape[1]))
        if self._mid_side:
            self._mid_side_into(x, y)
        else:
            for row, cascade in enumerate(self._rows):
                y[row : row + 1] = cascade(x[row : row + 1])
        for row, cascade in self._after:
            y[row : row + 1] = cascade(y[row : row + 1])
        return y

    def pairs_with(self, other: Equalizer) -> bool:
        """Whether ``filter_pair`` can run this equalizer and ``other`` side by side: each
        runs one cascade over all its channels, as many channels and sections as the other."""
        return (
            self._all is not None
            and other._all is not None
            and self._channels == other._channels
            and len(self._all.sos) == len(other._all.sos) > 0
        )

    def _mid_side_into(self, x: np.ndarray, y: np.ndarray) -> None:
        """M = (L+R)/2 and S = (L-R)/2 of ``x`` through their cascades, decoded into ``y`` as
        L = M + S, R = M - S (the filtered side is freed on return)."""
        np.add(x[0], x[1], out=y[0])
        np.subtract(x[0], x[1], out=y[1])
        y *= 0.5
        y[:1] = self._rows[0](y[:1])
        side = self._rows[1](y[1:])
        np.subtract(y[:1], side, out=y[1:])
        np.add(y[:1], side, out=y[:1])


def filter_pair(first: Equalizer, second: Equalizer, x: np.ndarray) -> np.ndarray:
    """The next blocks of two equalizers that pair (``Equalizer.pairs_with``) in one SIMD
    loop: ``x`` is ``float64[2 * channels, n]``, ``first``'s block above ``second``'s, and
    the result a new array of that shape. Each gets the bits its own ``process`` gives: the
    two cascades share the loop but not a lane (``biquad_loop``), so two tracks take about
    1.3 times the time of one."""
    assert first.pairs_with(second) and first._all is not None and second._all is not None
    channels = first._channels
    if x.shape != (2 * channels, x.shape[1]):
        raise ValueError(f"equalizer pair: got shape {x.shape}, expected ({2 * channels}, n)")
    if x.shape[1] == 0:
        return x.copy()
    cascades = (first._all, second._all)
    state = np.concatenate([cascade.zi for cascade in cascades], axis=1)
    y = np.empty(x.shape)
    _sosfilt(np.stack([cascade.sos for cascade in cascades]), x, state, y)
    cascades[0].zi[...] = state[:, :channels]
    cascades[1].zi[...] = state[:, channels:]
    return y


class _Cascade:
    """Second-order sections in series and their ``sosfilt`` state ``zi[section, channel, 2]``
    for ``channels`` rows, starting from rest."""

    def __init__(self, sections: list[np.ndarray], channels: int) -> None:
        self.sos = np.concatenate(sections) if sections else np.empty((0, 6))
        self.zi = np.zeros((len(self.sos), channels, 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``x``, ``[channels, n]`` with ``n >= 1``, filtered into a new array."""
        return sosfilt(self.sos, x, self.zi)


def sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray | None = None) -> np.ndarray:
    """``scipy.signal.sosfilt(sos, x, axis=-1, zi=zi)[0]`` to the bit, ``zi`` (``[sections,
    channels, 2]``, from rest if None) updated in place: ``x`` is one signal (1-D) or
    ``[channels, n]`` with one or two channels. A new array of ``x``'s shape. Without
    importing ``scipy.signal`` (0.6 s)."""
    rows = np.atleast_2d(np.ascontiguousarray(x, dtype=np.float64))
    if rows.ndim != 2 or rows.shape[0] > 2:
        raise ValueError(f"sosfilt: got shape {np.shape(x)}, expected [n] or [1 or 2, n]")
    if not len(sos) or not rows.shape[1]:
        return np.array(x, dtype=np.float64)
    state = np.zeros((len(sos), rows.shape[0], 2)) if zi is None else zi
    y = np.empty(rows.shape)
    _sosfilt(np.ascontiguousarray(sos, dtype=np.float64), rows, state, y)
    return y.reshape(np.shape(x))


def sosfiltfilt(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfiltfilt(sos, x, padtype=None)`` of one signal (1-D), to rounding:
    ``sos`` forwards from its steady state for the first sample, then backwards from its
    steady state for the last output, so the result has zero phase and the squared
    magnitude. Without importing ``scipy.signal`` (0.6 s)."""
    rest = _steady_states(sos)  # [sections, 2], for a unit input held forever
    forward = sosfilt(sos, x, (rest * x[0])[:, np.newaxis, :])
    backward = sosfilt(sos, forward[::-1], (rest * forward[-1])[:, np.newaxis, :])
    return backward[::-1].copy()


def _steady_states(sos: np.ndarray) -> np.ndarray:
    """Each section's transposed direct form II state after a unit input held forever
    (``scipy.signal.sosfilt_zi``), in closed form: section k sees the DC gain ``g`` of the
    sections before it, outputs ``y = g H_k(1)``, and holds ``z0 = y - b0 g`` and
    ``z1 = b2 g - a2 y``."""
    states = np.zeros((len(sos), 2))
    gain = 1.0
    for k, (b0, b1, b2, _, a1, a2) in enumerate(sos):
        y = gain * (b0 + b1 + b2) / (1.0 + a1 + a2)
        states[k] = y - b0 * gain, b2 * gain - a2 * y
        gain = y
    return states


@njit(nogil=True, cache=True)
def _sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray, y: np.ndarray) -> None:
    """``scipy.signal.sosfilt`` of one or two channels into ``y`` (may be ``x``), ``zi``
    updated in place; or, with ``sos`` of two cascades (``[2, sections, 6]``), of two or four
    channels, each half through its own (``biquad_loop.cascade_part``).

    The same transposed direct form II, operation for operation (scipy's ``_sosfilt.pyx``),
    so the bits are the same; run by ``biquad_loop.cascade_part``, both channels in one SIMD
    vector and the state in registers, at most ``MOST_SECTIONS`` sections per pass. Five
    stereo sections take 18 cycles a frame, against 31 for numba's own loop of this form
    (one channel: 18 against 20)."""
    sections = sos.shape[-2]
    if sections == 0:  # no section: y is x (the delay's repeats may be unfiltered)
        for channel in range(x.shape[0]):
            for i in range(x.shape[1]):
                y[channel, i] = x[channel, i]
        return
    source = x
    for first in range(0, sections, MOST_SECTIONS):
        cascade_part(sos, first, min(MOST_SECTIONS, sections - first), source, zi, y)
        source = y


def equalize(
    x: np.ndarray,
    sample_rate: int,
    bands: Sequence[Band] = (),
    highpass: tuple[float, int] | None = None,
    lowpass: tuple[float, int] | None = None,
) -> np.ndarray:
    """The whole of ``x``, ``float64[channels, samples]`` (1 or 2 channels), through a fresh
    ``Equalizer`` with these parameters as a single block; a new array of the same shape."""
    if x.ndim != 2:
        raise ValueError(f"equalize x: got shape {x.shape}, expected (channels 1 or 2, samples)")
    return Equalizer(sample_rate, x.shape[0], bands, highpass, lowpass).process(x)


def _shelf_slope_term(gain_db: float, slope: float) -> float:
    """(A + 1/A)(1/S - 1) + 2, whose square root the cookbook multiplies into alpha."""
    big_a = math.sqrt(db_to_gain(gain_db))
    return (big_a + 1.0 / big_a) * (1.0 / slope - 1.0) + 2.0 if slope > 0.0 else -math.inf


def _max_shelf_slope(gain_db: float) -> float:
    """The S at which the slope term reaches 0 (no limit, ``inf``, at 0 dB gain)."""
    big_a = math.sqrt(db_to_gain(gain_db))
    excess = 1.0 - 2.0 / (big_a + 1.0 / big_a)
    return math.inf if excess <= 0.0 else 1.0 / excess


def _check_frequency(name: str, frequency_hz: float, nyquist_hz: float) -> None:
    if not (0.0 < frequency_hz < nyquist_hz):
        limit = "" if math.isinf(nyquist_hz) else f" and < {nyquist_hz:g} (Nyquist)"
        raise ValueError(f"{name}: got {frequency_hz}, expected a frequency > 0 Hz{limit}")


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: got {value!r}, expected one of {', '.join(map(str, choices))}")

"""Linear-phase EQ: the parametric EQ's magnitude response with no phase distortion.

The bands, pass filters and routing are those of ``render.dsp.eq``; each routed path (the
all-channel cascade, or mid and side, or left and right) becomes one symmetric FIR whose
magnitude is |H(e^jw)| of that path's second-order sections. Symmetry makes the phase exactly
linear (type I FIR, odd length N: H = A(w) e^(-jw(N-1)/2) with A real; Oppenheim & Schafer,
"Discrete-Time Signal Processing", 3rd ed., §5.7.3), so every frequency is delayed alike, at
the cost of latency.

Design: the window method (Oppenheim & Schafer §7.5; J. O. Smith, "Spectral Audio Signal
Processing", "The Window Method for FIR Filter Design"). The zero-phase response A(w) is
sampled on a grid 4x denser than the longest FIR and inverse-transformed (frequency sampling),
then the N central samples of that ideal, two-sided response are kept under a Tukey window
(F. J. Harris, "On the use of windows for harmonic analysis with the DFT", Proc. IEEE 66(1),
1978, §V, the tapered cosine). A(w) is |H| with its sign flipped past every interior zero on the
unit circle (a notch): the signed amplitude is smooth there, where |H| has a corner whose ideal
response decays only as 1/n^2. N is the shortest 2^k - 1 whose FIR stays within
``TOLERANCE_DB`` of |H| from ``ACCURATE_FROM_HZ`` up (relative to at least ``FLOOR_DB``),
checked on the grid for every path, so the lowest, narrowest move sets the length.

Filtering: uniformly partitioned overlap-save (F. Wefers, "Partitioned Convolution Algorithms
for Real-Time Auralization", Logos, 2015, the UPOLS algorithm; W. G. Gardner, "Efficient
Convolution without Input-Output Delay", JAES 43(3), 1995): the FIR is cut into
``BLOCK_SAMPLES`` partitions, each input block is transformed once, and a delay line of block
spectra is multiplied by the partitions' spectra. A 16384-point FFT stays in cache, where one
FFT over the whole FIR does not (measured: about 3 times the time per sample at 2^17 points).

Latency: (N - 1)/2 + ``BLOCK_SAMPLES`` (``linear_phase_latency_samples``), the FIR's centre
plus one block, which is filtered once all of it has arrived; the engine removes it. Zero
phase rings (N - 1)/2 samples on both sides of an event (``linear_phase_tail_samples``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from render.dsp.eq import Band, routed_sections, sos_power
from render.dsp.levels import db_to_gain
from render.dsp.shapes import check_channels, checked_block
from render.dsp.windows import tukey
from render.jit import njit

BLOCK_SAMPLES = 8192
"""Partition and hop, samples: the largest whose 2x FFT (two channels) still fits the 512 kB
L2 cache of the machine measured. Every output sample waits for its whole block, so this adds
to the latency (171 ms at 48 kHz); in exchange any split of the input gives the same bytes."""
TOLERANCE_DB = 0.1
"""Largest magnitude error against the minimum-phase design: a few times finer than the
smallest level change listeners detect (0.2 to 1 dB; Zwicker & Fastl, "Psychoacoustics",
3rd ed., ch. 7), so switching the phase mode changes no tonal balance."""
ACCURATE_FROM_HZ = 20.0
"""The lower limit of hearing: below it the FIR only approximates the response (a 6 dB/oct
high-pass's corner at DC, for one, would need an unbounded length)."""
FLOOR_DB = -40.0
"""Deeper than this the tolerance is absolute (0.1 dB of -40 dB, about -79 dB): a stopband or
a notch's bottom need not be matched in dB, only kept out of earshot."""
MAX_LENGTH_S = 1.5
"""The longest FIR, seconds (65535 taps at 44.1 and 48 kHz, the top of the 8k to 64k range of
mastering linear-phase EQs). A 50 Hz notch at Q 8 needs all of it; moves that ring longer
(narrower, or lower) get it and stay a little outside ``TOLERANCE_DB``."""
TAPER = 0.1
"""Tukey fraction: the central 90 % of the ideal response passes untouched, 5 % at each end
fades out, so the cut leaves no step to ripple the response (Gibbs; O&S §7.5). The taps
needed are set by how fast the ideal response decays, so the window should keep all it can.
Measured on the typical mastering moves of the tests at 44.1 / 48 / 96 kHz: 4095 / 4095 / 8191
taps here, against 4095 / 8191 / 16383 with Tukey 0.5 and 16383 / 16383 / 32767 (Kaiser,
beta 8) or 16383 / 32767 / 65535 (Blackman) with windows that taper from the centre."""
_GRID_OVERSAMPLING = 4
"""Grid points per tap of the longest FIR: its ideal response aliases from 4 lengths away."""


def linear_phase_latency_samples(
    sample_rate: int,
    bands: Sequence[Band] = (),
    highpass: tuple[float, int] | None = None,
    lowpass: tuple[float, int] | None = None,
) -> int:
    """The delay of ``LinearPhaseEqualizer``'s output, samples: the FIR's centre (N - 1)/2
    plus one block. The same for mono and stereo input (the length serves both)."""
    return linear_phase_tail_samples(sample_rate, bands, highpass, lowpass) + BLOCK_SAMPLES


def linear_phase_tail_samples(
    sample_rate: int,
    bands: Sequence[Band] = (),
    highpass: tuple[float, int] | None = None,
    lowpass: tuple[float, int] | None = None,
) -> int:
    """How long the aligned (latency-removed) output rings after the input ends: (N - 1)/2.
    It rings as long before the input starts (pre-ringing, the price of zero phase)."""
    return (_design(sample_rate, tuple(bands), highpass, lowpass).length - 1) // 2


class LinearPhaseEqualizer:
    """``render.dsp.eq.Equalizer``'s parameters as linear-phase FIRs, over a stream of blocks.

    Output ``y[n] = sum_k g[k] x[n - k]``: a causal FIR ``g``, the designed symmetric taps
    preceded by ``BLOCK_SAMPLES`` zeros, so ``g`` is symmetric about ``latency_samples`` and the
    first ``latency_samples`` outputs answer the zeros before the start. The engine removes the
    delay by padding the input with ``latency_samples`` zeros and dropping as many outputs.
    Input is gathered into fixed blocks at fixed positions from the first sample, so any split
    into calls gives the same bytes as one call. Routing is ``Equalizer``'s: mid/side and
    left/right paths are designed as whole cascades (with left/right after mid/side, the four
    products), and a mono input drops ``side`` bands and takes every other band.

    Parameters
    ----------
    sample_rate
        Sampling rate in Hz.
    channels
        Channels of every block, 1 or 2.
    bands
        The bands (``render.dsp.eq.Band``).
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
        check_channels("linear-phase equalizer", channels)
        design = _design(sample_rate, tuple(bands), highpass, lowpass)
        layout = design.layouts[channels]
        self.taps: np.ndarray = layout.taps
        """``float64[filters, N]``, read-only: the symmetric FIR of each path (the one of
        ``S`` to the right output carries the decoder's minus sign)."""
        self.latency_samples = linear_phase_latency_samples(sample_rate, bands, highpass, lowpass)
        self._channels = channels
        self._mid_side = layout.mid_side
        self._routes = layout.routes
        parts = -(-design.length // BLOCK_SAMPLES)
        padded = np.zeros((len(self.taps), parts * BLOCK_SAMPLES))
        padded[:, : design.length] = self.taps
        self._spectra = np.fft.rfft(
            padded.reshape(len(self.taps), parts, BLOCK_SAMPLES), 2 * BLOCK_SAMPLES, axis=-1
        )
        self._spectra_line = np.zeros((parts, channels, BLOCK_SAMPLES + 1), dtype=np.complex128)
        self._newest = 0
        self._frame = np.zeros((channels, 2 * BLOCK_SAMPLES))
        self._sum = np.empty((channels, BLOCK_SAMPLES + 1), dtype=np.complex128)
        self._filtered = np.zeros((channels, 2 * BLOCK_SAMPLES))
        self._filled = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter the next block.

        Parameters
        ----------
        x
            ``float64[channels, n]``, any ``n >= 0``; left untouched.

        Returns
        -------
        numpy.ndarray
            A new ``float64[channels, n]``: the FIR's output, ``latency_samples`` late.
        """
        x = checked_block("linear-phase equalizer", x, self._channels)
        y = np.empty((self._channels, x.shape[1]))
        done = 0
        while done < x.shape[1]:
            take = min(x.shape[1] - done, BLOCK_SAMPLES - self._filled)
            at = slice(BLOCK_SAMPLES + self._filled, BLOCK_SAMPLES + self._filled + take)
            # The last block's outputs leave as its successor's samples arrive.
            y[:, done : done + take] = self._filtered[:, at]
            into = self._frame[:, at]
            block = x[:, done : done + take]
            if self._mid_side:
                np.add(block[0], block[1], out=into[0])
                np.subtract(block[0], block[1], out=into[1])
                into *= 0.5
            else:
                into[:] = block
            self._filled += take
            done += take
            if self._filled == BLOCK_SAMPLES:
                self._convolve_block()
        return y

    def _convolve_block(self) -> None:
        """One UPOLS step: the spectrum of the last two blocks joins the delay line, each path
        sums its partitions against it, and the second half of the inverse FFT is this
        block's output (the first half wraps around)."""
        self._newest = (self._newest + 1) % len(self._spectra_line)
        self._spectra_line[self._newest] = np.fft.rfft(self._frame, axis=-1)
        _sum_partitions(self._spectra_line, self._newest, self._spectra, self._routes, self._sum)
        self._filtered[:] = np.fft.irfft(self._sum, 2 * BLOCK_SAMPLES, axis=-1)
        self._frame[:, :BLOCK_SAMPLES] = self._frame[:, BLOCK_SAMPLES:]
        self._filled = 0


def equalize_linear_phase(
    x: np.ndarray,
    sample_rate: int,
    bands: Sequence[Band] = (),
    highpass: tuple[float, int] | None = None,
    lowpass: tuple[float, int] | None = None,
) -> np.ndarray:
    """The whole of ``x``, ``float64[channels, samples]``, through a fresh
    ``LinearPhaseEqualizer`` as one block: a new array of the same shape, delayed by
    ``linear_phase_latency_samples`` (its last samples are not in it: pad ``x`` to keep them)."""
    if x.ndim != 2:
        raise ValueError(
            f"equalize_linear_phase x: got shape {x.shape}, expected (channels 1 or 2, samples)"
        )
    return LinearPhaseEqualizer(sample_rate, x.shape[0], bands, highpass, lowpass).process(x)


@dataclass(frozen=True)
class _Layout:
    """The FIRs for one channel count, and how they connect: ``routes[i] = (output, row,
    filter)`` adds ``taps[filter]`` applied to input ``row`` (L, R; or M, S when
    ``mid_side``) into ``output``."""

    taps: np.ndarray
    routes: np.ndarray
    mid_side: bool


@dataclass(frozen=True)
class _Design:
    length: int
    layouts: dict[int, _Layout]


@dataclass(frozen=True)
class _Target:
    """One cascade on the design grid: its ideal zero-phase response (circular), and on the
    bins checked its magnitude |H| and the largest error each bin allows."""

    zero_phase: np.ndarray
    magnitude: np.ndarray
    allowed: np.ndarray


_Path = tuple[np.ndarray, float]
"""A routed path's sections ``float64[n, 6]`` in series, and the sign its FIR carries."""


@lru_cache(maxsize=16)
def _design(
    sample_rate: int,
    bands: tuple[Band, ...],
    highpass: tuple[float, int] | None,
    lowpass: tuple[float, int] | None,
) -> _Design:
    """The FIRs for mono and stereo input, one length for both (the engine needs the latency
    before it knows the channels). Cached: the latency query and the processors share it."""
    max_exponent = int(math.log2(MAX_LENGTH_S * sample_rate + 1.0))
    grid_size = _GRID_OVERSAMPLING * 2**max_exponent
    radians = np.linspace(0.0, math.pi, grid_size // 2 + 1)
    # From the grid point at or below ACCURATE_FROM_HZ, so the limit itself is covered.
    bin_hz = sample_rate / grid_size
    checked = np.arange(len(radians)) * bin_hz > ACCURATE_FROM_HZ - bin_hz
    routings = {
        channels: _routing(sample_rate, channels, bands, highpass, lowpass) for channels in (1, 2)
    }
    sections: dict[bytes, np.ndarray] = {}  # each band's amplitude, computed once
    targets: dict[bytes, _Target] = {}
    for paths, _, _ in routings.values():
        for sos, _ in paths:
            if sos.tobytes() not in targets:
                amplitude = np.ones_like(radians)
                for section in sos:
                    if section.tobytes() not in sections:
                        sections[section.tobytes()] = _signed_amplitude(section, radians)
                    amplitude = amplitude * sections[section.tobytes()]
                targets[sos.tobytes()] = _target(amplitude, checked)
    length = _shortest_length(list(targets.values()), max_exponent)
    layouts = {}
    for channels, (paths, routes, mid_side) in routings.items():
        taps = np.stack(
            [sign * _taps(targets[sos.tobytes()].zero_phase, length) for sos, sign in paths]
        )
        taps.setflags(write=False)
        layouts[channels] = _Layout(taps, np.array(routes, dtype=np.int64), mid_side)
    return _Design(length, layouts)


def _routing(
    sample_rate: int,
    channels: int,
    bands: tuple[Band, ...],
    highpass: tuple[float, int] | None,
    lowpass: tuple[float, int] | None,
) -> tuple[list[_Path], list[tuple[int, int, int]], bool]:
    """``Equalizer``'s routing as whole cascades: the paths, the routes ``(output, row,
    path)``, and whether the rows are M = (L+R)/2, S = (L-R)/2 rather than L, R.

    With mid/side bands L' = H_L (H_M M + H_S S) and R' = H_R (H_M M - H_S S): each of the
    four products gets its own FIR (in series, one FIR per factor would add the latencies)."""
    routed = routed_sections(sample_rate, channels, bands, highpass, lowpass)

    def path(*names: str, sign: float = 1.0) -> _Path:
        sos = [np.empty((0, 6))] + [sos for name in ("stereo", *names) for sos in routed[name]]
        return np.concatenate(sos), sign

    if channels == 2 and (routed["mid"] or routed["side"]):
        paths = [
            path("left", "mid"),
            path("left", "side"),
            path("right", "mid"),
            path("right", "side", sign=-1.0),
        ]
        return paths, [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3)], True
    if channels == 2 and (routed["left"] or routed["right"]):
        return [path("left"), path("right")], [(0, 0, 0), (1, 1, 1)], False
    return [path()], [(row, row, 0) for row in range(channels)], False


def _signed_amplitude(section: np.ndarray, radians: np.ndarray) -> np.ndarray:
    """|H| of one ``[b0, b1, b2, 1, a1, a2]`` section on ``radians``, negated above a pair of
    zeros on the unit circle: a palindromic numerator (b0 = b2, |b1| < 2|b0|) is
    e^(-jw) (b1 + 2 b0 cos w), real up to the delay, changing sign at cos w = -b1 / (2 b0)."""
    magnitude = np.sqrt(sos_power(section[np.newaxis], radians))
    b0, b1, b2 = section[:3]
    if b0 == b2 and abs(b1) < 2.0 * abs(b0):
        magnitude[radians > math.acos(-b1 / (2.0 * b0))] *= -1.0
    return magnitude


def _target(amplitude: np.ndarray, checked: np.ndarray) -> _Target:
    """The ideal response of a signed amplitude and its tolerance on the ``checked`` bins.

    A bin allows ``TOLERANCE_DB`` of the smallest magnitude among it and its neighbours (at
    least ``FLOOR_DB``): the magnitude can fall steeply between bins, towards a notch, where
    the FIR's error, smooth over a few bins, must still fit."""
    magnitude = np.abs(amplitude)
    padded = np.pad(magnitude, 1, mode="edge")
    lowest = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    tolerance = 1.0 - db_to_gain(-TOLERANCE_DB)  # the tighter side of +-0.1 dB
    allowed = tolerance * np.maximum(lowest, db_to_gain(FLOOR_DB))
    zero_phase = np.fft.irfft(amplitude, 2 * (len(amplitude) - 1))
    return _Target(zero_phase, magnitude[checked], allowed[checked])


def _taps(zero_phase: np.ndarray, length: int) -> np.ndarray:
    """The ``length`` (odd) central samples of the circular zero-phase response, centred and
    Tukey-windowed, made exactly symmetric (h[k] = h[N-1-k] to the bit)."""
    half = (length - 1) // 2
    taps = np.concatenate([zero_phase[len(zero_phase) - half :], zero_phase[: half + 1]])
    taps *= tukey(length, TAPER)
    return 0.5 * (taps + taps[::-1])


def _shortest_length(targets: list[_Target], max_exponent: int) -> int:
    """The shortest N = 2^k - 1 (k <= ``max_exponent``) whose FIRs all meet their targets on
    the design grid, by bisection on k; the longest when none does."""

    def meets(length: int) -> bool:
        for target in targets:
            spectrum = np.fft.rfft(_taps(target.zero_phase, length), len(target.zero_phase))
            tail = spectrum[-len(target.magnitude) :]
            got = np.sqrt(tail.real**2 + tail.imag**2)  # np.abs: hypot, CPU-dependent
            if np.any(np.abs(got - target.magnitude) > target.allowed):
                return False
        return True

    failing, passing = 0, max_exponent  # 2^0 - 1 = 0 taps fails by definition
    while passing - failing > 1:
        middle = (failing + passing) // 2
        if meets(2**middle - 1):
            passing = middle
        else:
            failing = middle
    return 2**passing - 1


@njit(nogil=True, cache=True)
def _sum_partitions(
    spectra_line: np.ndarray,
    newest: int,
    spectra: np.ndarray,
    routes: np.ndarray,
    out: np.ndarray,
) -> None:
    """``out[o] = sum over routes (o, r, f) and partitions p of spectra_line[newest - p, r] *
    spectra[f, p]``: the frequency-domain delay line of UPOLS (block ``newest - p`` meets
    partition ``p``), every route summed into its output."""
    parts, bins = spectra.shape[1], spectra.shape[2]
    for output in range(out.shape[0]):  # loops: a slice assignment compiles 10x slower
        for k in range(bins):
            out[output, k] = 0.0
    for route in range(routes.shape[0]):
        output, row, which = routes[route, 0], routes[route, 1], routes[route, 2]
        for part in range(parts):
            block = spectra_line[(newest - part) % parts, row]
            partition = spectra[which, part]
            for k in range(bins):
                out[output, k] += block[k] * partition[k]

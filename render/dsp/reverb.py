"""Convolution reverb, and the seeded synthetic impulse response it plays when no file is given.

The synthetic IR is exponentially decaying noise, the statistical model of a diffuse room's
late response (Moorer, "About this reverberation business", Computer Music Journal 3(2),
1979). Its parts:

- Decay: the envelope falls 60 dB in the reverberation time, and ``decay_s`` is the
  broadband T30 a meter reads on the IR (Schroeder, "New method of measuring reverberation
  time", JASA 37(3), 1965; evaluated as in ISO 3382-1:2009).
- Damping: a 4th-order Linkwitz-Riley crossover at ``CROSSOVER_HZ`` (Linkwitz, JAES 24(1),
  1976) splits the noise; its two bands sum to an allpass, so undamped the IR is white. The
  high band decays in ``(1 - 0.75 * damping)`` of the low band's time: rooms lose their top
  octaves first to air and soft surfaces (ISO 9613-1 air absorption rises steeply above
  2 kHz), and at full damping the highs die four times sooner, a heavily furnished room,
  without the tail turning into a low hum. Because the bright high band holds most of the
  energy of white noise, damping shortens the broadband decay; the low band's time is raised
  so that the broadband T30 stays ``decay_s`` (solved on the expected decay curve, which is a
  sum of exponentials in closed form), so the decay knob and the damping knob stay separate.
- Size: the onset. Reflections in a room arrive ever denser, their count growing like
  ``t**2`` (Kuttruff, "Room Acoustics", 5th ed., ch. 4, the temporal distribution of
  reflections: ``dN/dt = 4 pi c**3 t**2 / V``), until they merge into noise at the mixing
  time. Here the dense noise fades in with an amplitude ramp (energy ``~ t**2``) over
  ``10 + 70 * size`` ms, and ``EARLY_TAPS`` discrete reflections at random instants in that
  window (the first exactly at the predelay) carry the energy the ramp leaves out, so the
  early pattern is sparser and more spread out in a larger room while the decay curve is
  the same.
- Width: mid and side are independent noises and ``L, R = mid +- width * side``: independent
  channels at 1, identical at 0. The mid does not depend on ``width``.
- Level: each channel is scaled to unit energy (``sum(ir[c] ** 2) == 1``), so white noise
  sent in comes back at the same RMS whatever the decay, size or damping.
- Length: predelay, then 1.5 times the low band's reverberation time, where the slowest band
  has fallen 90 dB (1.5 * ``decay_s`` when undamped).
"""

from __future__ import annotations

import math

import numpy as np

from render.dsp.eq import sosfilt
from render.dsp.filters import band_limit_sos, butterworth_sos
from render.dsp.kernel_math import exp_each, log10_each
from render.jit import njit

CROSSOVER_HZ = 2000.0
"""Where damping starts: the air and soft furnishing losses that shorten a room's decay act
mostly in the 2 kHz octave and above."""
EARLY_TAPS = 8
"""Discrete early reflections: a handful, heard as a pattern rather than as noise."""
HIGH_BAND_RT60_SPAN = 0.75
"""At full damping the high band's reverberation time is 1 - 0.75 = 1/4 of the low band's."""
PARTITION = 1 << 16
"""Samples per partition of the convolution, of the input and of the IR alike (1.4 s at
48 kHz): each partition is transformed at twice this length. Blocks given to
``ConvolutionReverb.process`` must be whole multiples of it (but the last)."""
_DB_PER_RT60 = 60.0
_RT60_TO_ENERGY_RATE = 6.0 * math.log(10.0)
"""Energy falls as ``exp(-rate * t / rt60)``: 60 dB (10**6 in energy) in one RT60."""


def synthetic_ir(
    sample_rate: int,
    *,
    decay_s: float,
    predelay_ms: float,
    damping: float,
    size: float,
    width: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A seeded stereo impulse response, ``float64[2, n]``; the same ``rng`` state gives the
    same bytes.

    Parameters
    ----------
    sample_rate : int
        Samples per second, Hz.
    decay_s : float
        Broadband reverberation time RT60 (T30 of the IR), s; above 0.
    predelay_ms : float
        Silence before the first reflection, ms: ``ir[:, :round(predelay_ms * fs / 1000)]``
        is exactly 0 and the next sample is the first reflection.
    damping : float
        0..1: how much faster the highs decay (see the module notes).
    size : float
        0..1: spread of the early reflections and length of the build-up, 10 to 80 ms.
    width : float
        0..1: 0 gives identical channels, 1 independent ones.
    rng : numpy.random.Generator
        The only source of randomness.
    """
    for name, value in (("size", size), ("width", width)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"reverb {name}: got {value}, expected 0 to 1")
    bands, correlation, rt60s = _decay(sample_rate, decay_s, damping)
    n_pre, n_tail = _lengths(sample_rate, predelay_ms, rt60s)
    t = np.arange(n_tail) / sample_rate
    envelopes = [exp_each(-0.5 * _RT60_TO_ENERGY_RATE * t / rt60) for rt60 in rt60s]
    build_up = min(n_tail, max(1, round((10.0 + 70.0 * size) * sample_rate / 1000.0)))
    mid, side = (_decaying_noise(rng, bands, envelopes, correlation, build_up) for _ in range(2))

    ir = np.zeros((2, n_pre + n_tail))
    ir[0, n_pre:] = mid + width * side
    ir[1, n_pre:] = mid - width * side
    ir /= np.sqrt(np.sum(ir**2, axis=1, keepdims=True))
    return ir


def reverberate(
    x: np.ndarray,
    ir: np.ndarray,
    *,
    mix: float,
    sample_rate: int,
    highpass_hz: float | None = None,
    lowpass_hz: float | None = None,
) -> np.ndarray:
    """Convolve ``x`` with ``ir``: ``(1 - mix) * x + mix * wet``, cut to the length of ``x``.

    Parameters
    ----------
    x : float64[channels, samples]
        The signal; pad it with ``reverb_tail_samples(ir)`` of silence to keep the tail.
    ir : float64[ir_channels, ir_samples]
        Impulse response. Channel ``c`` of ``x`` is convolved with ``ir[c]`` (a mono ``x``
        uses ``ir[0]``, a mono ``ir`` serves both channels). No cross-feed between channels:
        four-path true-stereo IRs are not supported.
    mix : float
        Wet share, 0..1.
    sample_rate : int
        Samples per second, Hz, for the filters.
    highpass_hz, lowpass_hz : float or None
        2nd-order Butterworth filters on the wet signal only (``render.dsp.filters``), to keep
        the tail out of the low end or push it behind the source. ``None`` (default): open.

    Returns
    -------
    float64[channels, samples]
        A new array shaped like ``x``.

    Notes
    -----
    Uniformly partitioned overlap-add convolution (Oppenheim & Schafer, "Discrete-Time Signal
    Processing", ch. 8, linear convolution with the DFT; the partitioned form as in Wefers,
    "Partitioned convolution algorithms for real-time auralization", 2015, ch. 5): input and
    IR are cut into ``PARTITION``-sample parts, each transformed at twice that length; each
    input part's spectrum is multiplied with every IR part's, and the products that land on
    the same output part are summed before one inverse transform. The result for a part
    depends only on the input up to its end, so the reverb streams in blocks of whole parts
    with the same bits as the whole signal at once. On 180 s of stereo at 48 kHz with a 2.7 s
    IR this took about as long as the single-block overlap-add it replaced (~0.4 s), with
    buffers of a few megabytes instead of whole-song ones.
    """
    return ConvolutionReverb(ir, x.shape[0], mix, sample_rate, highpass_hz, lowpass_hz).process(x)


class ConvolutionReverb:
    """``reverberate`` block by block; blocks must be whole multiples of ``PARTITION``
    samples but the last, which may be shorter and ends the signal."""

    def __init__(
        self,
        ir: np.ndarray,
        channels: int,
        mix: float,
        sample_rate: int,
        highpass_hz: float | None = None,
        lowpass_hz: float | None = None,
    ) -> None:
        ir = ir[:channels]
        parts = max(1, math.ceil(ir.shape[1] / PARTITION))
        padded = np.zeros((ir.shape[0], parts * PARTITION))
        padded[:, : ir.shape[1]] = ir
        spectra = np.fft.rfft(padded.reshape(ir.shape[0], parts, PARTITION), 2 * PARTITION)
        self._ir_spectra = np.ascontiguousarray(spectra.transpose(1, 0, 2))  # [part, row, bin]
        self._input_spectra = np.zeros((parts, channels, PARTITION + 1), dtype=np.complex128)
        self._newest = np.zeros(1, dtype=np.int64)  # the ring slot of the latest input part
        self._overlap = np.zeros((channels, PARTITION))
        self._ended = False
        self._mix = mix
        self._sos = band_limit_sos(sample_rate, highpass_hz, lowpass_hz)
        self._zi = np.zeros((len(self._sos), channels, 2))

    def process(self, x: np.ndarray) -> np.ndarray:
        """The next block ``float64[channels, n]`` through the reverb; a new array."""
        if self._mix == 0.0:
            return x.copy()
        wet = np.empty(x.shape)
        for start in range(0, x.shape[1], PARTITION):
            if self._ended:
                raise ValueError(
                    f"reverb blocks: got one after a block that was not a multiple of "
                    f"{PARTITION} samples; only the last block may be shorter"
                )
            part = x[:, start : start + PARTITION]
            self._convolve(part, wet[:, start : start + part.shape[1]])
            self._ended = part.shape[1] < PARTITION
        if len(self._sos):
            wet = sosfilt(self._sos, wet, self._zi)
        if self._mix != 1.0:  # wet only (a return's usual setting): the blend is the wet
            wet *= self._mix
            wet += (1.0 - self._mix) * x
        return wet

    def _convolve(self, part: np.ndarray, out: np.ndarray) -> None:
        """One input part (at most ``PARTITION`` samples) convolved, its output samples
        written to ``out``."""
        slot = (int(self._newest[0]) + 1) % len(self._input_spectra)
        self._newest[0] = slot
        self._input_spectra[slot] = np.fft.rfft(part, 2 * PARTITION, axis=-1)
        summed = _sum_of_products(self._input_spectra, self._ir_spectra, slot)
        y = np.fft.irfft(summed, 2 * PARTITION, axis=-1)
        np.add(y[:, : part.shape[1]], self._overlap[:, : part.shape[1]], out=out)
        self._overlap = y[:, PARTITION:]


def synthetic_ir_samples(
    sample_rate: int, *, decay_s: float, predelay_ms: float, damping: float
) -> int:
    """The length of ``synthetic_ir`` with these settings, without making it: a render needs
    the length (its reverb's tail) before it starts, the IR itself only once the reverb's
    bus runs, and making it on the way in kept both cores waiting (0.05-0.14 s)."""
    return sum(_lengths(sample_rate, predelay_ms, _decay(sample_rate, decay_s, damping)[2]))


def _decay(
    sample_rate: int, decay_s: float, damping: float
) -> tuple[list[np.ndarray], np.ndarray, tuple[float, float]]:
    """The crossover's two bands (as stereo sections), their energy correlation and their
    reverberation times in s, low band first, such that the broadband T30 is ``decay_s``."""
    if not decay_s > 0.0:
        raise ValueError(f"reverb decay: got {decay_s} s, expected above 0 s")
    if not 0.0 <= damping <= 1.0:
        raise ValueError(f"reverb damping: got {damping}, expected 0 to 1")
    bands = [np.vstack([section, section]) for section in _crossover_sections(sample_rate)]
    correlation = _band_correlation(bands, sample_rate)
    rt60_ratio = 1.0 - HIGH_BAND_RT60_SPAN * damping
    low_rt60_s = decay_s / _broadband_t30(correlation, (1.0, rt60_ratio))
    return bands, correlation, (low_rt60_s, rt60_ratio * low_rt60_s)


def _lengths(sample_rate: int, predelay_ms: float, rt60s: tuple[float, float]) -> tuple[int, int]:
    """Samples of predelay, and of the tail: until the low band has fallen 90 dB."""
    n_pre = round(predelay_ms * sample_rate / 1000.0)
    return n_pre, max(1, math.ceil(1.5 * rt60s[0] * sample_rate))


def reverb_tail_samples(ir: np.ndarray) -> int:
    """Samples of silence to append so the whole tail is heard: the length of ``ir``."""
    return int(ir.shape[-1])


@njit(nogil=True, cache=True)
def _sum_of_products(inputs: np.ndarray, ir_spectra: np.ndarray, newest: int) -> np.ndarray:
    """``sum_k inputs[newest - k] * ir_spectra[k]`` (ring indices), row by row (a one-row IR
    serves every row), the parts added in order ``k = 0, 1, ...``. Not numpy's ``*``: it
    multiplies complex numbers with fused multiply-adds where the CPU has FMA (AVX2 and
    later) and without elsewhere, which round differently; numba never fuses."""
    parts, channels, bins = inputs.shape
    out = np.empty((channels, bins), dtype=np.complex128)  # zeroed by a loop: np.zeros
    for row in range(channels):  # compiles several times slower
        for b in range(bins):
            out[row, b] = 0.0
    for k in range(parts):
        spectra = inputs[(newest - k + parts) % parts]
        factors = ir_spectra[k]
        for row in range(channels):
            h = factors[min(row, factors.shape[0] - 1)]
            for b in range(bins):
                out[row, b] += spectra[row, b] * h[b]
    return out


def _crossover_sections(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The 2nd-order Butterworth low- and high-pass whose squares form the crossover."""
    return (
        butterworth_sos("lowpass", CROSSOVER_HZ, sample_rate),
        butterworth_sos("highpass", CROSSOVER_HZ, sample_rate),
    )


def _band_correlation(bands: list[np.ndarray], sample_rate: int) -> np.ndarray:
    """``C[i, j] = sum(h_i * h_j)`` for the bands' impulse responses ``h``: the expected
    energy each pair of band envelopes contributes for unit white noise (the cross terms
    are not 0, since both bands filter the same noise; ``C.sum() == 1`` for the allpass
    sum). 50 ms holds the crossover's response to far below rounding."""
    impulse = np.zeros(round(0.05 * sample_rate))
    impulse[0] = 1.0
    responses = np.stack([sosfilt(sos, impulse) for sos in bands])
    # Summed elementwise rather than with ``@``: BLAS's order of additions depends on the CPU.
    return np.sum(responses[:, np.newaxis] * responses[np.newaxis], axis=-1)


def _broadband_t30(correlation: np.ndarray, rt60s: tuple[float, float]) -> float:
    """T30 (s) of the expected full-band decay curve when the bands ring for ``rt60s``.

    The expected energy is ``sum C[i, j] exp(-(r_i + r_j) t / 2)``, so the Schroeder curve
    (its integral from ``t`` on) is ``sum C[i, j] exp(-r_ij t) / r_ij`` with
    ``r_ij = (r_i + r_j) / 2``; T30 is the least-squares line through its -5 to -35 dB span,
    extrapolated to 60 dB (the T30 of ISO 3382-1:2009). The curve falls at least as fast as its
    slowest term, so -35 dB comes before ``35 / 60`` of the longest RT60.
    """
    rates = _RT60_TO_ENERGY_RATE / np.asarray(rt60s)
    pair_rates = 0.5 * (rates[:, np.newaxis] + rates[np.newaxis, :])
    t = np.linspace(0.0, 0.6 * max(rt60s), 6001)
    curve = np.sum(
        (correlation / pair_rates)[..., np.newaxis] * exp_each(-pair_rates[..., np.newaxis] * t),
        axis=(0, 1),
    )
    level_db = 10.0 * log10_each(curve / curve[0])
    span = (level_db <= -5.0) & (level_db >= -35.0)
    # The least-squares slope in closed form: np.polyfit solves it with LAPACK, whose
    # blocked kernels add in an order that depends on the CPU.
    dt = t[span] - np.mean(t[span])
    slope_db_per_s = np.sum(dt * level_db[span]) / np.sum(dt * dt)
    return -_DB_PER_RT60 / slope_db_per_s


def _decaying_noise(
    rng: np.random.Generator,
    bands: list[np.ndarray],
    envelopes: list[np.ndarray],
    correlation: np.ndarray,
    build_up: int,
) -> np.ndarray:
    """One channel of the tail: build-up ramp plus early taps, split into the bands, each
    band times its own decay envelope."""
    n = len(envelopes[0])
    ramp = np.minimum(1.0, np.arange(n) / build_up)
    excitation = rng.standard_normal(n) * ramp
    taps = min(EARLY_TAPS, build_up)
    positions = np.concatenate([[0], 1 + rng.choice(build_up - 1, taps - 1, replace=False)])
    signs = 2.0 * rng.integers(0, 2, taps) - 1.0
    window = np.stack([envelope[:build_up] for envelope in envelopes])
    expected_energy = np.einsum("in,ij,jn->n", window, correlation, window)
    missing = np.sum(expected_energy * (1.0 - ramp[:build_up] ** 2))
    excitation[positions] += signs * np.sqrt(missing / np.sum(expected_energy[positions]))
    low, high = (
        envelope * sosfilt(sos, excitation) for envelope, sos in zip(envelopes, bands, strict=True)
    )
    return low + high

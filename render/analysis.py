"""QC figures of a rendered file beyond its loudness: DC offset, stereo correlation and mono
fold, clipped runs and true-peak overs with their times, silence at the ends, tonal balance.

``analyse`` measures one signal once: its loudness figures come from ``render.measure`` and
everything else from the same samples, so no figure is measured twice.

Conventions (each figure's edge cases, chosen so a report never shows a made-up number):

- A mono signal is its own right channel: correlation 1.0, mono fold drop 0.0 LU.
- Correlation is Pearson's (means removed: a DC offset is not correlation). It needs signal
  in both channels (RMS about the mean above ``SILENCE_LEVEL``); otherwise the whole file
  reads 1.0 when neither has any (nothing can cancel) and 0.0 when one has (no common part:
  a lone channel folds 3.01 LU down, as two uncorrelated ones). The 400 ms minimum skips
  windows without signal in both channels, and is 1.0 when none is left.
- Figures that compare with the integrated loudness (PLR, mono fold drop) are NaN when it is
  ``-inf`` (silence, everything below the -70 LUFS gate, or less than one 400 ms block):
  there is no loudness to compare with. A fold that cancels (L = -R) drops ``-inf`` LU.
- Silence is every sample at or below -60 dBFS (``SILENCE_LEVEL``), the gate of QC silence
  detectors (ffmpeg ``silencedetect``'s default noise level) and far above dither (-90 dBFS
  and below). An all-silent file has leading and trailing silence equal to its duration.
  Octave levels and spectrum of silence are ``-inf``.
- Spectra come from one Welch PSD (Hann, 50 % overlap; P. D. Welch, IEEE Trans. Audio
  Electroacoust. 15(2), 1967), the mean over channels, each channel's mean removed first so a
  DC fault (reported on its own) does not leak into the lowest band.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from render.dsp.kernel_math import exp_each, log10_each, sum_of_squares
from render.dsp.levels import db_to_gain, gain_to_db
from render.dsp.true_peak import true_peak_chunks
from render.dsp.windows import hann
from render.jit import njit
from render.measure import LoudnessFigures, measure, measure_with_fold

CLIP_LEVEL = 1.0 - 2.0**-15
"""A sample at or beyond this magnitude is at full scale: the largest 16-bit code (32767/32768),
so a clipped 16-bit file counts; 24-bit and float full scale are above it."""
MIN_CLIP_RUN_SAMPLES = 3
"""Fewer consecutive full-scale samples are a peak, not clipping (a sine peaking at full
scale touches it for one or two): the usual setting of digital meters' "over" indicator."""
SILENCE_LEVEL = db_to_gain(-60.0)
"""-60 dBFS: the silence gate of streaming QC (see the module docstring)."""
CORRELATION_WINDOW_S = 0.4
"""The window of the minimum correlation: the momentary window of EBU Tech 3341 §2.2, long
enough for bass, short enough to catch a polarity-inverted phrase."""
CORRELATION_HOP_S = 0.1
"""The correlation windows' hop, as the momentary loudness series (75 % overlap)."""
OVER_MERGE_S = 0.010
"""True-peak overs closer than this belong to one stretch: a limiter misses in bursts, and one
line per 10 ms is as fine as a report can be read."""
OCTAVE_BANDS_HZ = (31.5, 63.0, 125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
"""IEC 61260-1:2014 nominal octave centres. The edges are those of the exact base-10 midbands
1000 G^k, G = 10^(3/10) (eq. (1)): midband times G^(+-1/2), so the bands tile without gaps.
A band is reported when its exact midband is below Nyquist (its lower half exists)."""
SPECTRUM_POINTS = 200
"""Log-spaced frequencies of the plotted spectrum, 20 Hz to min(20 kHz, Nyquist): 20 per
octave, finer than the 1/6-octave smoothing, so the curve looks continuous."""
SPECTRUM_RANGE_HZ = (20.0, 20_000.0)
SPECTRUM_BAND_OCTAVES = 1.0 / 6.0
"""The plotted spectrum's smoothing: power in 1/6 octave around each frequency, the usual
resolution of room and loudspeaker plots (coarser hides resonances, finer is noise)."""
FULL_SCALE_SINE_POWER = 0.5
"""Mean square of a full-scale sine: the spectrum's 0 dB (a full-scale sine in every channel
reads 0 dB at its frequency, above ~200 Hz where its band holds the Hann main lobe)."""
_WELCH_BIN_HZ = 6.0
"""Welch bins no wider than this (8192 points at 44.1 and 48 kHz): the 31.5 Hz octave
(22-45 Hz) spans at least 3.7 bins."""
_CHUNK = 1 << 16
"""Samples per step of the chunked silence scan: small temporaries only."""
_WELCH_BATCH = 64
"""Segments transformed at once: 4 MiB at 8192 points, in the cache."""


@dataclass(frozen=True)
class ClipRun:
    """Consecutive samples of one channel at full scale (a clipped waveform)."""

    channel: int  # 0 = left (or mono), 1 = right
    start_s: float
    samples: int


@dataclass(frozen=True)
class PeakOver:
    """A stretch of one channel whose true peak exceeds the ceiling."""

    channel: int
    start_s: float
    end_s: float
    true_peak_dbtp: float  # the highest true peak of the stretch


@dataclass(frozen=True, eq=False)
class Analysis:
    """Every QC figure of one signal; units in the names, edge cases in the module docstring.

    Runs and overs are sorted by time, then channel; an over ends one sample after its last
    sample over the ceiling. ``spectrum_db`` is the power in 1/6 octave per channel relative
    to ``FULL_SCALE_SINE_POWER`` (both spectrum arrays read-only, ``SPECTRUM_POINTS`` long).
    """

    duration_s: float
    sample_rate: int
    loudness: LoudnessFigures
    plr_db: float  # peak-to-loudness ratio: max true peak (dBTP) - integrated loudness (LUFS)
    dc_offset: tuple[float, ...]  # per channel, the mean sample value (full scale = 1)
    correlation: float  # L/R Pearson correlation over the whole file; 1.0 for mono
    min_correlation_400ms: float  # the lowest over 400 ms windows (100 ms hop) with signal
    mono_fold_drop_lu: float  # integrated loudness of (L+R)/2 on both channels minus stereo
    clipped_runs: tuple[ClipRun, ...]
    true_peak_overs: tuple[PeakOver, ...]  # empty when no ceiling was given
    leading_silence_s: float
    trailing_silence_s: float
    octave_bands_hz: tuple[float, ...]  # nominal centres, 31.5 Hz .. 16 kHz
    octave_levels_db: tuple[float, ...]  # energy per band relative to the total, dB
    spectrum_hz: np.ndarray  # long-term average spectrum for plots, log-spaced frequencies
    spectrum_db: np.ndarray  # its level, dB relative to full scale


def analyse(x: np.ndarray, sample_rate: int, ceiling_dbtp: float | None = None) -> Analysis:
    """Every QC figure of ``x`` (``float64[channels, samples]``, 1 or 2 channels).

    Parameters
    ----------
    x
        The rendered signal, full scale 1.0.
    sample_rate
        In Hz.
    ceiling_dbtp
        The true-peak ceiling the file must keep, in dBTP; ``None`` reports no overs.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        measure(x, sample_rate)  # refuses the shape, with its message
    n = x.shape[1]
    bounds, complete = _tick_bounds(n, sample_rate)
    moments = _tick_moments(x, bounds)
    means = moments[: x.shape[0]].sum(axis=1) / max(n, 1)
    # The spectrum runs beside the meter (and its mono fold): FFTs and kernels release the GIL.
    psd_job = _BACKGROUND.submit(_mean_psd, x, sample_rate, means)
    loudness, fold_lufs = measure_with_fold(x, sample_rate)
    integrated = loudness.integrated_lufs
    peak_dbtp = max(loudness.true_peak_dbtp)
    lead, trail = _silent_ends(x)
    overs = () if ceiling_dbtp is None else _true_peak_overs(x, sample_rate, ceiling_dbtp, loudness)
    bin_hz, psd = psd_job.result()
    centres, levels = _octave_levels(psd, bin_hz, sample_rate)
    spectrum_hz, spectrum_db = _spectrum(psd, bin_hz, sample_rate)
    return Analysis(
        duration_s=n / sample_rate,
        sample_rate=sample_rate,
        loudness=loudness,
        plr_db=math.nan if integrated == -math.inf else peak_dbtp - integrated,
        dc_offset=tuple(means.tolist()),
        correlation=_whole_file_correlation(moments.sum(axis=1), n),
        min_correlation_400ms=_min_window_correlation(moments, bounds, complete),
        mono_fold_drop_lu=_fold_drop_lu(fold_lufs, integrated, x.shape[0]),
        clipped_runs=_clipped_runs(x, sample_rate),
        true_peak_overs=overs,
        leading_silence_s=lead / sample_rate,
        trailing_silence_s=trail / sample_rate,
        octave_bands_hz=centres,
        octave_levels_db=levels,
        spectrum_hz=spectrum_hz,
        spectrum_db=spectrum_db,
    )


# --- correlation and mono fold ----------------------------------------------------------------


def _tick_bounds(n: int, sample_rate: int) -> tuple[np.ndarray, int]:
    """Sample bounds of the correlation hops and how many ticks are complete: tick k holds
    samples floor(k fs / 10) .. floor((k + 1) fs / 10) - 1, as ``render.measure``'s ticks,
    then a last partial tick holds the rest (counted in whole-file sums, never in a window)."""
    ticks_per_s = round(1.0 / CORRELATION_HOP_S)
    complete = (ticks_per_s * (n + 1) - 1) // sample_rate
    bounds = np.arange(complete + 1, dtype=np.int64) * sample_rate // ticks_per_s
    return (np.append(bounds, n) if bounds[-1] < n else bounds), complete


@njit(nogil=True, cache=True)
def _tick_moments(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """``float64[5, ticks]``: per tick the sums of L, R, L^2, R^2 and L R (R is the last
    channel, so a mono signal is its own right channel), in one pass without temporaries."""
    right = x.shape[0] - 1
    moments = np.empty((5, bounds.size - 1))
    for k in range(bounds.size - 1):
        sl = sr = sll = srr = slr = 0.0
        for i in range(bounds[k], bounds[k + 1]):
            a, b = x[0, i], x[right, i]
            sl += a
            sr += b
            sll += a * a
            srr += b * b
            slr += a * b
        moments[0, k], moments[1, k], moments[2, k] = sl, sr, sll
        moments[3, k], moments[4, k] = srr, slr
    return moments


def _pearson(moments: np.ndarray, n: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of spans of ``n`` samples from their summed ``moments``
    (``[5, ...]``, as ``_tick_moments``), and which spans carry signal in each channel
    (``[2, ...]``: RMS about the mean above ``SILENCE_LEVEL``); NaN where either does not."""
    sl, sr, sll, srr, slr = moments
    left, right = sll - sl * sl / n, srr - sr * sr / n
    covariance = slr - sl * sr / n
    signal_in = np.stack([left, right]) > SILENCE_LEVEL**2 * np.asarray(n)
    both = signal_in.all(axis=0)
    r = np.divide(
        covariance,
        np.sqrt(np.where(both, left * right, 1.0)),
        out=np.full(np.shape(covariance), math.nan),
        where=both,
    )
    return np.clip(r, -1.0, 1.0), signal_in


def _whole_file_correlation(totals: np.ndarray, n: int) -> float:
    r, signal_in = _pearson(totals, max(n, 1))
    if signal_in.all():
        return float(r)
    return 0.0 if signal_in.any() else 1.0


def _min_window_correlation(moments: np.ndarray, bounds: np.ndarray, complete: int) -> float:
    """The lowest correlation of the 400 ms windows (100 ms hop, the first ``complete`` ticks)
    with signal in both channels; each window a direct sum of its ticks, so a late window is
    as exact as the first (no running sum to cancel, as in ``render.measure``)."""
    ticks = round(CORRELATION_WINDOW_S / CORRELATION_HOP_S)
    if complete < ticks:
        return 1.0
    windows = np.lib.stride_tricks.sliding_window_view(moments[:, :complete], ticks, axis=1)
    r, _ = _pearson(
        windows.sum(axis=2), bounds[ticks : complete + 1] - bounds[: complete + 1 - ticks]
    )
    valid = r[~np.isnan(r)]
    return float(valid.min()) if valid.size else 1.0


def _fold_drop_lu(fold_lufs: float, stereo_lufs: float, channels: int) -> float:
    """The fold's loudness minus the stereo loudness: 0.0 for mono, NaN without loudness."""
    if channels == 1:
        return 0.0
    return math.nan if stereo_lufs == -math.inf else fold_lufs - stereo_lufs


_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")


# --- clipping, overs, silence ------------------------------------------------------------------


def _clipped_runs(x: np.ndarray, sample_rate: int) -> tuple[ClipRun, ...]:
    """Runs of ``MIN_CLIP_RUN_SAMPLES`` or more samples at full scale, from the rising and
    falling edges of each channel's full-scale mask."""
    runs = []
    for channel, row in enumerate(x):
        at_full_scale = (row >= CLIP_LEVEL) | (row <= -CLIP_LEVEL)
        edges = np.flatnonzero(np.diff(at_full_scale, prepend=False, append=False))
        starts, stops = edges[::2], edges[1::2]
        long = stops - starts >= MIN_CLIP_RUN_SAMPLES
        runs += [
            ClipRun(channel, start / sample_rate, length)
            for start, length in zip(
                starts[long].tolist(), (stops - starts)[long].tolist(), strict=True
            )
        ]
    return tuple(sorted(runs, key=lambda run: (run.start_s, run.channel)))


def _true_peak_overs(
    x: np.ndarray, sample_rate: int, ceiling_dbtp: float, loudness: LoudnessFigures
) -> tuple[PeakOver, ...]:
    """Stretches of each channel whose 4x true peak (BS.1770-4 Annex 2) exceeds
    ``ceiling_dbtp``, overs less than ``OVER_MERGE_S`` apart merged. A channel whose true
    peak in ``loudness`` (the maximum of the same values) keeps the ceiling is not scanned,
    so the overs agree with the true-peak verdict."""
    threshold, merge = db_to_gain(ceiling_dbtp), round(OVER_MERGE_S * sample_rate)
    overs = []
    for channel, peak_dbtp in enumerate(loudness.true_peak_dbtp):
        if peak_dbtp <= ceiling_dbtp:
            continue
        index, value = _samples_over(x[channel : channel + 1], threshold)
        if not index.size:
            continue
        first = np.flatnonzero(np.diff(index, prepend=-merge) >= merge)
        last = np.append(first[1:], index.size) - 1
        peaks = np.maximum.reduceat(value, first)
        overs += [
            PeakOver(channel, start / sample_rate, (stop + 1) / sample_rate, gain_to_db(peak))
            for start, stop, peak in zip(
                index[first].tolist(), index[last].tolist(), peaks.tolist(), strict=True
            )
        ]
    return tuple(sorted(overs, key=lambda over: (over.start_s, over.channel)))


def _samples_over(row: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of ``true_peaks(row)`` above ``threshold``, piece by piece."""
    indices, values = [np.empty(0, np.int64)], [np.empty(0)]
    for start, peaks in true_peak_chunks(row):
        over = np.flatnonzero(peaks > threshold)
        indices.append(over + start)
        values.append(peaks[over])
    return np.concatenate(indices), np.concatenate(values)


def _silent_ends(x: np.ndarray) -> tuple[int, int]:
    """Samples before the first and after the last sample above ``SILENCE_LEVEL`` in any
    channel (both the length when there is none), scanning chunks inwards from each end."""
    n = x.shape[1]
    starts = range(0, n, _CHUNK)
    lead = next((start + int(loud[0]) for start, loud in _loud_chunks(x, starts)), n)
    trail = next(
        (n - start - int(loud[-1]) - 1 for start, loud in _loud_chunks(x, reversed(starts))), n
    )
    return lead, trail


def _loud_chunks(x: np.ndarray, starts: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Each chunk (in the order of ``starts``) with samples above ``SILENCE_LEVEL`` in any
    channel: its start and their indices within it."""
    for start in starts:
        loud = np.flatnonzero((np.abs(x[:, start : start + _CHUNK]) > SILENCE_LEVEL).any(axis=0))
        if loud.size:
            yield start, loud


# --- spectra ---------------------------------------------------------------------------------


def _mean_psd(x: np.ndarray, sample_rate: int, dc: np.ndarray) -> tuple[float, np.ndarray]:
    """Bin spacing (Hz) and the one-sided Welch PSD (full scale^2 / Hz) of ``x - dc`` (``dc``
    per channel), averaged over channels: Hann segments of the power of two giving bins of
    at most ``_WELCH_BIN_HZ`` (the whole signal if shorter), 50 % overlap. It equals
    ``scipy.signal.welch(x - dc, fs, "hann", segment, detrend=False).mean(axis=0)``, which
    holds every segment and its spectrum at once: 550 MB and 0.4 s for 3 minutes of stereo
    at 48 kHz, where transforming ``_WELCH_BATCH`` at a time takes 10 MB and 0.15 s. numpy's
    FFT (pocketfft, as scipy's: the same bits) transforms these batches faster than
    scipy.fft, which also takes 0.2 s to import."""
    n = x.shape[1]
    segment = min(2 ** math.ceil(math.log2(sample_rate / _WELCH_BIN_HZ)), max(n, 1))
    window = hann(segment)
    power = np.zeros(segment // 2 + 1)
    count = 0
    if n:
        hop = segment - segment // 2
        buffer = np.empty((_WELCH_BATCH, segment))
        for row, offset in zip(x, dc, strict=True):
            frames = np.lib.stride_tricks.sliding_window_view(row, segment)[::hop]
            count += frames.shape[0]
            for first in range(0, frames.shape[0], _WELCH_BATCH):
                batch = frames[first : first + _WELCH_BATCH]
                windowed = buffer[: batch.shape[0]]
                np.subtract(batch, offset, out=windowed)
                windowed *= window
                spectrum = np.fft.rfft(windowed)
                power += (spectrum.real**2 + spectrum.imag**2).sum(axis=0)
    power /= max(count, 1) * sample_rate * sum_of_squares(window)
    power[1 : None if segment % 2 else -1] *= 2.0  # one-sided: fold the negative frequencies
    return sample_rate / segment, power


def _band_powers(
    psd: np.ndarray, bin_hz: float, low_hz: np.ndarray, high_hz: np.ndarray
) -> np.ndarray:
    """Power between ``low_hz`` and ``high_hz`` of the PSD taken as constant across each bin
    (bin k spans (k +- 1/2) ``bin_hz``): the integral, with bins split at the band edges, so
    a band narrower than a bin still reads its share of a smooth spectrum."""
    edges = (np.arange(psd.size + 1) - 0.5) * bin_hz
    cumulative = np.concatenate(([0.0], np.cumsum(psd) * bin_hz))
    difference = np.interp(high_hz, edges, cumulative) - np.interp(low_hz, edges, cumulative)
    return np.maximum(difference, 0.0)


def _octave_levels(
    psd: np.ndarray, bin_hz: float, sample_rate: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Nominal centres of the octave bands below Nyquist and their share of the power of
    those bands, in dB (``-inf`` for silence)."""
    midbands = 1000.0 * exp_each((0.3 * math.log(10.0)) * np.arange(-5, 5))  # 10^(0.3 k)
    kept = midbands < sample_rate / 2.0
    powers = _band_powers(psd, bin_hz, midbands[kept] / 10**0.15, midbands[kept] * 10**0.15)
    total = powers.sum()
    levels = _power_db(powers / total) if total > 0.0 else np.full(powers.size, -math.inf)
    centres = tuple(c for c, keep in zip(OCTAVE_BANDS_HZ, kept, strict=True) if keep)
    return centres, tuple(float(v) for v in levels)


def _spectrum(psd: np.ndarray, bin_hz: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``SPECTRUM_POINTS`` log-spaced frequencies and the power within
    ``SPECTRUM_BAND_OCTAVES`` around each, in dB relative to ``FULL_SCALE_SINE_POWER``."""
    low, high = SPECTRUM_RANGE_HZ
    # np.geomspace: numpy's log10 and power, whose last bits depend on the CPU.
    span = np.linspace(0.0, math.log(min(high, sample_rate / 2.0) / low), SPECTRUM_POINTS)
    frequencies = low * exp_each(span)
    half_band = 2.0 ** (SPECTRUM_BAND_OCTAVES / 2.0)
    powers = _band_powers(psd, bin_hz, frequencies / half_band, frequencies * half_band)
    levels = _power_db(powers / FULL_SCALE_SINE_POWER)
    frequencies.flags.writeable = False
    levels.flags.writeable = False
    return frequencies, levels


def _power_db(ratio: np.ndarray) -> np.ndarray:
    """10 log10 of power ratios, elementwise (``levels.gain_to_db`` of their square roots;
    0 gives ``-inf``)."""
    return 10.0 * log10_each(ratio)

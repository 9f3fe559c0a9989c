"""The translation check: how a master survives the playback devices people actually use.

Each device class (phone speaker, earbuds, laptop, car) is modelled as a documented filter:
the band it reproduces, its main resonances and, for a phone speaker, the fold to mono. The
master is passed through each model and measured again.

A model is a Butterworth high-pass and low-pass (``render.dsp.eq.pass_sos``) followed by RBJ
peaking bands for its resonances (``render.dsp.eq.band_sos``), in that order, as one cascade.
The models are models, not measurements: each says in ``source`` what it rests on.

What each figure means:

- Loudness: ITU-R BS.1770-4 integrated loudness (``render.measure``) of the signal as the
  device plays it. The phone plays one channel, measured as one channel of weight 1 (Table 3),
  so a centred mix reads 3.01 LU lower there before any filtering: one speaker instead of two.
- Retained energy: a band's energy through the device over the master's own energy in that
  band, in dB, both taken per channel (the mean over channels), so a device that passed
  everything would read 0 dB for a centred source whether it plays one channel or two, and the
  mono fold shows only what it cancels. The bands are ``LOW_END_HZ`` and
  ``VOCAL_RANGE_HZ``. Because the devices are linear filters, the energy through one is
  ``sum |H(f)|^2 P(f)`` over the band, where ``P`` is the power spectrum of the device's input
  (the master, or its mono fold): one Welch spectrum of the master serves every device
  (P. D. Welch, "The use of fast Fourier transform for the estimation of power spectra",
  IEEE Trans. Audio Electroacoust. AU-15(2), 1967: Hann-windowed segments, 50 % overlap,
  periodograms averaged). A band holding no content in the master (``EMPTY_BAND_DB``) has no
  retained figure: ``nan``. A device that cancels a band completely (the fold of L = -R)
  reads ``-inf``.

Near Nyquist (``device_filter``): a low-pass or resonance at or above half the sample rate is
dropped, as the signal holds nothing there to shape; a high-pass there is an error.

The devices are filtered in parallel threads (the filters and the loudness meter release the
GIL), each device's figures computed from its own data only, so the results do not depend on
the scheduling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from render.dsp.eq import Band, equalize, routed_sections, sos_power
from render.dsp.kernel_math import sum_of_squares
from render.dsp.levels import db_to_gain, gain_to_db
from render.dsp.windows import hann
from render.measure import integrated_loudness_lufs


@dataclass(frozen=True)
class DeviceModel:
    """A playback device class as a filter; ``source`` says where its numbers come from.

    ``highpass_hz`` and ``lowpass_hz`` are the -3 dB corners of Butterworth filters; the
    high-pass slope follows from its corner (``highpass_slope_db_per_oct``), the low-pass is
    ``LOWPASS_SLOPE_DB_PER_OCT``. ``resonances`` are RBJ peaking bands (centre in Hz, gain in
    dB at the centre, Q). ``mono`` plays (L + R) / 2 on one speaker.
    """

    name: str  # "phone speaker"
    highpass_hz: float
    lowpass_hz: float
    resonances: tuple[tuple[float, float, float], ...]  # (frequency Hz, gain dB, Q)
    mono: bool
    source: str


@dataclass(frozen=True)
class DeviceFigures:
    """The master as heard through one device model.

    Loudness is ``-inf`` for silence, and the change ``nan`` when the master itself is
    silent. A retained figure is ``-inf`` when the device cancels the band completely and
    ``nan`` when the master has no content in it (``EMPTY_BAND_DB``).
    """

    device: str
    loudness_lufs: float  # integrated loudness through the device
    loudness_change_lu: float  # minus the master's own integrated loudness
    low_end_retained_db: float  # energy below 120 Hz through the device vs the master, dB
    vocal_range_retained_db: float  # energy in 300 Hz - 3 kHz through the device vs the master


PROTECTED_HIGHPASS_HZ = 150.0
"""A high-pass corner at or above this is read as a micro-speaker's excursion protection (a
DSP filter in front of a driver too small for bass), modelled 24 dB/octave; a lower corner is
a full-range driver's own roll-off, 12 dB/octave, as a closed box is a second-order high-pass
below its resonance (R. H. Small, "Closed-Box Loudspeaker Systems, Part I: Analysis",
J. Audio Eng. Soc. 20(10), 1972). Assumed, like the models."""
PROTECTED_SLOPE_DB_PER_OCT = 24
NATURAL_SLOPE_DB_PER_OCT = 12
LOWPASS_SLOPE_DB_PER_OCT = 12
"""A gentle treble roll-off (second order): assumed for every device."""
LOW_END_HZ = (0.0, 120.0)
"""The low end: kick and bass fundamentals, what small speakers lose first. The DC bin of the
spectrum is left out (an offset is not sound; the QC reports it separately)."""
VOCAL_RANGE_HZ = (300.0, 3000.0)
"""Voice fundamentals' upper part and the formants that carry intelligibility."""
EMPTY_BAND_DB = -100.0
"""A band whose energy in the master lies this far or further below the master's whole energy
holds nothing a listener could hear next to the rest (16-bit quantisation noise lies
6.02 * 16 + 1.76 = 98 dB below a full-scale sine), so no retained figure is given. It stays
well above the Hann window's leakage into the other band (a 60 Hz sine leaks -118 dB into
300 Hz - 3 kHz)."""
SPECTRUM_RESOLUTION_HZ = 4.0
"""Welch bins at most this far apart: the Hann main lobe (two bins either side) then blurs the
120 Hz band edge by about a tenth of an octave."""

DEVICES: tuple[DeviceModel, ...] = (
    DeviceModel(
        name="phone speaker",
        highpass_hz=400.0,
        lowpass_hz=9000.0,
        resonances=((2000.0, 5.0, 1.4),),
        mono=True,
        source=(
            "Assumed: typical of a smartphone's single loudspeaker, not fitted to measurements. "
            "Micro-speaker systems in mobile devices reproduce little below 300-600 Hz (Chang & "
            "Wang, 'Bass Extension of Microspeaker System on Mobile Device', J. Mechanics, "
            "2018, extend a tablet's from 630 Hz down to 300 Hz); the steep high-pass stands "
            "for the driver's protection, the 2 kHz peak for a front-cavity resonance and the "
            "9 kHz roll-off for the small driver's treble. Plays the mono fold (L+R)/2."
        ),
    ),
    DeviceModel(
        name="earbuds",
        highpass_hz=50.0,
        lowpass_hz=13000.0,
        resonances=((3000.0, 4.0, 1.2),),
        mono=False,
        source=(
            "Assumed: typical of consumer earbuds, not fitted to measurements: a gentle "
            "second-order bass roll-off near 50 Hz (an imperfect seal leaks the lows), a "
            "presence peak near 3 kHz and treble falling above about 13 kHz."
        ),
    ),
    DeviceModel(
        name="laptop speakers",
        highpass_hz=250.0,
        lowpass_hz=12000.0,
        resonances=((1000.0, 4.0, 1.4),),
        mono=False,
        source=(
            "Assumed: typical of built-in laptop speakers, not fitted to measurements. "
            "Published measurements of single laptops show the output falling steeply below "
            "300-400 Hz (a Dell Inspiron E1505, danmarx.org; a Framework laptop, "
            "community.frame.work); the 250 Hz corner allows for larger chassis, and the 1 kHz "
            "resonance and the 12 kHz roll-off are assumed."
        ),
    ),
    DeviceModel(
        name="car",
        highpass_hz=35.0,
        lowpass_hz=12000.0,
        resonances=((70.0, 5.0, 0.7), (300.0, -3.0, 1.0)),
        mono=False,
        source=(
            "Assumed: a typical sedan, not fitted to measurements. Cabin gain: below its first "
            "lengthwise mode (about 70 Hz, where half a wavelength spans a 2.5 m cabin) the "
            "closed cabin is pressurised and the bass rises, and in-car tunings keep a bass "
            "boost (Toole, 'The Measurement and Calibration of Sound Reproducing Systems', "
            "J. Audio Eng. Soc. 63(7/8), 2015, section 4.2). The 300 Hz dip (cabin modes, "
            "door-panel cancellation) and the roll-off above 12 kHz (tweeters heard off axis, "
            "absorbent seats) are assumed."
        ),
    ),
)
"""The four device classes the QC report translates every master to."""

_PARALLEL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="translation")
"""One device per thread on two cores; the loudness meter runs its channels in its own pool."""
_SEGMENTS_PER_BLOCK = 8
"""Welch segments transformed per FFT call: 2 MiB of frames, which stay in cache (measured
fastest of 8, 32 and 128 on 180 s of stereo)."""


def highpass_slope_db_per_oct(highpass_hz: float) -> int:
    """The slope of a model's high-pass, from its corner (see ``PROTECTED_HIGHPASS_HZ``)."""
    if highpass_hz >= PROTECTED_HIGHPASS_HZ:
        return PROTECTED_SLOPE_DB_PER_OCT
    return NATURAL_SLOPE_DB_PER_OCT


def device_filter(model: DeviceModel, sample_rate: int) -> np.ndarray:
    """The device's response at ``sample_rate`` (Hz) as one cascade of second-order sections.

    The high-pass, then the low-pass, then the resonances in the model's order, as
    ``render.dsp.eq.equalize`` applies them; a low-pass or resonance at or above Nyquist is
    dropped (the module docstring says why).

    Returns
    -------
    numpy.ndarray
        ``float64[sections, 6]``, each ``[b0, b1, b2, 1, a1, a2]``.

    Raises
    ------
    ValueError
        When the high-pass is not below the low-pass and Nyquist: the device would have no
        band to play at this rate.
    """
    return np.concatenate(routed_sections(sample_rate, 1, *_design(model, sample_rate))["stereo"])


def through_device(x: np.ndarray, sample_rate: int, model: DeviceModel) -> np.ndarray:
    """``x`` as the device plays it.

    Parameters
    ----------
    x
        ``float64[channels, samples]``, 1 or 2 channels; left untouched.
    sample_rate
        Sampling rate in Hz.
    model
        The device.

    Returns
    -------
    numpy.ndarray
        A new array: ``float64[1, samples]`` (the fold (L + R) / 2, or the one channel) for a
        ``mono`` device, else the shape of ``x``. The filters are causal and add no latency.
    """
    x = _checked(x)
    return equalize(_mono_fold(x) if model.mono else x, sample_rate, *_design(model, sample_rate))


def translate(
    x: np.ndarray, sample_rate: int, devices: Sequence[DeviceModel] = DEVICES
) -> tuple[DeviceFigures, ...]:
    """The master ``x`` (``float64[channels, samples]``, 1 or 2 channels) measured through
    each of ``devices`` at ``sample_rate`` (Hz); the figures in the devices' order.

    The master's loudness and spectrum are measured once, while the devices' signals are
    filtered and metered in parallel threads.
    """
    x = _checked(x)
    responses = [device_filter(model, sample_rate) for model in devices]  # fails early
    loudness = _PARALLEL.map(
        lambda model: integrated_loudness_lufs(through_device(x, sample_rate, model), sample_rate),
        devices,
    )
    spectrum = _Spectrum.of(x, sample_rate)
    master_lufs = integrated_loudness_lufs(x, sample_rate)
    figures = []
    for model, sos, lufs in zip(devices, responses, loudness, strict=True):
        power = spectrum.fold if model.mono else spectrum.master
        radians = (2.0 * math.pi / sample_rate) * spectrum.frequencies_hz
        heard = power * sos_power(sos, radians)
        figures.append(
            DeviceFigures(
                device=model.name,
                loudness_lufs=lufs,
                loudness_change_lu=lufs - master_lufs,
                low_end_retained_db=spectrum.retained_db(heard, spectrum.low_end),
                vocal_range_retained_db=spectrum.retained_db(heard, spectrum.vocal_range),
            )
        )
    return tuple(figures)


def _design(
    model: DeviceModel, sample_rate: int
) -> tuple[list[Band], tuple[float, int], tuple[float, int] | None]:
    """The model's ``(bands, highpass, lowpass)`` for ``render.dsp.eq`` at this rate."""
    nyquist_hz = sample_rate / 2.0
    if not 0.0 < model.highpass_hz < min(model.lowpass_hz, nyquist_hz):
        raise ValueError(
            f"{model.name} highpass_hz: got {model.highpass_hz}, expected a frequency > 0 Hz "
            f"and below both lowpass_hz ({model.lowpass_hz}) and Nyquist ({nyquist_hz:g} Hz "
            f"at sample_rate {sample_rate})"
        )
    highpass = (model.highpass_hz, highpass_slope_db_per_oct(model.highpass_hz))
    lowpass = (
        (model.lowpass_hz, LOWPASS_SLOPE_DB_PER_OCT) if model.lowpass_hz < nyquist_hz else None
    )
    bands = [
        Band("peak", frequency_hz, gain_db, q)
        for frequency_hz, gain_db, q in model.resonances
        if frequency_hz < nyquist_hz
    ]
    return bands, highpass, lowpass


def _checked(x: np.ndarray) -> np.ndarray:
    """``x`` as ``float64[channels, samples]`` with 1 or 2 channels (not copied if it is)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"translation x: got shape {x.shape}, expected (1 or 2, samples)")
    return x


def _mono_fold(x: np.ndarray) -> np.ndarray:
    """(L + R) / 2 as ``[1, samples]``; a mono signal is its own fold."""
    return x if x.shape[0] == 1 else (0.5 * (x[0] + x[1]))[np.newaxis]


@dataclass(frozen=True, eq=False)
class _Spectrum:
    """The master's Welch power spectrum up to the top of the vocal range, per channel.

    ``master`` and ``fold`` are the mean square per sample in each bin (one-sided), of the
    mean over channels and of the mono fold; ``total`` is the master's whole mean square
    per channel, the reference of ``EMPTY_BAND_DB``.
    """

    frequencies_hz: np.ndarray
    master: np.ndarray
    fold: np.ndarray
    total: float
    low_end: np.ndarray
    vocal_range: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray, sample_rate: int) -> _Spectrum:
        n = 1 << math.ceil(math.log2(sample_rate / SPECTRUM_RESOLUTION_HZ))
        window = hann(n)
        frequencies_hz = np.arange(math.floor(VOCAL_RANGE_HZ[1] * n / sample_rate) + 1) * (
            sample_rate / n
        )
        master, fold, count = np.zeros(frequencies_hz.size), np.zeros(frequencies_hz.size), 0
        for frames in _segments(x, n):
            frames *= window
            spectra = np.fft.rfft(frames, axis=-1)[..., : frequencies_hz.size]  # as _mean_psd
            master += np.sum(spectra.real**2 + spectra.imag**2, axis=(0, 1))
            folded = spectra.sum(axis=0)  # the fold's spectrum, times 2
            fold += np.sum(folded.real**2 + folded.imag**2, axis=0)
            count += frames.shape[1]
        # A bin's |Y|^2 over n * sum(w^2) / 2 is the mean square it holds (Welch's scaling,
        # one-sided); the master is the mean over channels, the fold holds (L+R)/2.
        scale = 2.0 / (n * sum_of_squares(window) * count)
        channels = x.shape[0]
        return cls(
            frequencies_hz=frequencies_hz,
            master=master * (scale / channels),
            fold=fold * (scale / channels**2),
            total=sum_of_squares(x) / x.size if x.size else 0.0,
            low_end=(frequencies_hz > LOW_END_HZ[0]) & (frequencies_hz < LOW_END_HZ[1]),
            vocal_range=(frequencies_hz >= VOCAL_RANGE_HZ[0])
            & (frequencies_hz <= VOCAL_RANGE_HZ[1]),
        )

    def retained_db(self, heard: np.ndarray, band: np.ndarray) -> float:
        """``heard``'s energy in ``band`` over the master's, in dB (see ``DeviceFigures``)."""
        own = float(self.master[band].sum())
        if own <= self.total * db_to_gain(EMPTY_BAND_DB) ** 2:
            return math.nan
        return gain_to_db(math.sqrt(float(heard[band].sum()) / own))


def _segments(x: np.ndarray, n: int) -> Iterator[np.ndarray]:
    """The ``n``-sample segments of ``x`` at hop ``n / 2``, in blocks of
    ``[channels, segments, n]`` (new arrays, free to be windowed in place). The last segment
    ends with the signal (overlapping its neighbour more), so every sample is counted and the
    signal's end meets the window's zero rather than a cut; a signal shorter than ``n`` is one
    segment, zero-padded."""
    if x.shape[1] < n:
        padded = np.zeros((x.shape[0], 1, n))
        padded[:, 0, : x.shape[1]] = x
        yield padded
        return
    windows = sliding_window_view(x, n, axis=-1)
    starts = np.arange(0, x.shape[1] - n + 1, n // 2)
    if starts[-1] != x.shape[1] - n:
        starts = np.append(starts, x.shape[1] - n)
    for first in range(0, starts.size, _SEGMENTS_PER_BLOCK):
        yield windows[:, starts[first : first + _SEGMENTS_PER_BLOCK]]

"""The translation check: each device's filter against the closed forms of the pieces its
model names (Butterworth corners, RBJ peaking bands), its band figures against the energy of
the device's actual output, the mono fold against the sum and difference of the channels,
and the loudness figures against the meter called directly."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import scipy.signal

from render.dsp.levels import db_to_gain, gain_to_db
from render.measure import integrated_loudness_lufs
from render.translation import (
    DEVICES,
    LOW_END_HZ,
    VOCAL_RANGE_HZ,
    DeviceModel,
    device_filter,
    through_device,
    translate,
)
from tests.conftest import sine

SAMPLE_RATES = (22_050, 44_100, 48_000, 96_000)
HALF_POWER_DB = gain_to_db(math.sqrt(0.5))  # -3.0103 dB: a Butterworth corner
# The slopes the brief asks of each model (steep micro-speakers, gentle full-range drivers),
# written here rather than read from the module, and the low-pass slope of every model.
HIGHPASS_SLOPE_DB_PER_OCT = {"phone speaker": 24, "earbuds": 12, "laptop speakers": 24, "car": 12}
LOWPASS_SLOPE_DB_PER_OCT = 12
# A cascade of at most 5 biquads evaluated by sosfreqz agrees with the product of the closed
# forms to rounding (~1e-12 relative); 1e-6 dB catches any wrong corner, order, gain or Q.
CLOSED_FORM_DB = 1e-6
BY_NAME = {model.name: model for model in DEVICES}


def butterworth_db(f_hz: np.ndarray, cutoff_hz: float, slope: int, kind: str, rate: int):
    """|H|^2 = 1 / (1 + (tan(pi f/Fs) / tan(pi fc/Fs))^(+-2N)), N = slope / 6: the digital
    Butterworth that ``scipy.signal.butter`` designs (bilinear, prewarped at the cutoff)."""
    ratio = np.tan(np.pi * f_hz / rate) / math.tan(math.pi * cutoff_hz / rate)
    exponent = 2 * (slope // 6) * (1 if kind == "lowpass" else -1)
    return -10.0 * np.log10(1.0 + ratio**exponent)


def peak_db(f_hz: np.ndarray, centre_hz: float, gain_db: float, q: float, rate: int):
    """The RBJ peakingEQ's magnitude: its analog prototype (s^2 + s A/Q + 1) /
    (s^2 + s/(A Q) + 1), A = 10^(gain/40), at s = j W with W = tan(pi f/Fs) / tan(pi f0/Fs)
    (the cookbook's bilinear transform, prewarped at f0)."""
    a = db_to_gain(gain_db / 2.0)
    w = np.tan(np.pi * f_hz / rate) / math.tan(math.pi * centre_hz / rate)
    numerator = (1.0 - w**2) ** 2 + (w * a / q) ** 2
    denominator = (1.0 - w**2) ** 2 + (w / (a * q)) ** 2
    return 10.0 * np.log10(numerator / denominator)


def pieces_db(model: DeviceModel, f_hz: np.ndarray, rate: int) -> list[np.ndarray]:
    """Each filter of the model that exists at ``rate``, as its closed-form gain in dB: a
    low-pass or resonance at or above Nyquist is dropped."""
    nyquist = rate / 2.0
    pieces = [
        butterworth_db(
            f_hz, model.highpass_hz, HIGHPASS_SLOPE_DB_PER_OCT[model.name], "highpass", rate
        )
    ]
    if model.lowpass_hz < nyquist:
        pieces.append(
            butterworth_db(f_hz, model.lowpass_hz, LOWPASS_SLOPE_DB_PER_OCT, "lowpass", rate)
        )
    pieces += [
        peak_db(f_hz, *resonance, rate) for resonance in model.resonances if resonance[0] < nyquist
    ]
    return pieces


def device_db(model: DeviceModel, f_hz: np.ndarray, rate: int) -> np.ndarray:
    response = scipy.signal.sosfreqz(device_filter(model, rate), worN=f_hz, fs=rate)[1]
    return 20.0 * np.log10(np.abs(response))


def stereo(x: np.ndarray) -> np.ndarray:
    """A mono ``[1, n]`` signal on both channels (L = R)."""
    return np.concatenate([x, x])


def faded_sine(frequency_hz: float, rate: int) -> np.ndarray:
    """A 1 s sine with 50 ms raised-cosine fades: without them the cut at each end is a click
    whose broadband energy would fill every band."""
    x = sine(frequency_hz, 1.0, 0.5, rate)
    fade = np.sin(np.linspace(0.0, math.pi / 2.0, round(0.05 * rate))) ** 2
    x[0, : fade.size] *= fade
    x[0, -fade.size :] *= fade[::-1]
    return x


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("model", DEVICES, ids=lambda model: model.name)
def test_response_is_the_product_of_the_models_filters(model: DeviceModel, rate: int) -> None:
    """On a log grid from 20 Hz to 0.95 Nyquist, plus every corner and centre, the cascade's
    gain is the sum in dB of its pieces' closed forms; at 22.05 kHz the earbuds', laptop's
    and car's low-passes (12-13 kHz) lie above Nyquist and are dropped."""
    landmarks = [model.highpass_hz, model.lowpass_hz, *(r[0] for r in model.resonances)]
    f_hz = np.array(
        [*np.geomspace(20.0, 0.95 * rate / 2.0, 60), *(f for f in landmarks if f < rate / 2.0)]
    )
    expected = np.sum(pieces_db(model, f_hz, rate), axis=0)
    np.testing.assert_allclose(device_db(model, f_hz, rate), expected, rtol=0, atol=CLOSED_FORM_DB)


@pytest.mark.parametrize("model", DEVICES, ids=lambda model: model.name)
def test_corners_and_centres_read_the_models_numbers(model: DeviceModel) -> None:
    """At each pass corner the device is -3.01 dB and at each resonance centre it has the
    resonance's gain, once the other pieces' closed-form gains there are taken out: they are
    not negligible everywhere (the car's 35 Hz high-pass takes 0.26 dB off its 70 Hz cabin
    gain, whose skirt lifts the 35 Hz corner by 2.38 dB and the 300 Hz dip by 0.57 dB)."""
    rate = 48_000
    claims = [(model.highpass_hz, HALF_POWER_DB, 0), (model.lowpass_hz, HALF_POWER_DB, 1)]
    claims += [(f, gain, 2 + k) for k, (f, gain, _) in enumerate(model.resonances)]
    for f_hz, expected_db, own in claims:
        at = np.array([f_hz])
        others = sum(piece[0] for k, piece in enumerate(pieces_db(model, at, rate)) if k != own)
        assert device_db(model, at, rate)[0] - others == pytest.approx(
            expected_db, abs=CLOSED_FORM_DB
        )


def test_a_frequency_at_or_above_nyquist_is_dropped_and_a_highpass_there_refused() -> None:
    """At 22.05 kHz a low-pass and a resonance at Nyquist (11025 Hz) leave the cascade of the
    model without them, while just below it (11 kHz) they are kept; a high-pass at Nyquist
    leaves the device no band, which is an error."""
    rate = 22_050
    plain = DeviceModel("test", 100.0, 5_000.0, ((1_000.0, 3.0, 1.0),), False, "test")
    sections = device_filter(plain, rate)  # high-pass, low-pass, resonance: one biquad each
    at_nyquist = replace(
        plain, lowpass_hz=11_025.0, resonances=((1e3, 3.0, 1.0), (11_025.0, 6.0, 2.0))
    )
    np.testing.assert_array_equal(device_filter(at_nyquist, rate), sections[[0, 2]])
    below = replace(at_nyquist, lowpass_hz=11_000.0, resonances=((1e3, 3.0, 1.0), (11e3, 6.0, 2.0)))
    assert device_filter(below, rate).shape == (4, 6)
    with pytest.raises(ValueError, match="Nyquist"):
        device_filter(replace(plain, highpass_hz=11_025.0), rate)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("model", DEVICES, ids=lambda model: model.name)
def test_through_device_applies_device_filter(model: DeviceModel, channels: int, rng) -> None:
    """The signal as played is ``sosfilt`` of ``device_filter`` (of the fold, for the phone):
    the same operations, so the same numbers to rounding (1e-12 of a unit-scale signal)."""
    rate = 48_000
    x = rng.standard_normal((channels, 4_800))
    heard_input = x.mean(axis=0, keepdims=True) if model.mono else x
    expected = scipy.signal.sosfilt(device_filter(model, rate), heard_input, axis=-1)
    np.testing.assert_allclose(through_device(x, rate, model), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_low_end_of_a_60_hz_tone(rate: int) -> None:
    """Phone and laptop keep almost nothing of 60 Hz, the car's cabin gain lifts it; where the
    device's gain is smooth around 60 Hz (earbuds, car) the figure is that gain within 0.05 dB
    (the Hann main lobe spans 60 +- 6 Hz), and the tone has no vocal range (its window leakage
    there, ~-118 dB, is below the empty-band threshold)."""
    figures = {f.device: f for f in translate(stereo(faded_sine(60.0, rate)), rate)}
    assert figures["phone speaker"].low_end_retained_db < -20.0
    assert figures["laptop speakers"].low_end_retained_db < -20.0
    assert figures["car"].low_end_retained_db > 0.0
    for name in ("earbuds", "car"):
        gain_db = device_db(BY_NAME[name], np.array([60.0]), rate)[0]
        assert figures[name].low_end_retained_db == pytest.approx(gain_db, abs=0.05)
    assert all(math.isnan(f.vocal_range_retained_db) for f in figures.values())


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_vocal_range_of_a_1_khz_tone(rate: int, channels: int) -> None:
    """Every device's vocal-range figure for a 1 kHz tone is its gain at 1 kHz within 0.2 dB
    (measured: 1e-4 dB; the gain hardly moves across the +-6 Hz main lobe), for a mono master
    and for L = R (the phone's fold of L = R is L itself); the tone has no low end."""
    x = faded_sine(1_000.0, rate)
    for model, figures in zip(
        DEVICES, translate(stereo(x) if channels == 2 else x, rate), strict=True
    ):
        gain_db = device_db(model, np.array([1_000.0]), rate)[0]
        assert figures.vocal_range_retained_db == pytest.approx(gain_db, abs=0.2)
        assert math.isnan(figures.low_end_retained_db)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_band_figures_equal_the_energy_of_the_devices_output(rate: int, rng) -> None:
    """The figures (the master's Welch spectrum weighted by |H|^2, the fold's through its
    cross-spectrum) against the definition: the device's actual output, its band energy from
    one exact DFT over the whole signal padded so the filters' tails are kept, over the
    master's. Partly correlated stereo noise, 2 s. Vocal range within 0.05 dB (measured
    0.02). Low end within 0.15 dB where the device's gain is smooth below 120 Hz, within
    1 dB for the steep phone and laptop (measured 0.55): there the gain rises ~40 dB/octave
    into the band edge, and the Hann main lobe (+-6 Hz) lets content from just above
    120 Hz into the top bins."""
    a = rng.standard_normal((2, 2 * rate))
    x = 0.1 * np.stack([a[0], 0.6 * a[0] + 0.8 * a[1]])
    padded = np.concatenate([x, np.zeros((2, rate))], axis=1)
    f_hz = np.fft.rfftfreq(padded.shape[1], 1.0 / rate)
    bands = {
        "low": (f_hz > LOW_END_HZ[0]) & (f_hz < LOW_END_HZ[1]),
        "vocal": (f_hz >= VOCAL_RANGE_HZ[0]) & (f_hz <= VOCAL_RANGE_HZ[1]),
    }

    def band_energies(y: np.ndarray) -> dict[str, float]:
        power = np.abs(np.fft.rfft(y, axis=-1)) ** 2
        return {name: power[:, band].sum() / y.shape[0] for name, band in bands.items()}

    own = band_energies(padded)
    for model, figures in zip(DEVICES, translate(x, rate), strict=True):
        heard = band_energies(through_device(padded, rate, model))
        low_tolerance = 1.0 if model.highpass_hz > 120.0 else 0.15
        expected = {name: 10.0 * math.log10(heard[name] / own[name]) for name in bands}
        assert figures.low_end_retained_db == pytest.approx(expected["low"], abs=low_tolerance)
        assert figures.vocal_range_retained_db == pytest.approx(expected["vocal"], abs=0.05)


def test_the_phone_folds_to_mono(rng) -> None:
    """L = -R cancels in the fold: the phone plays exact silence (-inf LUFS, -inf retained)
    while the stereo devices play it. L = R plays the channel itself, bit for bit, so the
    phone reads the same for the stereo master and for its one channel as a mono master,
    and the stereo master, two channels of weight 1 in BS.1770, reads 10 log10 2 = 3.0103 LU
    louder than the mono one (to rounding)."""
    rate = 48_000
    x = 0.1 * rng.standard_normal((1, rate))
    opposite = translate(np.concatenate([x, -x]), rate)
    assert opposite[0].loudness_lufs == -math.inf
    assert opposite[0].low_end_retained_db == opposite[0].vocal_range_retained_db == -math.inf
    assert all(math.isfinite(f.loudness_lufs) for f in opposite[1:])

    phone = BY_NAME["phone speaker"]
    np.testing.assert_array_equal(
        through_device(stereo(x), rate, phone), through_device(x, rate, phone)
    )
    both, one = translate(stereo(x), rate, [phone])[0], translate(x, rate, [phone])[0]
    assert both.loudness_lufs == one.loudness_lufs
    assert one.loudness_change_lu - both.loudness_change_lu == pytest.approx(
        10.0 * math.log10(2.0), abs=1e-9
    )
    assert both.vocal_range_retained_db == pytest.approx(one.vocal_range_retained_db, abs=1e-9)


@pytest.mark.parametrize("rate", SAMPLE_RATES)
def test_loudness_is_the_meters_reading_of_the_devices_output(rate: int, rng) -> None:
    """Each loudness is ``integrated_loudness_lufs`` of ``through_device``, and its change
    that minus the master's own reading, exactly: the threads change nothing."""
    x = 0.1 * rng.standard_normal((2, rate))
    master_lufs = integrated_loudness_lufs(x, rate)
    for model, figures in zip(DEVICES, translate(x, rate), strict=True):
        assert figures.device == model.name
        assert figures.loudness_lufs == integrated_loudness_lufs(
            through_device(x, rate, model), rate
        )
        assert figures.loudness_change_lu == figures.loudness_lufs - master_lufs


def test_input_untouched_and_results_repeat(rng) -> None:
    """A read-only master (any write into it would raise) gives the same figures twice."""
    x = 0.1 * rng.standard_normal((2, 48_000))
    x.flags.writeable = False
    first, second = translate(x, 48_000), translate(x, 48_000)
    assert repr(first) == repr(second)  # repr: nan == nan is False, its text is not


def test_silence_has_no_change_and_no_bands() -> None:
    """A silent master: -inf LUFS everywhere, so no loudness change and no retained figure."""
    for figures in translate(np.zeros((2, 48_000)), 48_000):
        assert figures.loudness_lufs == -math.inf
        assert math.isnan(figures.loudness_change_lu)
        assert math.isnan(figures.low_end_retained_db)
        assert math.isnan(figures.vocal_range_retained_db)


def test_a_short_master_is_measured(rng) -> None:
    """Shorter than one Welch segment (0.34 s at 48 kHz) and than a 400 ms gating block: the
    bands come from one zero-padded segment, the loudness is -inf (no complete block)."""
    x = 0.1 * rng.standard_normal((2, 9_600))
    for figures in translate(x, 48_000):
        assert figures.loudness_lufs == -math.inf
        assert math.isfinite(figures.vocal_range_retained_db)


def test_a_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected \(1 or 2, samples\)"):
        translate(np.zeros((3, 100)), 48_000)

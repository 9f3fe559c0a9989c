"""Dynamics: the compressor against its static curve and time constants, sidechain and link
semantics, the gate's range and hold, and the limiter's ceiling, true peak and latency."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable

import numpy as np
import pytest
import scipy.signal

from render.dsp.dynamics import (
    Compressor,
    Gate,
    compress,
    compress_pair,
    gain_computer_db,
    gate,
)
from render.dsp.kernel_math import (
    TINY,
    exp,
    exp_32,
    exp_each,
    expm1,
    expm1_each,
    ln,
    ln_32,
    log10_each,
    tanh,
    tanh_each,
)
from render.dsp.levels import db_to_gain, gain_to_db
from render.dsp.limiter import (
    limit,
    limiter_gain,
    limiter_gain_stretches,
    limiter_latency_samples,
    padded_peaks,
)
from render.dsp.true_peak import true_peaks
from tests.conftest import SAMPLE_RATE, sine

SAMPLE_RATES = (44_100, 48_000, 96_000)
CHANNELS = (1, 2)
SINE_RMS_DB = gain_to_db(math.sqrt(0.5))  # -3.0103 dB: a sine's RMS under its peak
# The acceptance tolerance for levels read off a running envelope: what is left of
# the envelope's ripple (release sag between peaks, the RMS window's ripple) stays below it.
LEVEL_DB = 0.1
# Closed forms evaluated in floating point: only rounding separates two evaluations.
EXACT = 1e-12
# The compressor computes its gain in float32 (1-ulp log and exp, 24-bit mantissa): a
# relative error under 4e-7 (-128 dB), where a wrong setting is off by whole percent.
GAIN_RTOL = 5e-7


def tone(
    level_db: float, seconds: float, sample_rate: int, channels: int = 1, frequency_hz: float = 1e3
) -> np.ndarray:
    """A sine with its peak at ``level_db`` dBFS, the same on every channel."""
    return np.repeat(sine(frequency_hz, seconds, db_to_gain(level_db), sample_rate), channels, 0)


def gain_db(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The gain applied per sample, dB (0 where ``x`` is exactly 0). Each effect multiplies
    ``x`` by a gain, so ``y / x`` recovers it to rounding even where ``x`` is tiny."""
    ratio = np.abs(y) / np.where(x == 0.0, 1.0, np.abs(x))
    return 20.0 * np.log10(np.where(x == 0.0, 1.0, ratio))


def rms_db(x: np.ndarray) -> float:
    return gain_to_db(float(np.sqrt(np.mean(x**2))))


def settle(n: int, x: np.ndarray) -> np.ndarray:
    """The last ``n`` samples, where every envelope has settled."""
    return x[..., -n:]


COMPRESSOR = {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 10.0}


# --- the static curve ---------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [2.0, 4.0, math.inf])
@pytest.mark.parametrize("knee_db", [0.0, 6.0, 12.0])
def test_gain_computer_closed_forms(ratio: float, knee_db: float) -> None:
    """[GMR] eq. (4): identity below the knee, threshold + over / ratio above it, and at the
    threshold itself the quadratic gives threshold + (1/ratio - 1) * knee / 8."""
    t = -20.0
    levels = np.array([-math.inf, -60.0, t - knee_db / 2, t, t + knee_db / 2, t + knee_db / 2 + 7])
    expected = [
        -math.inf,
        -60.0,
        t - knee_db / 2,
        t + (1 / ratio - 1) * knee_db / 8,
        t + knee_db / 2 / ratio,
        t + (knee_db / 2 + 7) / ratio,
    ]
    np.testing.assert_allclose(gain_computer_db(levels, t, ratio, knee_db), expected, atol=EXACT)


def test_gain_computer_keeps_shape_and_slope() -> None:
    """The curve keeps the input's shape and its slope never exceeds 1 nor falls below
    1/ratio: a monotone, continuous transfer curve across the knee."""
    levels = np.linspace(-40.0, 0.0, 4001).reshape(1, 4001)
    out = gain_computer_db(levels, -20.0, 4.0, 10.0)
    assert out.shape == levels.shape
    slope = np.diff(out[0]) / np.diff(levels[0])
    assert np.all(slope <= 1.0 + EXACT) and np.all(slope >= 0.25 - EXACT)


# --- the compressor -----------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("detector", ["peak", "rms"])
def test_compressor_static_curve_on_sines(sample_rate: int, channels: int, detector: str) -> None:
    """A settled 1 kHz sine is turned down by exactly what the static curve says for its
    peak (peak detector) or its RMS (rms detector), below, inside and above the knee.

    The attack is instant so the detector holds the reduction at the sine's crest; a 1 s
    release sags by 1e-3 of it per period. Output and input RMS are measured over whole
    periods (50 ms), long after the 10 ms RMS window has settled."""
    for peak_db in (-32.0, -24.0, -20.0, -17.0, -10.0, -2.0):
        x = tone(peak_db, 0.25, sample_rate, channels)
        y = compress(x, sample_rate, **COMPRESSOR, attack_ms=0.0, release_ms=1e3, detector=detector)
        level = peak_db + (SINE_RMS_DB if detector == "rms" else 0.0)
        expected = gain_computer_db(np.array(level), **COMPRESSOR) - level
        n = round(0.05 * sample_rate)
        assert rms_db(settle(n, y)) - rms_db(settle(n, x)) == pytest.approx(expected, abs=LEVEL_DB)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize(("attack_ms", "release_ms"), [(5.0, 50.0), (20.0, 200.0)])
def test_compressor_time_constants(sample_rate: int, attack_ms: float, release_ms: float) -> None:
    """After a level step the gain reduction in dB makes 63.2 % (1 - 1/e) of its change
    after attack_ms (up) and release_ms (down), within the issue's 5 %; the whole trajectory
    is the one-pole step response G (1 - a^(k+1)) up and G0 a^(k+1) down, a = e^(-1/(tau fs)).

    The input is constant (DC) on each side of the steps, so the peak detector's level is
    exact and the smoothing alone shapes the reduction; y / x is the gain at every sample,
    computed in float32 (within 4e-7 relative: 3.5e-6 dB)."""
    quiet, loud = db_to_gain(-40.0), db_to_gain(-5.0)
    up, down = round(0.05 * sample_rate), round((0.05 + 10 * attack_ms / 1e3) * sample_rate)
    x = np.full((1, down + round(5 * release_ms / 1e3 * sample_rate)), quiet)
    x[:, up:down] = loud
    reduction = -gain_db(
        compress(x, sample_rate, **COMPRESSOR, attack_ms=attack_ms, release_ms=release_ms), x
    )[0]
    final = -5.0 - gain_computer_db(np.array(-5.0), **COMPRESSOR)  # 11.25 dB
    steps = np.arange(1, x.shape[1] + 1)
    rising = final * (1 - np.exp(-steps[: down - up] / (attack_ms / 1e3 * sample_rate)))
    falling = rising[-1] * np.exp(-steps[: x.shape[1] - down] / (release_ms / 1e3 * sample_rate))
    np.testing.assert_allclose(
        reduction, np.concatenate([np.zeros(up), rising, falling]), atol=1e-5
    )
    # Sample up + k is the (k + 1)-th sample at the new level.
    attack_s = (np.argmax(reduction[up:] >= (1 - 1 / math.e) * final) + 1) / sample_rate
    release_s = (np.argmax(reduction[down:] <= rising[-1] / math.e) + 1) / sample_rate
    assert attack_s * 1e3 == pytest.approx(attack_ms, rel=0.05)
    assert release_s * 1e3 == pytest.approx(release_ms, rel=0.05)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("key_channels", CHANNELS)
def test_sidechain_ducks_only_while_the_key_plays(
    sample_rate: int, channels: int, key_channels: int
) -> None:
    """A steady sine keyed by two 100 ms bursts: cut by many dB during each burst, and back
    to 0 dB before the first and ten release time constants after the first (e^-10 of the
    reduction is far under 0.1 dB). The target itself is above the threshold, so any
    reduction outside the bursts would mean the detector heard it."""
    x = tone(-12.0, 1.0, sample_rate, channels)
    key = np.zeros((key_channels, x.shape[1]))
    burst = tone(-6.0, 0.1, sample_rate, key_channels, 200.0)
    for start_s in (0.1, 0.7):
        start = round(start_s * sample_rate)
        key[:, start : start + burst.shape[1]] = burst
    ducker = {"threshold_db": -30.0, "ratio": 10.0, "knee_db": 0.0, "attack_ms": 5.0}
    y = compress(x, sample_rate, **ducker, release_ms=40.0, key=key)
    reduction = -gain_db(y, x)

    def during(start_s: float, stop_s: float) -> np.ndarray:
        return reduction[:, round(start_s * sample_rate) : round(stop_s * sample_rate)]

    assert np.all(during(0.0, 0.1) == 0.0)
    assert np.min(during(0.15, 0.2)) > 10.0 and np.min(during(0.75, 0.8)) > 10.0
    assert np.max(np.abs(during(0.6, 0.7))) < LEVEL_DB


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("key", [False, True])
def test_key_highpass_is_a_butterworth_on_the_detector(sample_rate: int, key: bool) -> None:
    """key_highpass_hz filters the detector input (the key, or x itself) with the 2nd-order
    Butterworth high-pass scipy designs: the same output as keying with the pre-filtered
    signal, on a mix whose 1 kHz part (at the cutoff, -3.01 dB) still compresses. A 50 Hz
    tone that alone drives the detector hard is 52 dB down after it and compresses no more."""
    low = tone(-6.0, 0.3, sample_rate, 2, 50.0)
    x = low + tone(-12.0, 0.3, sample_rate, 2, 1e3)
    sos = scipy.signal.butter(2, 1e3, btype="highpass", fs=sample_rate, output="sos")
    settings = {**COMPRESSOR, "knee_db": 0.0, "attack_ms": 1.0, "release_ms": 50.0}
    with_highpass = compress(
        x, sample_rate, **settings, key=x if key else None, key_highpass_hz=1e3
    )
    prefiltered = compress(x, sample_rate, **settings, key=scipy.signal.sosfilt(sos, x))
    np.testing.assert_allclose(with_highpass, prefiltered, rtol=EXACT, atol=0)
    assert np.max(-gain_db(with_highpass, x)) > 1.0
    low_only = compress(low, sample_rate, **settings, key_highpass_hz=1e3)
    assert np.max(-gain_db(low_only, low)) < LEVEL_DB
    assert np.max(-gain_db(compress(low, sample_rate, **settings), low)) > 10.0


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_stereo_link(sample_rate: int, rng: np.random.Generator) -> None:
    """link 1: one gain for both channels (y / x equal per sample); link 0: a loud left does
    not touch a quiet right; link 0.5 on constant levels 0 dBFS and -40 dBFS: the right is
    driven by the amplitude 0.5 * 1 + 0.5 * 0.01 and settles at that level's reduction."""
    n = round(0.2 * sample_rate)
    x = np.vstack([0.5 * rng.standard_normal(n), 0.005 * rng.standard_normal(n)])
    settings = {**COMPRESSOR, "attack_ms": 1.0, "release_ms": 50.0}
    linked = compress(x, sample_rate, **settings, link=1.0)
    np.testing.assert_allclose(linked[0] / x[0], linked[1] / x[1], rtol=EXACT)
    assert np.min(linked[1] / x[1]) < db_to_gain(-6.0)
    unlinked = compress(x, sample_rate, **settings, link=0.0)
    np.testing.assert_array_equal(unlinked[1], x[1])
    assert np.min(unlinked[0] / x[0]) < db_to_gain(-6.0)
    constant = np.vstack([np.ones(n), np.full(n, 0.01)])
    half = compress(constant, sample_rate, **settings, link=0.5)[:, -1] / constant[:, -1]
    drives = np.array([0.0, gain_to_db(0.505)])
    expected = gain_computer_db(drives, **COMPRESSOR) - drives
    np.testing.assert_allclose(gain_to_db(half[0]), expected[0], atol=1e-9)
    np.testing.assert_allclose(gain_to_db(half[1]), expected[1], atol=1e-9)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_mix_and_makeup(sample_rate: int, channels: int, rng: np.random.Generator) -> None:
    """mix 0 returns x exactly; mix m is (1 - m) x + m * compressed; makeup multiplies the
    compressed signal by its gain."""
    x = 0.3 * rng.standard_normal((channels, round(0.1 * sample_rate)))
    settings = {**COMPRESSOR, "attack_ms": 2.0, "release_ms": 30.0}
    wet = compress(x, sample_rate, **settings)
    assert np.max(np.abs(wet - x)) > 0.01  # the material is compressed
    np.testing.assert_array_equal(compress(x, sample_rate, **settings, mix=0.0), x)
    parallel = compress(x, sample_rate, **settings, mix=0.3)
    np.testing.assert_allclose(parallel, 0.7 * x + 0.3 * wet, rtol=EXACT, atol=EXACT)
    louder = compress(x, sample_rate, **settings, makeup_db=6.0)
    np.testing.assert_allclose(louder, wet * db_to_gain(6.0), rtol=GAIN_RTOL)


# --- the gate -----------------------------------------------------------------------------

GATE = {"threshold_db": -40.0, "attack_ms": 1.0, "hold_ms": 10.0, "release_ms": 10.0}


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("range_db", [-30.0, -80.0])
def test_gate_attenuates_by_range_below_threshold(
    sample_rate: int, channels: int, range_db: float
) -> None:
    """A loud passage opens the gate; 35 release time constants after the level drops
    under the threshold the gain is the range (the rest of the release, e^-35 of the way,
    is far below 0.1 dB even against -80 dB)."""
    x = np.hstack(
        [tone(-10.0, 0.1, sample_rate, channels), tone(-50.0, 0.4, sample_rate, channels)]
    )
    y = gate(x, sample_rate, **GATE, range_db=range_db, ratio=None)
    assert np.max(np.abs(y[:, : round(0.1 * sample_rate)])) > 0.9 * db_to_gain(-10.0)
    n = round(0.05 * sample_rate)
    assert rms_db(settle(n, y)) - rms_db(settle(n, x)) == pytest.approx(range_db, abs=LEVEL_DB)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_expander_follows_its_curve(sample_rate: int, ratio: float) -> None:
    """A sine peaking 10 dB under the threshold is expanded to (peak - threshold)(ratio - 1)
    dB: instant opening holds the crest's gain, a 1 s release sags 1e-3 of it per period."""
    x = tone(-50.0, 0.2, sample_rate)
    settings = {**GATE, "attack_ms": 0.0, "release_ms": 1e3}
    y = gate(x, sample_rate, **settings, range_db=-80.0, ratio=ratio)
    n = round(0.05 * sample_rate)
    expected = -10.0 * (ratio - 1.0)
    assert rms_db(settle(n, y)) - rms_db(settle(n, x)) == pytest.approx(expected, abs=LEVEL_DB)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_gate_passes_at_unity_above_threshold(sample_rate: int, channels: int) -> None:
    """Above the threshold the gain is 1: after 25 opening time constants (e^-25 of the way
    left) the gain is within 1e-6 dB of unity on every sample, zero crossings included,
    because the 10 ms hold bridges them."""
    x = tone(-10.0, 0.1, sample_rate, channels)
    y = gate(x, sample_rate, **GATE, range_db=-80.0, ratio=None)
    n = round(0.075 * sample_rate)
    assert np.max(np.abs(gain_db(settle(n, y), settle(n, x)))) < 1e-6


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("hold_ms", [0.0, 5.0, 20.0])
def test_gate_hold_delays_the_release(sample_rate: int, hold_ms: float) -> None:
    """The release starts hold_ms after the last sample at or above the threshold: within
    one sample (hold is rounded to whole samples), well inside the issue's 1 ms. The input
    is a constant burst then a constant quiet level, so y / x is the gain everywhere."""
    end = round(0.1 * sample_rate)
    x = np.full((1, end + round(0.1 * sample_rate)), 0.001)
    x[:, :end] = 0.5
    gain = gate(x, sample_rate, **{**GATE, "hold_ms": hold_ms}, range_db=-30.0, ratio=None) / x
    closing = np.argmax(gain[0, end:] < 1.0)  # the first sample after the burst under unity
    assert np.all(gain[0, end - round(0.02 * sample_rate) : end] == 1.0)
    assert closing * 1e3 / sample_rate == pytest.approx(hold_ms, abs=1e3 / sample_rate)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_keyed_gate_opens_only_with_the_key(sample_rate: int) -> None:
    """A steady sine keyed by a 100 ms burst passes at unity during the burst and sits at
    the range long after it, although the sine alone is above the threshold."""
    x = tone(-10.0, 0.6, sample_rate, 2)
    key = np.zeros((1, x.shape[1]))
    burst = slice(round(0.1 * sample_rate), round(0.2 * sample_rate))
    key[:, burst] = 0.5
    gain = gain_db(gate(x, sample_rate, **GATE, range_db=-30.0, ratio=None, key=key), x)
    np.testing.assert_allclose(gain[:, round(0.15 * sample_rate) : burst.stop], 0.0, atol=1e-6)
    np.testing.assert_allclose(gain[:, round(0.5 * sample_rate) :], -30.0, atol=LEVEL_DB)
    np.testing.assert_allclose(gain[:, 1 : burst.start], -30.0, atol=1e-9)  # x[0] = 0


# --- blocks, and the fused kernels against numpy ------------------------------------------

BLOCK_CASE_SAMPLES = 3000  # across six of the kernels' 512-sample slices, yet quick
FAST = {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 6.0, "attack_ms": 0.5}
FAST_GATE = {"threshold_db": -20.0, "attack_ms": 0.2, "hold_ms": 1.0, "release_ms": 2.0}


def bursts(channels: int, rng: np.random.Generator) -> np.ndarray:
    """Noise whose level jumps every 250 samples among silence and four levels spanning 40 dB,
    the right channel 10 dB under the left: every move of a detector in a few thousand
    samples (attack, release, knee, silence, one side louder)."""
    levels = rng.choice([0.0, 0.01, 0.1, 0.5, 1.0], size=BLOCK_CASE_SAMPLES // 250 + 1)
    envelope = np.repeat(levels, 250)[:BLOCK_CASE_SAMPLES]
    x = 0.5 * rng.standard_normal((channels, BLOCK_CASE_SAMPLES)) * envelope
    x[1:] *= db_to_gain(-10.0)
    return x


def in_blocks(
    process: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    x: np.ndarray,
    key: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """``process`` run over consecutive blocks of random sizes, blocks of 0 and 1 samples
    included, some inside one kernel slice and some across several, concatenated."""
    n = x.shape[1]
    cuts = np.sort(np.concatenate([[0, 0, 1, 2], rng.integers(0, n + 1, 30), [n - 1, n, n]]))
    return np.hstack(
        [
            process(x[:, a:b], None if key is None else key[:, a:b])
            for a, b in itertools.pairwise(cuts)
        ]
    )


def numpy_detector_input(
    x: np.ndarray, key: np.ndarray | None, highpass_hz: float | None
) -> np.ndarray:
    """The detector's input as scipy computes it: the key or x, through scipy's Butterworth."""
    source = x if key is None else key
    if highpass_hz is None:
        return source
    sos = scipy.signal.butter(2, highpass_hz, "highpass", fs=SAMPLE_RATE, output="sos")
    return scipy.signal.sosfilt(sos, source)


def numpy_one_pole(targets: np.ndarray, state: float, up_ms: float, down_ms: float) -> np.ndarray:
    """[GMR] §III's branching smoother in a Python loop: ``y = x + alpha (y - x)``, ``alpha =
    exp(-1 / (tau fs))`` with ``up_ms`` while the target is above ``y``, else ``down_ms``."""
    up, down = (math.exp(-1e3 / (ms * SAMPLE_RATE)) if ms else 0.0 for ms in (up_ms, down_ms))
    out = np.empty_like(targets)
    for i, target in enumerate(targets):
        state = target + (up if target > state else down) * (state - target)
        out[i] = state
    return out


def numpy_compress(
    x: np.ndarray,
    *,
    threshold_db: float,
    ratio: float,
    knee_db: float,
    attack_ms: float,
    release_ms: float,
    detector: str,
    link: float,
    mix: float,
    makeup_db: float,
    key: np.ndarray | None,
    key_highpass_hz: float | None,
) -> np.ndarray:
    """The compressor pass by pass, as it was before the fusion: scipy's high-pass and
    one-pole mean square, np.log10, the static curve, the smoother, 10 ** (dB / 20)."""
    source = numpy_detector_input(x, key, key_highpass_hz)
    if detector == "rms":
        pole = math.exp(-1e3 / (10.0 * SAMPLE_RATE))  # RMS_TIME_MS
        levels = np.sqrt(scipy.signal.lfilter([1.0 - pole], [1.0, -pole], source**2))
    else:
        levels = np.abs(source)
    drive = np.max(levels, axis=0, keepdims=True)
    if x.shape[0] == 2 and levels.shape[0] == 2:
        drive = link * drive + (1.0 - link) * levels
    with np.errstate(divide="ignore", invalid="ignore"):  # silence: -inf dB, no reduction
        level_db = 20.0 * np.log10(drive)
        curve = gain_computer_db(level_db, threshold_db, ratio, knee_db)
        targets = np.where(drive > 0.0, level_db - curve, 0.0)
    reduction = np.vstack([numpy_one_pole(t, 0.0, attack_ms, release_ms) for t in targets])
    wet = x * 10.0 ** ((makeup_db - reduction) / 20.0)
    return (1.0 - mix) * x + mix * wet


def numpy_gate(
    x: np.ndarray,
    *,
    threshold_db: float,
    range_db: float,
    ratio: float | None,
    attack_ms: float,
    hold_ms: float,
    release_ms: float,
    key: np.ndarray | None,
    key_highpass_hz: float | None,
) -> np.ndarray:
    """The gate spelt out: the loudest |key| per sample, open at the threshold and for the
    hold after it, else max(range, (level / threshold) ** (ratio - 1)), smoothed as a gain."""
    level = np.max(np.abs(numpy_detector_input(x, key, key_highpass_hz)), axis=0)
    threshold, floor = db_to_gain(threshold_db), db_to_gain(range_db)
    below = np.full_like(level, floor)
    if ratio is not None:
        below = np.maximum((level / threshold) ** (ratio - 1.0), floor)
    hold = round(hold_ms * SAMPLE_RATE / 1e3)
    last_open = -hold - 1
    targets = np.empty_like(level)
    for i, value in enumerate(level):
        last_open = i if value >= threshold else last_open
        targets[i] = 1.0 if i - last_open <= hold else below[i]
    return x * numpy_one_pole(targets, floor, attack_ms, release_ms)


COMPRESSOR_CASES = pytest.mark.parametrize(
    ("detector", "link", "key_channels", "key_highpass_hz", "channels"),
    [
        (detector, link, key_channels, highpass_hz, channels)
        for detector in ("peak", "rms")
        for link in (1.0, 0.5, 0.0)
        for key_channels in (0, 1, 2)  # 0: no key, the detector hears x
        for highpass_hz in (None, 300.0)
        for channels in CHANNELS
    ],
)


def compressor_case(
    detector: str,
    link: float,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, object]]:
    """Signal, key (or None) and settings: a fast compressor with makeup and parallel mix."""
    x = bursts(channels, rng)
    key = bursts(key_channels, rng) if key_channels else None
    settings = {**FAST, "release_ms": 5.0, "detector": detector, "link": link}
    settings.update(mix=0.7, makeup_db=3.0, key_highpass_hz=key_highpass_hz)
    return x, key, settings


@COMPRESSOR_CASES
def test_compressor_blocks_equal_the_whole_exactly(
    detector: str,
    link: float,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> None:
    """Any split into blocks gives the bytes of the whole: the key high-pass, the mean
    square, the smoothed reduction all carry over. A state that restarted, or was lost at a
    block edge, would differ by far more than a bit."""
    x, key, settings = compressor_case(detector, link, key_channels, key_highpass_hz, channels, rng)
    whole = compress(x, SAMPLE_RATE, **settings, key=key)
    processor = Compressor(SAMPLE_RATE, channels, **settings)
    np.testing.assert_array_equal(in_blocks(processor.process, x, key, rng), whole)


@COMPRESSOR_CASES
def test_compressor_equals_the_numpy_passes(
    detector: str,
    link: float,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> None:
    """The fused kernel computes what the separate numpy passes compute, to ``GAIN_RTOL``:
    its log and exp are within 1 ulp of numpy's in float32, and its smoother is the same
    recursion rearranged; a wrong link, detector or state would be off by whole percent."""
    x, key, settings = compressor_case(detector, link, key_channels, key_highpass_hz, channels, rng)
    y = compress(x, SAMPLE_RATE, **settings, key=key)
    np.testing.assert_allclose(y, numpy_compress(x, **settings, key=key), rtol=GAIN_RTOL, atol=0)
    assert np.ptp(gain_db(y, x)[x != 0.0]) > 3.0  # the gain moves: the case compresses


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("detector", ["peak", "rms"])
@pytest.mark.parametrize("key_highpass_hz", [None, 300.0])
def test_two_compressors_side_by_side_are_each_their_own_bits(
    channels: int, detector: str, key_highpass_hz: float | None, rng: np.random.Generator
) -> None:
    """``compress_pair`` runs two compressors in one kernel, each with its own settings and
    state, their smoothing in one loop: block after block (within a kernel slice and across
    several), each gets what its own ``process`` gives. Compressors that do not pair (another
    channel count, an unlinked stereo drive, a key heard) are refused."""
    first_settings = {**FAST, "release_ms": 5.0, "detector": detector}
    first_settings.update(mix=0.7, makeup_db=3.0, key_highpass_hz=key_highpass_hz)
    second_settings = {"threshold_db": -30.0, "ratio": 2.5, "knee_db": 0.0, "attack_ms": 3.0}
    second_settings.update(release_ms=40.0, detector=detector, key_highpass_hz=key_highpass_hz)
    made = [
        Compressor(SAMPLE_RATE, channels, **settings)
        for settings in (first_settings, second_settings, first_settings, second_settings)
    ]
    first, second, first_alone, second_alone = made
    assert first.pairs_with(second)
    x = np.concatenate([bursts(channels, rng), 0.5 * bursts(channels, rng)])
    blocks = []
    for start, stop in itertools.pairwise([0, 1, 1, 500, 2_100, BLOCK_CASE_SAMPLES]):
        y = compress_pair(first, second, x[:, start:stop])
        assert np.array_equal(y[:channels], first_alone.process(x[:channels, start:stop]))
        assert np.array_equal(y[channels:], second_alone.process(x[channels:, start:stop]))
        blocks.append(y)
    for rows in (slice(None, channels), slice(channels, None)):  # both compress
        assert np.ptp(gain_db(np.hstack(blocks)[rows], x[rows])[x[rows] != 0.0]) > 3.0
    assert not first.pairs_with(Compressor(SAMPLE_RATE, 3 - channels, **first_settings))
    keyed = Compressor(SAMPLE_RATE, channels, **first_settings)
    keyed.process(x[:channels, :10], np.zeros((3 - channels, 10)))
    assert not first.pairs_with(keyed)
    unlinked = Compressor(SAMPLE_RATE, channels, **first_settings, link=0.5)
    assert first.pairs_with(unlinked) == (channels == 1)
    with pytest.raises(ValueError, match="compressor pair block: got shape"):
        compress_pair(first, second, np.zeros((channels, 10)))


GATE_CASES = pytest.mark.parametrize(
    ("ratio", "key_channels", "key_highpass_hz", "channels"),
    [
        (ratio, key_channels, highpass_hz, channels)
        for ratio in (None, 2.0)
        for key_channels in (0, 1, 2)
        for highpass_hz in (None, 300.0)
        for channels in CHANNELS
    ],
)


def gate_case(
    ratio: float | None,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, object]]:
    """Signal, key (or None) and settings of a fast gate whose 1 ms hold spans block edges."""
    x = bursts(channels, rng)
    key = bursts(key_channels, rng) if key_channels else None
    settings = {**FAST_GATE, "range_db": -40.0, "ratio": ratio, "key_highpass_hz": key_highpass_hz}
    return x, key, settings


@GATE_CASES
def test_gate_blocks_equal_the_whole_exactly(
    ratio: float | None,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> None:
    """As for the compressor; the hold count carries over too."""
    x, key, settings = gate_case(ratio, key_channels, key_highpass_hz, channels, rng)
    whole = gate(x, SAMPLE_RATE, **settings, key=key)
    processor = Gate(SAMPLE_RATE, channels, **settings)
    np.testing.assert_array_equal(in_blocks(processor.process, x, key, rng), whole)


@GATE_CASES
def test_gate_equals_the_numpy_passes(
    ratio: float | None,
    key_channels: int,
    key_highpass_hz: float | None,
    channels: int,
    rng: np.random.Generator,
) -> None:
    """The fused gate against the recursion written on the gain itself: 1e-12 relative,
    plus 1e-15 absolute, because the kernel smooths 1 - gain, whose rounding is in ulps of
    1 (2e-16) rather than of the gain when the gate is nearly shut."""
    x, key, settings = gate_case(ratio, key_channels, key_highpass_hz, channels, rng)
    y = gate(x, SAMPLE_RATE, **settings, key=key)
    np.testing.assert_allclose(y, numpy_gate(x, **settings, key=key), rtol=1e-12, atol=1e-15)
    gains = gain_db(y, x)[x != 0.0]
    assert np.min(gains) < -20.0 and np.max(gains) > -1e-6  # it closes and opens


@pytest.mark.parametrize(
    ("each", "scalar"), [(exp_each, exp), (expm1_each, expm1), (tanh_each, tanh)]
)
def test_elementwise_functions_are_the_scalar_kernel_on_each_element(
    each: Callable[[object], object], scalar: Callable[[float], float], rng: np.random.Generator
) -> None:
    """``exp_each`` and the others give the scalar kernel's bits on every element, in the
    shape of their argument (a scalar for a scalar), strided or not."""
    x = rng.uniform(-5.0, 5.0, (3, 8))[:, ::2]
    expected = np.array([scalar(float(v)) for v in x.flat]).reshape(x.shape)
    assert np.array_equal(each(x), expected)
    assert np.array_equal(each(list(x[0])), expected[0])
    one = each(0.25)
    assert np.ndim(one) == 0 and one == scalar(0.25)


def test_log10_each_is_numpys_within_an_ulp_and_keeps_the_edges() -> None:
    values = np.geomspace(1e-300, 1e300, 2001)
    np.testing.assert_array_max_ulp(log10_each(values), np.log10(values), maxulp=2)
    edges = log10_each(np.array([0.0, -1.0, np.inf, 1e-320]))
    assert edges[0] == -np.inf and np.isnan(edges[1]) and edges[2] == np.inf
    assert edges[3] == log10_each(TINY)


@pytest.mark.parametrize(
    ("function", "reference", "values"),
    [
        (ln, np.log, np.geomspace(np.finfo(float).tiny, 1e300, 4001)),
        (ln, np.log, np.linspace(0.5, 2.0, 4001)),  # around 1, where log(x) is near 0
        (exp, np.exp, np.linspace(-708.0, 709.0, 4001)),
        (exp, np.exp, np.linspace(-1.0, 1.0, 4001)),
    ],
)
def test_vectorising_log_and_exp_are_within_an_ulp(
    function: Callable[[float], float],
    reference: Callable[[np.ndarray], np.ndarray],
    values: np.ndarray,
) -> None:
    """The kernels' own log and exp (fdlibm's log, Cody & Waite's exp) against numpy's, each
    within 1 ulp of the truth: 2 ulps apart at most. A wrong coefficient or range
    reduction shows as thousands of ulps."""
    ours = np.array([function(float(v)) for v in values])
    np.testing.assert_array_max_ulp(ours, reference(values), maxulp=2)


@pytest.mark.parametrize(
    ("function", "reference", "values"),
    [
        (ln_32, np.log, np.geomspace(np.finfo(np.float32).tiny, 1e38, 4001)),
        (ln_32, np.log, np.linspace(0.5, 2.0, 4001)),
        (exp_32, np.exp, np.linspace(-86.0, 88.0, 4001)),
        (exp_32, np.exp, np.linspace(-1.0, 1.0, 4001)),
    ],
)
def test_single_precision_log_and_exp_are_within_an_ulp(
    function: Callable[[np.float32], np.float32],
    reference: Callable[[np.ndarray], np.ndarray],
    values: np.ndarray,
) -> None:
    """The float32 log (fdlibm's logf) and exp the compressor's gain uses, against numpy's
    float64 result rounded to float32: within 1 ulp of it."""
    arguments = values.astype(np.float32)
    ours = np.array([function(v) for v in arguments], dtype=np.float32)
    assert ours.dtype == np.float32
    expected = reference(arguments.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_max_ulp(ours, expected, maxulp=1)


# --- the limiter --------------------------------------------------------------------------

CEILING_DB = -1.0
CEILING = db_to_gain(CEILING_DB)
LIMITER = {"ceiling_db": CEILING_DB, "release_ms": 50.0, "lookahead_ms": 5.0}


def limited(x: np.ndarray, sample_rate: int, **changes: float | bool) -> np.ndarray:
    """``limit`` with a -1 dB ceiling, 50 ms release and 5 ms lookahead unless changed."""
    return limit(x, sample_rate, **{**LIMITER, **changes})


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("lookahead_ms", [0.0, 1.5, 5.0])
@pytest.mark.parametrize("true_peak", [True, False])
def test_limiter_never_exceeds_the_ceiling(
    sample_rate: int, channels: int, lookahead_ms: float, true_peak: bool, rng: np.random.Generator
) -> None:
    """Noise peaking around +6 dBFS with single-sample spikes at +12 dBFS: no output sample
    above the ceiling. The issue asks 1e-12; the bound is one unit in the last place (the
    rounding of x * ceiling / |x|), which also catches a missing final min: the running sums
    alone overshoot by up to ~1e3 ulps (1e-13), inside 1e-12."""
    x = 0.5 * rng.standard_normal((channels, round(0.1 * sample_rate)))
    x[:, :: round(0.01 * sample_rate)] = 4.0
    y = limited(x, sample_rate, release_ms=20.0, lookahead_ms=lookahead_ms, true_peak=true_peak)
    assert np.max(np.abs(y)) <= CEILING + np.spacing(CEILING)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("true_peak", [True, False])
def test_limiter_reaches_the_ceiling_on_a_steady_tone(sample_rate: int, true_peak: bool) -> None:
    """A 1 kHz sine at +6 dBFS settles with its sample peaks at the ceiling (within 0.01
    dB: the 5 ms window holds five periods, so its least gain is the crest's), not below:
    the limiter takes off what it must, no more."""
    x = tone(6.0, 0.5, sample_rate)
    y = limited(x, sample_rate, release_ms=100.0, true_peak=true_peak)
    assert gain_to_db(np.max(np.abs(settle(round(0.1 * sample_rate), y)))) == pytest.approx(
        CEILING_DB, abs=0.01
    )


def reference_limiter(x: np.ndarray, ceiling: float, delay: int, release: float) -> np.ndarray:
    """Luff's construction spelt out with numpy: g_req, the running minimum over delay + 1
    samples (ones before the start), its moving average over as many, the one-pole release
    in a Python loop, the final min with g_req, and the delayed product."""
    required = ceiling / np.maximum(np.max(np.abs(x), axis=0), ceiling)
    window = np.lib.stride_tricks.sliding_window_view
    minimum = window(np.concatenate([np.ones(delay), required]), delay + 1).min(axis=1)
    average = window(np.concatenate([np.ones(delay), minimum]), delay + 1).mean(axis=1)
    gain, g = np.empty_like(average), 1.0
    for i, a in enumerate(average):
        g = a if a < g else a + release * (g - a)
        gain[i] = min(g, required[i - delay]) if i >= delay else g
    y = np.zeros_like(x)
    y[:, delay:] = x[:, : x.shape[1] - delay] * gain[delay:]
    return y


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize(("lookahead_ms", "release_ms"), [(0.0, 5.0), (1.0, 0.0), (2.5, 20.0)])
def test_limiter_follows_the_lookahead_construction(
    sample_rate: int,
    channels: int,
    lookahead_ms: float,
    release_ms: float,
    rng: np.random.Generator,
) -> None:
    """Sample-peak limiting equals the construction evaluated directly (1e-12: the kernel
    keeps its running sums as reductions, so only rounding differs), release included."""
    x = 0.6 * rng.standard_normal((channels, round(0.03 * sample_rate)))  # overs to +6 dB
    x[:, round(0.02 * sample_rate) :] *= 0.1  # a quiet tail, for the release
    d = limiter_latency_samples(sample_rate, lookahead_ms)
    release = math.exp(-1e3 / (release_ms * sample_rate)) if release_ms else 0.0
    y = limited(x, sample_rate, release_ms=release_ms, lookahead_ms=lookahead_ms, true_peak=False)
    np.testing.assert_allclose(y, reference_limiter(x, CEILING, d, release), rtol=0, atol=EXACT)
    assert np.min(gain_db(y[:, d:], x[:, : x.shape[1] - d])) < -6.0  # it does limit


def quarter_rate_sine(sample_rate: int, channels: int) -> np.ndarray:
    """The worst inter-sample peak: sin(pi n / 2 + pi / 4) has every sample at +-0.707 and
    peaks of 1.0 (0 dBTP, +3 dB over the samples) halfway between them. Raised-cosine fades
    of 10 ms, and silence after, keep the reconstruction free of edge ringing."""
    n, fade = round(0.2 * sample_rate), round(0.01 * sample_rate)
    x = np.sin(np.pi / 2 * np.arange(n) + np.pi / 4)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    x[:fade] *= ramp
    x[n - fade :] *= ramp[::-1]
    return np.repeat(np.pad(x, (0, fade))[np.newaxis], channels, 0)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("true_peak", [True, False])
def test_limiter_true_peak(sample_rate: int, channels: int, true_peak: bool) -> None:
    """The 4x oversampled output (BS.1770-4 Annex 2, scipy.signal.resample_poly) stays within
    0.1 dB of the ceiling with true-peak detection; sample-peak detection sees nothing over
    the ceiling and lets the +3 dB inter-sample peaks through, so the same check fails."""
    x = quarter_rate_sine(sample_rate, channels)
    y = limited(x, sample_rate, lookahead_ms=2.0, true_peak=true_peak)
    true_peak_db = gain_to_db(np.max(np.abs(scipy.signal.resample_poly(y, 4, 1, axis=-1))))
    if true_peak:
        assert true_peak_db <= CEILING_DB + LEVEL_DB
    else:  # untouched: the input's own 0 dBTP (to resample_poly's passband ripple)
        assert true_peak_db > CEILING_DB + LEVEL_DB
        assert true_peak_db == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("release_ms", [0.0, 5.0, 50.0])
def test_limiter_gain_stretches_are_the_whole_signals_gain(
    release_ms: float, rng: np.random.Generator
) -> None:
    """Limited stretch by stretch from rest, the gain is the whole signal's to the bit, and
    exactly 1 between the stretches: single overs, clusters, and gaps either side of the
    length after which the limiter is at rest again (two lookaheads, then the release's
    decay to 2**-54: the stretches' own rule, so both sides of it are tried)."""
    rate, lookahead_ms, ceiling_db = 8000, 2.0, -3.0
    w = limiter_latency_samples(rate, lookahead_ms) + 1
    release = math.exp(-1000.0 / (release_ms * rate)) if release_ms else 0.0
    decay = math.ceil(54 * math.log(2) / -math.log(release)) + 1 if release else 0
    settle = 2 * w + decay
    gaps = [1, 5, w, settle + w - 1, settle + w, settle + w + 1, 3 * settle]
    gaps += rng.integers(1, 2 * settle + 2 * w, 20).tolist()
    positions = np.cumsum([100, *gaps])
    peaks = 0.6 * rng.random(int(positions[-1]) + settle + 500)  # under the ceiling
    peaks[positions] = 0.75 + rng.random(positions.size)  # over the 0.708 ceiling
    settings = {"ceiling_db": ceiling_db, "release_ms": release_ms, "lookahead_ms": lookahead_ms}
    whole = limiter_gain(peaks, rate, **settings)
    stretched = np.ones_like(whole)
    stretches = limiter_gain_stretches(peaks, rate, **settings)
    for first, gain in stretches:
        stretched[first : first + gain.size] = gain
    assert stretched.tobytes() == whole.tobytes()
    assert 1 < len(stretches) < positions.size  # some overs shared a stretch, some did not


@pytest.mark.parametrize("length", [1, 5, 31, 32, 1500, 200_000])
@pytest.mark.parametrize("silence", [0, 1, 7, 220])
def test_padded_peaks_are_the_padded_signals(
    length: int, silence: int, rng: np.random.Generator
) -> None:
    """``padded_peaks`` are, to the bit, the true peaks of ``x`` padded with that much
    silence: what lets a relimit skip forming the padded copy."""
    x = rng.standard_normal((2, length))
    expected = true_peaks(np.pad(x, ((0, 0), (0, silence))))
    assert padded_peaks(x, silence).tobytes() == expected.tobytes()


@pytest.mark.parametrize("length", [5, 1024, 1500])
@pytest.mark.parametrize("channels", CHANNELS)
def test_true_peaks_are_resample_polys_samples(
    length: int, channels: int, rng: np.random.Generator
) -> None:
    """The detector's peak per sample is the largest |value| among the sample and the three
    interpolated after it by scipy.signal.resample_poly(x, 4, 1), across channels, edges
    (zeros outside x) and block boundaries included."""
    x = rng.standard_normal((channels, length))
    up = scipy.signal.resample_poly(x, 4, 1, axis=-1).reshape(channels, length, 4)
    expected = np.max(np.maximum(np.abs(x), np.max(np.abs(up[..., 1:]), axis=-1)), axis=0)
    np.testing.assert_allclose(true_peaks(x), expected, rtol=EXACT)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("lookahead_ms", [0.0, 1.0, 2.5, 5.0])
@pytest.mark.parametrize("true_peak", [True, False])
def test_limiter_latency(sample_rate: int, lookahead_ms: float, true_peak: bool) -> None:
    """An impulse under the ceiling comes out round(lookahead_ms * fs / 1000) samples later,
    with its value unchanged, and nothing else does."""
    latency = limiter_latency_samples(sample_rate, lookahead_ms)
    assert latency == round(lookahead_ms * sample_rate / 1000)
    x = np.zeros((2, 1000))
    x[:, 100] = 0.5
    expected = np.zeros_like(x)
    expected[:, 100 + latency] = 0.5
    y = limited(x, sample_rate, lookahead_ms=lookahead_ms, true_peak=true_peak)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("true_peak", [True, False])
def test_limiter_passes_a_quiet_signal_unchanged(
    sample_rate: int, channels: int, true_peak: bool, rng: np.random.Generator
) -> None:
    """Noise peaking at -12 dBFS (true peaks stay under the -1 dBTP ceiling) comes out as
    the input, delayed, to 1e-12."""
    x = rng.standard_normal((channels, round(0.05 * sample_rate)))
    x *= db_to_gain(-12.0) / np.max(np.abs(x))
    d = limiter_latency_samples(sample_rate, 5.0)
    y = limited(x, sample_rate, true_peak=true_peak)
    np.testing.assert_allclose(y[:, d:], x[:, :-d], rtol=0, atol=EXACT)
    assert np.all(y[:, :d] == 0.0)


# --- contract -----------------------------------------------------------------------------

EFFECTS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "compress": lambda x, key: compress(
        x,
        48_000,
        **COMPRESSOR,
        attack_ms=1.0,
        release_ms=20.0,
        key=key,
        key_highpass_hz=100.0,
        mix=0.5,
    ),
    "gate": lambda x, key: gate(x, 48_000, **GATE, range_db=-20.0, ratio=2.0, key=key),
    "limit": lambda x, key: limit(x, 48_000, ceiling_db=-6.0, release_ms=20.0, lookahead_ms=1.0),
}


@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("channels", CHANNELS)
def test_input_is_never_modified(effect: str, channels: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((channels, 4800))
    key = rng.standard_normal((3 - channels, 4800))
    x_before, key_before = x.copy(), key.copy()
    y = EFFECTS[effect](x, key)
    assert y.shape == x.shape and not np.shares_memory(y, x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(key, key_before)


VALID: dict[object, dict[str, object]] = {
    compress: {**COMPRESSOR, "attack_ms": 1.0, "release_ms": 1.0},
    gate: {**GATE, "range_db": -20.0, "ratio": None},
    limit: LIMITER,
}
VALID[Compressor], VALID[Gate] = VALID[compress], VALID[gate]


@pytest.mark.parametrize(
    ("effect", "change", "message"),
    [
        (compress, {"ratio": 0.5}, "compressor ratio: got 0.5"),
        (compress, {"threshold_db": -math.inf}, "compressor threshold_db: got -inf dB"),
        (compress, {"knee_db": -1.0}, "compressor knee_db: got -1.0 dB"),
        (compress, {"attack_ms": -1.0}, "compressor attack_ms: got -1.0 ms"),
        (compress, {"link": 1.5}, "compressor link: got 1.5"),
        (compress, {"detector": "vca"}, "compressor detector: got 'vca'"),
        (compress, {"key": np.zeros((1, 99))}, "compressor key: got shape (1, 99)"),
        (gate, {"range_db": 3.0}, "gate range_db: got 3.0 dB"),
        (gate, {"ratio": 0.5}, "gate ratio: got 0.5"),
        (gate, {"hold_ms": -1.0}, "gate hold_ms: got -1.0 ms"),
        (limit, {"lookahead_ms": -1.0}, "limiter lookahead_ms: got -1.0 ms"),
        (limit, {"ceiling_db": -math.inf}, "limiter ceiling_db: got -inf dB"),
    ],
)
def test_invalid_parameters_name_the_value(
    effect: Callable[..., np.ndarray], change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        effect(np.zeros((1, 100)), 48_000, **{**VALID[effect], **change})


@pytest.mark.parametrize(
    ("effect", "channels", "blocks", "message"),
    [
        (Compressor, 3, [], "compressor channels: got 3, expected 1 or 2"),
        (Gate, 2, [np.zeros((1, 8))], "gate block: got shape (1, 8), expected (2, samples)"),
        (Compressor, 1, [np.zeros(8)], "compressor block: got shape (8,), expected (1, samples)"),
    ],
)
def test_block_shapes_are_checked(
    effect: type[Compressor] | type[Gate], channels: int, blocks: list[np.ndarray], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        processor = effect(48_000, channels, **VALID[effect])
        for block in blocks:
            processor.process(block)


@pytest.mark.parametrize("effect", [Compressor, Gate])
def test_the_key_keeps_its_channel_count(effect: type[Compressor] | type[Gate]) -> None:
    """The detector state is per key channel, so a key that changes width is refused."""
    processor = effect(48_000, 2, **VALID[effect])
    processor.process(np.zeros((2, 8)), np.zeros((1, 8)))
    with pytest.raises(ValueError, match=re.escape("detector: got 2 channels, expected 1")):
        processor.process(np.zeros((2, 8)), np.zeros((2, 8)))

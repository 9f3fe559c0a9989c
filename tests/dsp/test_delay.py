"""Feedback delay: repeat times and levels in closed form, filtered repeats against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from render.dsp.delay import Echo, delay, delay_samples, delay_tail_samples
from tests.dsp.streaming import edges_from_sizes, process_in_blocks

SAMPLE_RATES = [44_100, 48_000, 96_000]


def _impulse(channels: int, n: int) -> np.ndarray:
    x = np.zeros((channels, n))
    x[:, 0] = 1.0
    return x


@pytest.mark.parametrize("feedback", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_impulse_repeats_every_d_samples(sample_rate: int, channels: int, feedback: float) -> None:
    # Repeat k at k * D with amplitude feedback**(k - 1) * mix, silence between; feedback 0 is
    # a single echo. 1e-12: products of a few doubles.
    d = round(12.34 * sample_rate / 1000.0)
    n = 8 * d + 5
    y = delay(_impulse(channels, n), sample_rate, time_ms=12.34, feedback=feedback, mix=0.3)
    expected = np.zeros(n)
    expected[0] = 0.7
    for k in range(1, 9):
        expected[k * d] = 0.3 * feedback ** (k - 1)
    for channel in y:
        np.testing.assert_allclose(channel, expected, rtol=0, atol=1e-12)


def test_ping_pong_alternates_the_repeats() -> None:
    # The mid (L + R) / 2 enters the left line and the feedback crosses over: repeat k sounds
    # left when k is odd and right when it is even. A left-only source bounces at half level.
    d, n = 100, 801
    for x, level in ((_impulse(2, n), 1.0), (np.vstack([_impulse(1, n), np.zeros((1, n))]), 0.5)):
        y = delay(x, 1000, time_ms=100.0, feedback=0.5, mix=1.0, ping_pong=True)
        expected = np.zeros((2, n))
        for k in range(1, 9):
            expected[(k + 1) % 2, k * d] = level * 0.5 ** (k - 1)
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


def test_ping_pong_changes_nothing_for_mono(rng: np.random.Generator) -> None:
    x = rng.standard_normal((1, 3000))
    settings = {"time_ms": 5.0, "feedback": 0.6, "mix": 0.5, "lowpass_hz": 4000.0}
    np.testing.assert_array_equal(
        delay(x, 48_000, ping_pong=True, **settings), delay(x, 48_000, **settings)
    )


@pytest.mark.parametrize("channels", [1, 2])
def test_filtered_loop_equals_superposed_filter_powers(
    rng: np.random.Generator, channels: int
) -> None:
    # LTI: the output is the dry part plus, for each k, the input filtered k times by the
    # high-pass and low-pass (built here with scipy.signal.butter), scaled and shifted by k*D.
    sample_rate, d, repeats = 48_000, 300, 12
    x = rng.standard_normal((channels, repeats * d))
    sections = np.vstack(
        [
            signal.butter(2, 300.0, "highpass", fs=sample_rate, output="sos"),
            signal.butter(2, 3000.0, "lowpass", fs=sample_rate, output="sos"),
        ]
    )
    expected = 0.5 * x
    for k in range(1, repeats):
        repeat = signal.sosfilt(np.tile(sections, (k, 1)), x, axis=-1)
        expected[:, k * d :] += 0.5 * 0.7 ** (k - 1) * repeat[:, : (repeats - k) * d]
    y = delay(
        x,
        sample_rate,
        time_ms=d * 1000.0 / sample_rate,
        feedback=0.7,
        mix=0.5,
        highpass_hz=300.0,
        lowpass_hz=3000.0,
    )
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("kind", "cutoff_hz"), [("lowpass", 2000.0), ("highpass", 500.0)])
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_kth_repeat_is_filtered_k_times(sample_rate: int, kind: str, cutoff_hz: float) -> None:
    # A 2nd-order Butterworth is exactly -3.0103 dB at its cutoff, so the k-th repeat of an
    # impulse measures -3.0103 * k dB there (its DTFT over the 0.1 s until the next repeat,
    # by which time the filter's ringing is below 1e-15). 0.001 dB is far below the 3 dB
    # that one filter pass too many or too few would show.
    d = sample_rate // 10
    y = delay(
        _impulse(1, 6 * d),
        sample_rate,
        time_ms=100.0,
        feedback=0.5,
        mix=1.0,
        **{f"{kind}_hz": cutoff_hz},
    )[0]
    rotation = np.exp(-2j * np.pi * cutoff_hz * np.arange(d) / sample_rate)
    for k in range(1, 6):
        response = np.sum(y[k * d : (k + 1) * d] * rotation) / 0.5 ** (k - 1)
        gain_db = 20 * math.log10(abs(response))
        assert gain_db == pytest.approx(-10 * math.log10(2.0) * k, abs=0.001)


@pytest.mark.parametrize("feedback", [0.1, 0.3, 0.5, 0.9, 0.99])
def test_tail_ends_at_the_first_repeat_90_db_down(feedback: float) -> None:
    # The repeat at the tail length is at or below -90 dB and the one before it is above,
    # so the tail is neither short nor padded with extra repeats.
    sample_rate, time_ms = 48_000, 1.0
    d = delay_samples(sample_rate, time_ms)
    tail = delay_tail_samples(sample_rate, time_ms, feedback)
    assert tail % d == 0
    y = delay(_impulse(1, tail + 1), sample_rate, time_ms=time_ms, feedback=feedback, mix=1.0)
    floor = 10 ** (-90 / 20)
    assert y[0, tail] <= floor * (1 + 1e-9)
    assert y[0, tail - d] > floor


def test_tail_without_feedback_is_one_delay() -> None:
    assert delay_tail_samples(48_000, 250.0, 0.0) == 12_000


@pytest.mark.parametrize(("time_ms", "samples"), [(10.01, 480), (10.02, 481), (0.001, 1)])
def test_delay_rounds_to_whole_samples(time_ms: float, samples: int) -> None:
    # 10.01 ms is 480.48 samples at 48 kHz, 10.02 ms 480.96; never less than one sample.
    assert delay_samples(48_000, time_ms) == samples


def test_mix_zero_returns_x_and_input_is_untouched(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 5000))
    before = x.copy()
    np.testing.assert_array_equal(delay(x, 48_000, time_ms=3.0, feedback=0.8, mix=0.0), x)
    delay(x, 48_000, time_ms=3.0, feedback=0.8, mix=0.5, ping_pong=True, highpass_hz=100.0)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("feedback", [-0.1, 1.0])
def test_feedback_outside_the_loop_gain_range_is_refused(feedback: float) -> None:
    with pytest.raises(ValueError, match=r"feedback: got .*expected 0 <= feedback < 1"):
        delay(np.zeros((1, 10)), 48_000, time_ms=1.0, feedback=feedback, mix=0.5)


@pytest.mark.parametrize("sizes", [[1, 7, 300], [37] * 100, [2_000, 0, 5]], ids=str)
@pytest.mark.parametrize("ping_pong", [False, True])
def test_blocks_equal_the_whole_signal(
    rng: np.random.Generator, sizes: list[int], ping_pong: bool
) -> None:
    """The ring buffer and loop filters carry over from block to block, so any partition
    (blocks shorter and longer than the 240-sample delay, empty ones) gives the same bits."""
    x = rng.standard_normal((2, 4_000))
    settings = {"time_ms": 5.0, "feedback": 0.7, "mix": 0.4, "ping_pong": ping_pong}
    filters = {"highpass_hz": 200.0, "lowpass_hz": 3_000.0}
    echo = Echo(48_000, 2, **settings, **filters)
    edges = edges_from_sizes(sizes * (4_000 // max(1, sum(sizes)) + 1), x.shape[1])
    np.testing.assert_array_equal(
        process_in_blocks(echo.process, x, edges), delay(x, 48_000, **settings, **filters)
    )

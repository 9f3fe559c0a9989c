"""Bus sums: every input rounded to the 2^-40 grid, so sums are exact, the same bits in any
order, and one input can be taken out again exactly; and the strip's pan and fader, which
make what is summed."""

from __future__ import annotations

import numpy as np
import pytest

from render.dsp.levels import (
    SUM_STEP,
    accumulate,
    accumulate_into,
    accumulate_pair_into,
    pan_and_fade,
)


@pytest.fixture
def inputs(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """16 stereo inputs from -120 dBFS to +10 dBFS, each with its send gain."""
    return [
        (rng.standard_normal((2, 5000)) * 10 ** rng.uniform(-6, 0.5), rng.uniform(0.01, 2.0))
        for _ in range(16)
    ]


def summed(inputs: list[tuple[np.ndarray, float]], order: np.ndarray) -> np.ndarray:
    bus = np.zeros((2, 5000))
    for index in order:
        accumulate(bus, *inputs[index])
    return bus


def test_the_sum_is_the_same_bits_in_any_order(
    inputs: list[tuple[np.ndarray, float]], rng: np.random.Generator
) -> None:
    forward = summed(inputs, np.arange(16))
    for _ in range(5):
        assert np.array_equal(summed(inputs, rng.permutation(16)), forward)
    # Plain float64 addition is not associative: the same inputs in another order differ.
    plain = [sum(x * g for x, g in inputs), sum(x * g for x, g in reversed(inputs))]
    assert not np.array_equal(*plain)


def test_an_input_is_taken_out_and_replaced_exactly(
    inputs: list[tuple[np.ndarray, float]],
) -> None:
    bus = summed(inputs, np.arange(16))
    x, gain = inputs[5]
    accumulate(bus, x, -gain)  # the old signal out
    accumulate(bus, x * 0.7, gain)  # the new one in
    inputs[5] = (x * 0.7, gain)
    assert np.array_equal(bus, summed(inputs, np.arange(16)))


def test_inputs_are_rounded_to_the_grid_and_no_further(
    inputs: list[tuple[np.ndarray, float]],
) -> None:
    bus = summed(inputs, np.arange(16))
    assert np.array_equal(bus / SUM_STEP, np.round(bus / SUM_STEP))  # on the grid
    exact = sum(x * g for x, g in inputs)
    assert np.max(np.abs(bus - exact)) <= 16 * SUM_STEP / 2  # half a step per input at most
    # Half a step rounds to even, as the adder does.
    halves = np.array([[0.5, 1.5, 2.5, -0.5, -1.5]]) * SUM_STEP
    rounded = np.zeros_like(halves)
    accumulate(rounded, halves, 1.0)
    assert rounded.tolist() == [[0.0, 2 * SUM_STEP, 2 * SUM_STEP, 0.0, -2 * SUM_STEP]]


def test_a_non_finite_input_is_not_hidden() -> None:
    bus = np.zeros((1, 3))
    accumulate(bus, np.array([[np.nan, np.inf, 1.0]]), 1.0)
    assert np.isnan(bus[0, 0]) and not np.isfinite(bus[0, 1]) and bus[0, 2] == 1.0


def test_a_block_of_a_whole_song_buffer_sums_as_a_contiguous_one(
    inputs: list[tuple[np.ndarray, float]],
) -> None:
    """The kernel runs row by row (a block cut from a whole-song buffer is strided): the same
    bits as summing into a contiguous block."""
    whole = np.zeros((2, 3 * 5000))
    block = np.zeros((2, 5000))
    for x, gain in inputs:
        accumulate(whole[:, 5000:10000], x, gain)
        accumulate(block, x, gain)
    assert np.array_equal(whole[:, 5000:10000], block)
    assert not whole[:, :5000].any() and not whole[:, 10000:].any()


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("pre", [False, True])
def test_pan_and_fade_are_numpys_products_to_the_bit(
    rng: np.random.Generator, channels: int, pre: bool
) -> None:
    """The strip's one-pass pan and fader: ``(x * pan) * fader``, and the panned signal
    before the fader where a pre-fader send needs it; a mono source feeds both sides."""
    x = rng.standard_normal((channels, 3001))
    left, right, fader = 0.7071067811865476, 0.3, 10 ** (-7.5 / 20)
    panned = np.stack([x[0] * left, x[-1] * right])
    before, after = pan_and_fade(x, left, right, fader, pre)
    assert np.array_equal(after, panned * fader)
    assert (before is None) != pre
    if pre:
        assert np.array_equal(before, panned)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_one_source_into_several_buses_sums_as_one_at_a_time(
    inputs: list[tuple[np.ndarray, float]], count: int
) -> None:
    """A track's block goes to its bus and its sends in one pass (three buses at a time):
    each bus gets the bits it would get from its own ``accumulate``."""
    source = inputs[0][0]
    gains = [gain for _, gain in inputs[1 : count + 1]]
    one_pass = [x.copy() for x, _ in inputs[1 : count + 1]]
    one_by_one = [x.copy() for x, _ in inputs[1 : count + 1]]
    accumulate_into(one_pass, source, gains)
    for bus, gain in zip(one_by_one, gains, strict=True):
        accumulate(bus, source, gain)
    for together, alone in zip(one_pass, one_by_one, strict=True):
        assert np.array_equal(together, alone)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_panned_and_faded_in_the_sum_as_in_pan_and_fade(
    inputs: list[tuple[np.ndarray, float]], rng: np.random.Generator, channels: int, count: int
) -> None:
    """A strip's pan and fader applied in the summing pass give each bus the bits that
    summing ``pan_and_fade``'s output gives: its pre-fader sends (fader 1) and the rest."""
    x = rng.standard_normal((channels, 5000))
    left, right, fader = 0.7071067811865476, 0.3, 10 ** (-7.5 / 20)
    panned, faded = pan_and_fade(x, left, right, fader, pre=True)
    gains = [gain for _, gain in inputs[1 : count + 1]]
    for signal, factor in ((panned, 1.0), (faded, fader)):
        fused = [bus.copy() for bus, _ in inputs[1 : count + 1]]
        two_pass = [bus.copy() for bus, _ in inputs[1 : count + 1]]
        accumulate_into(fused, x, gains, (left, right), factor)
        accumulate_into(two_pass, signal, gains)
        for one, other in zip(fused, two_pass, strict=True):
            assert np.array_equal(one, other)


@pytest.mark.parametrize("channels", [(1, 1), (2, 2), (1, 2)])
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_two_sources_in_one_pass_sum_as_one_after_the_other(
    inputs: list[tuple[np.ndarray, float]],
    rng: np.random.Generator,
    channels: tuple[int, int],
    count: int,
) -> None:
    """Two tracks' blocks (mono or stereo), each panned and faded, summed into the same buses
    in one pass: each bus gets the bits of one ``accumulate_into`` after the other."""
    sources = (rng.standard_normal((channels[0], 5000)), rng.standard_normal((channels[1], 5000)))
    gains = ([gain for _, gain in inputs[:count]], [2.0 - gain for _, gain in inputs[:count]])
    pans = ((0.7071067811865476, 0.3), (0.2, 0.9))
    faders = (10 ** (-7.5 / 20), 1.7)
    one_pass = [bus.copy() for bus, _ in inputs[1 : count + 1]]
    in_turn = [bus.copy() for bus, _ in inputs[1 : count + 1]]
    accumulate_pair_into(one_pass, sources, gains, pans, faders)
    for source, source_gains, pan, fader in zip(sources, gains, pans, faders, strict=True):
        accumulate_into(in_turn, source, source_gains, pan, fader)
    for together, alone in zip(one_pass, in_turn, strict=True):
        assert np.array_equal(together, alone)
    assert not np.array_equal(one_pass[0], inputs[1][0])  # both were summed

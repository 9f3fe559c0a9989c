"""Bus sums: every input rounded to the 2^-40 grid, so sums are exact, the same bits in any
order, and one input can be taken out again exactly."""

from __future__ import annotations

import numpy as np
import pytest

from render.dsp.levels import SUM_STEP, accumulate


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

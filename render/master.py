"""Mastering: the chain on the mix, and the gain into its limiter that lands the loudness target.

A fixed gain cannot hit a loudness target once a limiter is involved: the limiter takes back
part of every dB pushed into it. So the gain is found the way an engineer finds it, by
trying: gain into the final limiter, run the rest of the chain, measure the integrated
loudness (ITU-R BS.1770-4), correct the gain, until the master is within ``TOLERANCE_LU`` of
the target. The chain up to the limiter does not depend on that gain and runs once; the
limiter's peak detector scales with its input and runs once too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from render.chain import prepare_chain, run_chain
from render.deliver import DITHER_HEADROOM_DB, Ceiling
from render.dsp import limiter
from render.dsp.levels import db_to_gain
from render.measure import integrated_loudness_lufs
from render.samples import WithSamples
from render.session.model import Effect, Limiter, Session

TOLERANCE_LU = 0.02
"""How close the search lands: a fifth of the ±0.1 LU the master must meet, so that
sample-rate conversion and dither of each deliverable still leave it on target."""
MAX_STEPS = 12
"""Gain trials before the search gives up: the secant method needs 3-5 on real material."""
MAX_GAIN_DB = 60.0
"""The most gain the search will push into the limiter: more is no longer mastering."""
_FLAT_SLOPE = 0.01
"""LU of loudness per dB of gain below which more gain no longer makes the master louder: the
limiter has flattened it to a square wave, so the target cannot be reached."""


@dataclass(frozen=True)
class Master(WithSamples):
    """The mastered audio (``audio``) and how it was made; figures for the report."""

    ceiling_dbtp: float | None  # the true peak no deliverable may exceed (None: unchecked)
    gain_db: float  # gain into the final limiter found by the loudness search
    limiting_db: float  # the final limiter's deepest gain reduction
    loudness_lufs: float  # integrated loudness of ``audio``
    limiter: Limiter | None  # the final limiter's settings, to re-limit a deliverable
    notes: tuple[str, ...]

    @property
    def ceiling(self) -> Ceiling | None:
        """What every file of this master must hold (None: no true-peak check)."""
        if self.ceiling_dbtp is None:
            return None
        return Ceiling(self.ceiling_dbtp, self.limiter)


def master(mix: np.ndarray, session: Session) -> Master:
    """Run ``session``'s mastering chain over ``mix``; with a loudness target, search the
    gain into the chain's last limiter that lands it (a default true-peak limiter ends a
    chain that has none, and the notes say so)."""
    assert session.mastering is not None
    plan = plan_master(session)
    before = limiter_input(plan, mix, session)
    return master_at(plan, before, session, session.mastering.target.integrated_lufs)


@dataclass(frozen=True)
class MasterPlan:
    """The mastering chain as it will run: a default limiter appended where a loudness
    target needs one, the final limiter's ceiling set from the target's true peak."""

    chain: tuple[Effect, ...]
    last: int | None  # the index of the final limiter
    ceiling_dbtp: float | None  # the true peak no deliverable may exceed (None: unchecked)
    notes: tuple[str, ...]


def plan_master(session: Session) -> MasterPlan:
    """The chain of ``session``'s mastering section as ``master`` runs it."""
    assert session.mastering is not None
    target = session.mastering.target
    chain: list[Effect] = list(session.mastering.chain)
    notes: list[str] = []
    ceiling_dbtp = target.ceiling_dbtp
    if target.integrated_lufs is not None and not any(isinstance(e, Limiter) for e in chain):
        chain.append(Limiter(ceiling_dbtp=-1.0 if ceiling_dbtp is None else ceiling_dbtp))
        notes.append(
            f"mastering.chain has no limiter, so a true-peak limiter at "
            f"{chain[-1].ceiling_dbtp:g} dBTP ends it: a loudness target cannot be met "
            "safely without one"
        )
    last = max((i for i, e in enumerate(chain) if isinstance(e, Limiter)), default=None)
    if last is None:
        return MasterPlan(tuple(chain), None, ceiling_dbtp, tuple(notes))
    final: Limiter = chain[last]  # type: ignore[assignment]
    if ceiling_dbtp is not None and final.ceiling_dbtp > ceiling_dbtp:
        notes.append(
            f"mastering.chain[{last}].limiter: ceiling lowered from {final.ceiling_dbtp:g} "
            f"to the target's true peak, {ceiling_dbtp:g} dBTP"
        )
    elif ceiling_dbtp is None and final.true_peak:
        ceiling_dbtp = final.ceiling_dbtp
    if ceiling_dbtp is not None:
        chain[last] = replace(final, ceiling_dbtp=ceiling_dbtp - DITHER_HEADROOM_DB)
    return MasterPlan(tuple(chain), last, ceiling_dbtp, tuple(notes))


def limiter_input(plan: MasterPlan, mix: np.ndarray, session: Session) -> np.ndarray:
    """The chain up to its final limiter (all of it when it has none) over ``mix``: what
    the gain search pushes into the limiter. It does not depend on that gain, so an album
    computes it once per song and searches it at two loudness goals."""
    end = len(plan.chain) if plan.last is None else plan.last
    return run_chain(prepare_chain(plan.chain, "mastering.chain", session)[:end], mix, {})


def master_at(
    plan: MasterPlan, before: np.ndarray, session: Session, goal_lufs: float | None
) -> Master:
    """The master of ``limiter_input``'s output ``before``: with ``goal_lufs``, the gain into
    the final limiter that lands it (within ``TOLERANCE_LU``), else no added gain."""
    assert session.mastering is not None
    rate = session.sample_rate
    notes = list(plan.notes)
    ceiling_dbtp = plan.ceiling_dbtp
    if plan.last is None:
        loudness = integrated_loudness_lufs(before, rate)
        return Master(before, ceiling_dbtp, 0.0, 0.0, loudness, None, tuple(notes))
    final: Limiter = plan.chain[plan.last]  # type: ignore[assignment]
    after = prepare_chain(plan.chain, "mastering.chain", session)[plan.last + 1 :]
    stage = _LimiterStage(before, final, rate)

    def loudness_at(gain_db: float) -> float:
        if after:
            return integrated_loudness_lufs(run_chain(after, stage.limit(gain_db), {}), rate)
        # The limiter ends the chain: measure its input times its gain, form neither.
        return integrated_loudness_lufs(before, rate, stage.gain(gain_db))

    gain_db, loudness = 0.0, None
    if goal_lufs is not None and math.isfinite(start := integrated_loudness_lufs(before, rate)):
        # The last trial is the master: its loudness is the master's (same multiplications).
        gain_db, loudness = _search_gain(loudness_at, goal_lufs, goal_lufs - start, notes)
    elif goal_lufs is not None:
        notes.append("the mix is silent: no gain can bring it to the loudness target")
    audio = run_chain(after, stage.limit(gain_db), {})
    if loudness is None:
        loudness = integrated_loudness_lufs(audio, rate)
    limiting_db = stage.limiting_db(gain_db)
    max_limiting_db = session.mastering.target.max_limiting_db
    if limiting_db > max_limiting_db:
        notes.append(
            f"the limiter takes {limiting_db:.1f} dB off the loudest peak, more than "
            f"max_limiting ({max_limiting_db:g} dB): the target may be too loud for "
            "this material"
        )
    return Master(audio, ceiling_dbtp, gain_db, limiting_db, loudness, final, tuple(notes))


class _LimiterStage:
    """The final limiter over a fixed input at any gain, its peak detection done once."""

    def __init__(self, x: np.ndarray, settings: Limiter, sample_rate: int) -> None:
        self.x = x
        self.settings = settings
        self.sample_rate = sample_rate
        self.latency = limiter.limiter_latency_samples(sample_rate, settings.lookahead_ms)
        # Beyond the end the input is silent: the last samples look ahead at no peaks.
        self.peaks = np.pad(limiter.limiter_peaks(x, settings.true_peak), (0, self.latency))
        self.loudest = float(np.max(self.peaks, initial=0.0))
        self._last: tuple[float, np.ndarray] | None = None  # the latest gain curve

    def gain(self, gain_db: float) -> np.ndarray:
        """Per input sample, the input gain ``gain_db`` times the limiter's gain (as
        ``limiter.limit`` computes it, with the peaks scaled through the ceiling), aligned
        to time zero. The latest curve is kept: the master is made at the last gain tried."""
        if self._last is not None and self._last[0] == gain_db:
            return self._last[1]
        gain = limiter.limiter_gain(
            self.peaks,
            self.sample_rate,
            ceiling_db=self.settings.ceiling_dbtp - gain_db,
            release_ms=self.settings.release_ms,
            lookahead_ms=self.settings.lookahead_ms,
        )[self.latency :]
        gain *= db_to_gain(gain_db)
        self._last = (gain_db, gain)
        return gain

    def limit(self, gain_db: float) -> np.ndarray:
        """The limiter's output for its input raised by ``gain_db``."""
        return self.x * self.gain(gain_db)

    def limiting_db(self, gain_db: float) -> float:
        """The deepest gain reduction at ``gain_db``: the loudest peak brought to the
        ceiling (the limiter's minimum gain is exactly ``ceiling / loudest peak``)."""
        if self.loudest <= 0.0:
            return 0.0
        over = 20.0 * math.log10(self.loudest) + gain_db - self.settings.ceiling_dbtp
        return max(over, 0.0)


def _search_gain(
    loudness_at: Callable[[float], float], goal_lufs: float, first_db: float, notes: list[str]
) -> tuple[float, float]:
    """Secant search of the gain that lands ``loudness_at(gain)`` on ``goal_lufs``: the
    gain (always the last one tried) and its loudness.

    Loudness rises monotonically with gain, one LU per dB until the limiter engages and
    less after, so the slope is estimated from the last two trials (bounded to (0, 1])."""
    gain_db = min(first_db, MAX_GAIN_DB)
    loudness = loudness_at(gain_db)
    slope = 1.0
    for _ in range(MAX_STEPS):
        error = loudness - goal_lufs
        if abs(error) <= TOLERANCE_LU:
            return gain_db, loudness
        if slope < _FLAT_SLOPE or (error < 0 and gain_db >= MAX_GAIN_DB):
            break
        next_db = min(gain_db - error / slope, MAX_GAIN_DB)
        next_loudness = loudness_at(next_db)
        if next_db != gain_db:
            slope = min(max((next_loudness - loudness) / (next_db - gain_db), 0.0), 1.0)
        gain_db, loudness = next_db, next_loudness
    else:
        notes.append(
            f"the loudness search stopped after {MAX_STEPS + 1} trials at {loudness:.2f} LUFS, "
            f"{loudness - goal_lufs:+.2f} LU from the target"
        )
        return gain_db, loudness
    notes.append(
        f"the master reaches only {loudness:.1f} LUFS, not the target {goal_lufs:g} LUFS: "
        "more gain into the limiter no longer makes it louder; lower the target"
    )
    return gain_db, loudness

"""The QC pass: every rendered file's figures checked against the session's targets and
sensible defaults, into a report object (data only; ``render.report`` words it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from render.dsp.levels import gain_to_db
from render.session.model import Target

if TYPE_CHECKING:  # annotations only: the report needs no analysis code to be read or shown
    from render.analysis import Analysis
    from render.translation import DeviceFigures

Status = Literal["pass", "warn", "fail"]
STATUS_ORDER: tuple[Status, ...] = ("pass", "warn", "fail")


def worst(statuses: Iterable[Status]) -> Status:
    """The worst of ``statuses`` ("pass" when there are none)."""
    return max(statuses, key=STATUS_ORDER.index, default="pass")


@dataclass(frozen=True)
class Check:
    """One verdict: what was measured against what was expected, and where it went wrong."""

    name: str  # "loudness", "true_peak", "clipping", "dc_offset", "phase", "limiting", ...
    file: str  # the file name the check is about
    status: Status
    measured: str  # "-14.02 LUFS"
    expected: str  # "-14 LUFS ± 0.1 LU"
    detail: str  # where and why, e.g. "clipped at 12.00 s (L, 480 samples)"; "" when it passes


@dataclass(frozen=True)
class FileReport:
    """One rendered file: its figures and, for a master, how it translates to devices."""

    role: Literal["mix", "master"]
    path: Path
    description: str  # "WAV, 24-bit, 48000 Hz, TPDF dither"
    analysis: Analysis
    devices: tuple[DeviceFigures, ...]  # masters only
    corrections: tuple[str, ...]  # what the renderer did to the file to meet its ceiling


@dataclass(frozen=True)
class Report:
    """The QC report of one session's render."""

    title: str
    session: Path
    target_lufs: float | None
    ceiling_dbtp: float | None
    lra_window_lu: tuple[float | None, float | None] | None
    limiting_db: float | None  # the master limiter's deepest gain reduction
    files: tuple[FileReport, ...]
    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def status(self) -> Status:
        """The worst verdict of all checks ("pass" when there are none)."""
        return worst(check.status for check in self.checks)


# --- the checks ------------------------------------------------------------------------------

LOUDNESS_TOLERANCE_LU = 0.1
"""A master within this of its target passes: the tolerance the mastering stage guarantees
for lossless files, and EBU R 128's own (±0.1 LU for the meter, s. EBU Tech 3341)."""
LOUDNESS_WARN_LU = 1.0
"""Beyond this a master is off target (a lossy preview's encoder moves loudness by a few
tenths; a target the limiter cannot reach misses by more)."""
DC_WARN = 10 ** (-60 / 20)
"""A DC offset above -60 dBFS (0.1 % of full scale) wastes headroom and thumps at edits."""
DC_FAIL = 10 ** (-40 / 20)
"""Above -40 dBFS (1 %) it is a fault of the chain or the recording."""
MIN_CORRELATION_WARN = -0.3
"""A 400 ms window this anti-correlated is heard as phasey, and cancels when folded to mono."""
MONO_FOLD_WARN_LU = -6.0
"""A mono fold this much quieter loses instruments on a phone speaker or a mono PA."""
LEADING_SILENCE_WARN_S = 0.5
"""More silence than this before the music is a dead start on a streaming service."""
TRAILING_SILENCE_WARN_S = 5.0
"""More than this below -60 dBFS after the music is dead air (a reverb tail fading under
-60 dBFS takes a few seconds, so less is normal)."""


def assess(
    title: str,
    session: Path,
    target: Target | None,
    limiting_db: float | None,
    files: Sequence[FileReport],
    notes: Sequence[str] = (),
) -> Report:
    """Check every file against ``target`` (the session's mastering target, resolved) and
    the defaults above; a report whose status is the worst verdict."""
    goal = target.integrated_lufs if target else None
    ceiling = target.ceiling_dbtp if target else None
    window = (target.lra.min_lu, target.lra.max_lu) if target and target.lra else None
    checks: list[Check] = []
    for report in files:
        name, figures = report.path.name, report.analysis
        if report.role == "master":
            if goal is not None:
                checks.append(_loudness(name, figures, goal))
            if ceiling is not None:
                checks.append(_true_peak(name, figures, ceiling))
            if window is not None:
                checks.append(_loudness_range(name, figures, window))
        checks += [
            _clipping(name, figures),
            _dc_offset(name, figures),
            _phase(name, figures),
            _silence(name, figures),
        ]
    if limiting_db is not None and target is not None:
        checks.append(_limiting(limiting_db, target.max_limiting_db))
    return Report(
        title=title,
        session=session,
        target_lufs=goal,
        ceiling_dbtp=ceiling,
        lra_window_lu=window,
        limiting_db=limiting_db,
        files=tuple(files),
        checks=tuple(checks),
        notes=tuple(notes),
    )


def _loudness(name: str, figures: Analysis, goal_lufs: float) -> Check:
    measured = figures.loudness.integrated_lufs
    off = abs(measured - goal_lufs)
    status: Status = (
        "pass" if off <= LOUDNESS_TOLERANCE_LU else "warn" if off <= LOUDNESS_WARN_LU else "fail"
    )
    detail = "" if status == "pass" else f"{measured - goal_lufs:+.2f} LU from the target"
    return Check(
        "loudness",
        name,
        status,
        f"{measured:.2f} LUFS",
        f"{goal_lufs:g} LUFS ± {LOUDNESS_TOLERANCE_LU:g} LU",
        detail,
    )


def _true_peak(name: str, figures: Analysis, ceiling_dbtp: float) -> Check:
    peak = max(figures.loudness.true_peak_dbtp)
    overs = ", ".join(
        f"{over.start_s:.2f}-{over.end_s:.2f} s ({_CHANNELS[over.channel]}, "
        f"{over.true_peak_dbtp:+.2f} dBTP)"
        for over in figures.true_peak_overs[:_LISTED]
    )
    more = len(figures.true_peak_overs) - _LISTED
    detail = f"over at {overs}" + (f" and {more} more" if more > 0 else "") if overs else ""
    status: Status = "pass" if peak <= ceiling_dbtp else "fail"
    return Check(
        "true_peak", name, status, f"{peak:+.2f} dBTP", f"<= {ceiling_dbtp:g} dBTP", detail
    )


def _loudness_range(
    name: str, figures: Analysis, window: tuple[float | None, float | None]
) -> Check:
    lra = figures.loudness.loudness_range_lu
    low, high = window
    inside = (low is None or lra >= low) and (high is None or lra <= high)
    expected = " and ".join(
        text
        for text in (
            f">= {low:g} LU" if low is not None else "",
            f"<= {high:g} LU" if high is not None else "",
        )
        if text
    )
    return Check("lra", name, "pass" if inside else "fail", f"{lra:.1f} LU", expected, "")


def _clipping(name: str, figures: Analysis) -> Check:
    runs = figures.clipped_runs
    listed = ", ".join(
        f"{run.start_s:.2f} s ({_CHANNELS[run.channel]}, {run.samples} samples)"
        for run in runs[:_LISTED]
    )
    more = len(runs) - _LISTED
    detail = f"clipped at {listed}" + (f" and {more} more" if more > 0 else "") if runs else ""
    return Check(
        "clipping",
        name,
        "fail" if runs else "pass",
        f"{len(runs)} clipped run{'s' if len(runs) != 1 else ''}",
        "none (3 or more samples in a row at full scale)",
        detail,
    )


def _dc_offset(name: str, figures: Analysis) -> Check:
    worst = max(abs(offset) for offset in figures.dc_offset)
    status: Status = "fail" if worst > DC_FAIL else "warn" if worst > DC_WARN else "pass"
    return Check(
        "dc_offset",
        name,
        status,
        f"{gain_to_db(worst):.1f} dBFS",
        f"below {gain_to_db(DC_WARN):g} dBFS",
        "" if status == "pass" else "high-pass the mix (or the stem) to remove it",
    )


def _phase(name: str, figures: Analysis) -> Check:
    correlation, worst = figures.correlation, figures.min_correlation_400ms
    drop = figures.mono_fold_drop_lu
    if correlation < 0.0:
        status: Status = "fail"
        detail = "the channels are out of phase: a polarity-inverted channel?"
    elif worst < MIN_CORRELATION_WARN or drop < MONO_FOLD_WARN_LU:
        status, detail = "warn", f"a 400 ms window reaches {worst:.2f}; mono fold {drop:+.1f} LU"
    else:
        status, detail = "pass", ""
    return Check(
        "phase",
        name,
        status,
        f"correlation {correlation:.2f} (min {worst:.2f}), mono fold {drop:+.1f} LU",
        f"correlation >= 0, 400 ms windows >= {MIN_CORRELATION_WARN:g}, "
        f"mono fold >= {MONO_FOLD_WARN_LU:g} LU",
        detail,
    )


def _silence(name: str, figures: Analysis) -> Check:
    lead, trail = figures.leading_silence_s, figures.trailing_silence_s
    problems = [
        f"{seconds:.2f} s of {where} silence"
        for seconds, where, limit in (
            (lead, "leading", LEADING_SILENCE_WARN_S),
            (trail, "trailing", TRAILING_SILENCE_WARN_S),
        )
        if seconds > limit
    ]
    if lead >= figures.duration_s:
        status: Status = "fail"
        problems = ["the file is silent"]
    else:
        status = "warn" if problems else "pass"
    return Check(
        "silence",
        name,
        status,
        f"{lead:.2f} s leading, {trail:.2f} s trailing",
        f"<= {LEADING_SILENCE_WARN_S:g} s leading, <= {TRAILING_SILENCE_WARN_S:g} s trailing",
        "; ".join(problems),
    )


def _limiting(limiting_db: float, max_limiting_db: float) -> Check:
    status: Status = "warn" if limiting_db > max_limiting_db else "pass"
    detail = "" if status == "pass" else "the target may be too loud for this material"
    return Check(
        "limiting",
        "master",
        status,
        f"{limiting_db:.1f} dB peak gain reduction",
        f"<= {max_limiting_db:g} dB (max_limiting)",
        detail,
    )


_CHANNELS = ("L", "R")
_LISTED = 5
"""Problems listed by time in a check's detail; the rest are counted."""

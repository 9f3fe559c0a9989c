"""Engineer's units: the one place where ``-3 dB``, ``2.5 kHz``, ``12 ms``, ``L30`` are parsed.

The schema tags every value that carries a unit with ``x-quantity: <kind>``; a bare number
means that kind's unit. ``parse(kind, value)`` returns a float in the kind's unit (or a
``NoteValue`` for note-valued delay times) and raises ``UnitError`` with the expected form.
Unit names are matched case-insensitively (``db``, ``dB`` and ``DB`` all mean decibels).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_QUANTITY_RE = re.compile(rf"^\s*(?P<number>{_NUMBER}|[+-]?inf)\s*(?P<unit>[^\d\s].*?)?\s*$")
_PAN_RE = re.compile(rf"^\s*(?P<side>[LRC])\s*(?P<amount>{_NUMBER})?\s*$", re.IGNORECASE)
_RATIO_RE = re.compile(rf"^\s*(?P<ratio>{_NUMBER})\s*:\s*1\s*$")
_NOTE_RE = re.compile(r"^\s*1\s*/\s*(?P<denominator>1|2|4|8|16|32|64)(?P<modifier>[.tT]?)\s*$")

SLOPES_DB_PER_OCT = (6, 12, 18, 24, 36, 48)


class UnitError(ValueError):
    """A value that is not written in the form its kind expects."""


@dataclass(frozen=True)
class NoteValue:
    """A note length (``1/8.`` dotted eighth, ``1/4T`` quarter triplet) for tempo-synced time."""

    whole_notes: Fraction
    text: str

    def duration_ms(self, tempo_bpm: float) -> float:
        """Length at ``tempo_bpm`` quarter notes per minute."""
        return float(self.whole_notes) * 4 * 60_000.0 / tempo_bpm


@dataclass(frozen=True)
class Quantity:
    """A kind of value: how to parse it and how to name it in messages."""

    parse: Callable[[object], float | NoteValue]
    expected: str  # what a valid value looks like, for "expected ..., got ..."
    noun: str  # short name for range messages: "expected a level <= 0 dB"
    unit: str  # the unit a bare number means, as printed in range messages


def _number_with_unit(value: object, units: dict[str, float], *, allow_inf: bool = False) -> float:
    """Parse ``<number> [unit]``, scaling by the unit's factor; a bare number is taken as is."""
    if isinstance(value, bool):
        raise UnitError
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (match := _QUANTITY_RE.match(value)):
        unit = (match["unit"] or "").strip().lower()
        if unit and unit not in units:
            raise UnitError
        number = float(match["number"]) * units.get(unit, 1.0)
    else:
        raise UnitError
    if math.isnan(number) or (math.isinf(number) and not (allow_inf and number < 0)):
        raise UnitError
    return number


def _scaled(units: dict[str, float], *, allow_inf: bool = False) -> Callable[[object], float]:
    return lambda value: _number_with_unit(value, units, allow_inf=allow_inf)


def parse_pan(value: object) -> float:
    """``L30`` → -0.3, ``C`` → 0, ``R100`` → 1; a bare number must lie in [-1, 1]."""
    if isinstance(value, bool):
        raise UnitError
    if isinstance(value, int | float):
        position = float(value)
    elif isinstance(value, str) and (match := _PAN_RE.match(value)):
        side = match["side"].upper()
        if side == "C":
            if match["amount"] is not None:
                raise UnitError
            return 0.0
        amount = 100.0 if match["amount"] is None else float(match["amount"])
        if not 0.0 <= amount <= 100.0:
            raise UnitError
        position = amount / 100.0 * (-1.0 if side == "L" else 1.0)
    else:
        raise UnitError
    if not -1.0 <= position <= 1.0:
        raise UnitError
    return position


def parse_fraction(value: object) -> float:
    """``30%`` → 0.3; a bare number is already a fraction (0.3). Never negative."""
    fraction = _number_with_unit(value, {"%": 0.01})
    if fraction < 0.0:
        raise UnitError
    return fraction


def parse_ratio(value: object) -> float:
    """``4`` or ``"4:1"`` → 4.0."""
    if isinstance(value, str) and (match := _RATIO_RE.match(value)):
        return float(match["ratio"])
    return _number_with_unit(value, {})


def parse_slope(value: object) -> float:
    """Filter slope in dB/octave; only the Butterworth orders 1-4, 6 and 8 exist."""
    slope = _number_with_unit(value, {"db/oct": 1.0, "db/octave": 1.0})
    if slope not in SLOPES_DB_PER_OCT:
        raise UnitError
    return slope


def parse_delay_time(value: object) -> float | NoteValue:
    """``350 ms`` → 350.0 (ms); ``1/8.`` → a dotted eighth, resolved later at the tempo."""
    if isinstance(value, str) and (match := _NOTE_RE.match(value)):
        whole_notes = Fraction(1, int(match["denominator"]))
        modifier = match["modifier"].lower()
        if modifier == ".":
            whole_notes *= Fraction(3, 2)
        elif modifier == "t":
            whole_notes *= Fraction(2, 3)
        return NoteValue(whole_notes, value.strip())
    return _number_with_unit(value, _TIME_MS_UNITS)


_TIME_S_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "min": 60.0}
_TIME_MS_UNITS = {unit: factor * 1e3 for unit, factor in _TIME_S_UNITS.items()}

QUANTITIES: dict[str, Quantity] = {
    "level_db": Quantity(
        _scaled({"db": 1.0, "dbfs": 1.0}, allow_inf=True),
        'a level in dB, like "-3 dB" or "-inf dB"',
        "a level",
        "dB",
    ),
    "frequency_hz": Quantity(
        _scaled({"hz": 1.0, "khz": 1e3, "k": 1e3}),
        'a frequency, like "120 Hz" or "2.5 kHz"',
        "a frequency",
        "Hz",
    ),
    "time_s": Quantity(
        _scaled(_TIME_S_UNITS),
        'a time, like "1.5 s" or "250 ms" (a bare number is seconds)',
        "a time",
        "s",
    ),
    "time_ms": Quantity(
        _scaled(_TIME_MS_UNITS),
        'a time, like "10 ms" or "0.2 s" (a bare number is milliseconds)',
        "a time",
        "ms",
    ),
    "loudness_lufs": Quantity(
        _scaled({"lufs": 1.0, "lkfs": 1.0}), 'a loudness, like "-14 LUFS"', "a loudness", "LUFS"
    ),
    "true_peak_dbtp": Quantity(
        _scaled({"dbtp": 1.0, "db": 1.0, "dbfs": 1.0}),
        'a true-peak level, like "-1 dBTP"',
        "a true-peak level",
        "dBTP",
    ),
    "loudness_range_lu": Quantity(
        _scaled({"lu": 1.0}), 'a loudness range, like "7 LU"', "a loudness range", "LU"
    ),
    "pan": Quantity(
        parse_pan, 'a pan position, like "L30", "C", "R100" or a number in [-1, 1]', "a pan", ""
    ),
    "fraction": Quantity(
        parse_fraction, 'a percentage like "30%" or a fraction like 0.3', "a fraction", ""
    ),
    "ratio": Quantity(parse_ratio, 'a ratio, like 4 or "4:1"', "a ratio", ""),
    "slope_db_per_oct": Quantity(
        parse_slope,
        'a slope of 6, 12, 18, 24, 36 or 48 dB/oct, like "24 dB/oct"',
        "a slope",
        "dB/oct",
    ),
    "delay_time": Quantity(
        parse_delay_time,
        'a delay time, like "350 ms", or a note value like "1/8", "1/8." or "1/4T"',
        "a delay time",
        "ms",
    ),
    "tempo_bpm": Quantity(
        _scaled({"bpm": 1.0}), 'a tempo, like 112 or "112 BPM"', "a tempo", "BPM"
    ),
}


def parse(kind: str, value: object) -> float | NoteValue:
    """Parse ``value`` as quantity ``kind`` (a key of ``QUANTITIES``) into the kind's unit."""
    try:
        return QUANTITIES[kind].parse(value)
    except UnitError:
        raise UnitError(QUANTITIES[kind].expected) from None


def number(kind: str, value: object) -> float:
    """Like ``parse`` for kinds that are always plain numbers (everything but delay times)."""
    result = parse(kind, value)
    assert isinstance(result, float), kind
    return result

"""Engineer's units: every spelling the schema documents parses to the exact number meant.

These values end up as DSP parameters, so a parser that is "close" (``30%`` → 0.30000000000000004,
``L30`` → -0.29999) would still change rendered audio; valid cases therefore compare exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest

from render.session import units
from render.session.units import QUANTITIES, NoteValue, UnitError

VALID: list[tuple[str, object, float]] = [
    ("level_db", "-3 dB", -3.0),
    ("level_db", "+2.5 dB", 2.5),
    ("level_db", "-inf dB", -math.inf),
    ("level_db", "-6 dBFS", -6.0),
    ("level_db", -3, -3.0),
    ("level_db", "-3 db", -3.0),  # unit names are case-insensitive
    ("level_db", "-3dB", -3.0),
    ("level_db", " -3 DB ", -3.0),
    ("frequency_hz", "2.5 kHz", 2500.0),
    ("frequency_hz", "120 Hz", 120.0),
    ("frequency_hz", "1.2k", 1200.0),
    ("frequency_hz", 440, 440.0),
    ("time_s", "250 ms", 0.25),
    ("time_s", "1.5 s", 1.5),
    ("time_s", "2 min", 120.0),
    ("time_s", 2, 2.0),
    ("time_ms", "0.2 s", 200.0),
    ("time_ms", "10 ms", 10.0),
    ("time_ms", 10, 10.0),
    ("pan", "L30", -0.3),
    ("pan", "C", 0.0),
    ("pan", "R100", 1.0),
    ("pan", "L", -1.0),
    ("pan", "r25", 0.25),
    ("pan", 0.5, 0.5),
    ("pan", -1, -1.0),
    ("fraction", "30%", 0.3),
    ("fraction", "110%", 1.1),
    ("fraction", 0.3, 0.3),
    ("fraction", 0, 0.0),
    ("ratio", "4:1", 4.0),
    ("ratio", "1.5 : 1", 1.5),
    ("ratio", 4, 4.0),
    ("slope_db_per_oct", "24 dB/oct", 24.0),
    ("slope_db_per_oct", "12 dB/octave", 12.0),
    ("slope_db_per_oct", 48, 48.0),
    ("tempo_bpm", "112 BPM", 112.0),
    ("tempo_bpm", 128.5, 128.5),
    ("loudness_lufs", "-14 LUFS", -14.0),
    ("loudness_lufs", "-24 LKFS", -24.0),
    ("loudness_lufs", -16, -16.0),
    ("true_peak_dbtp", "-1 dBTP", -1.0),
    ("true_peak_dbtp", "-1 dB", -1.0),
    ("true_peak_dbtp", -0.1, -0.1),
    ("loudness_range_lu", "7 LU", 7.0),
    ("loudness_range_lu", 12, 12.0),
    ("delay_time", "350 ms", 350.0),
    ("delay_time", "0.35 s", 350.0),
    ("delay_time", 250, 250.0),
]

INVALID: list[tuple[str, object]] = [
    ("level_db", "-3 dbb"),
    ("level_db", "3 dB dB"),
    ("level_db", "+inf dB"),  # only silence is infinite; +inf dB is no level
    ("level_db", "nan dB"),
    ("level_db", math.nan),
    ("level_db", True),  # a bool is not a number, though Python says it is an int
    ("level_db", None),
    ("level_db", []),
    ("frequency_hz", "12 ms"),
    ("time_s", "12 Hz"),
    ("time_ms", False),
    ("pan", "L130"),
    ("pan", "C20"),
    ("pan", "X4"),
    ("pan", "1.5"),  # a bare number must be a number, not a string
    ("pan", 1.5),
    ("pan", True),
    ("fraction", "-10%"),
    ("fraction", -0.1),
    ("fraction", None),
    ("ratio", "fast"),
    ("ratio", "4:2"),
    ("ratio", []),
    ("slope_db_per_oct", "7 dB/oct"),  # not one of the Butterworth orders
    ("slope_db_per_oct", 30),
    ("tempo_bpm", "fast"),
    ("loudness_lufs", "-14 dB"),
    ("true_peak_dbtp", "-1 LUFS"),
    ("loudness_range_lu", "7 dB"),
    ("delay_time", "1/3"),
    ("delay_time", "1/4x"),
    ("delay_time", True),
]

NOTES: list[tuple[str, float, Fraction, Any]] = [
    ("1/4", 120, Fraction(1, 4), 500.0),
    ("1/8.", 120, Fraction(3, 16), 375.0),
    ("1/16", 120, Fraction(1, 16), 125.0),
    ("1/1", 60, Fraction(1), 4000.0),
    # Triplets (and odd tempos) divide by 3: 1/6 of a whole note has no exact binary float,
    # and Fraction -> float -> ms rounds once per step, so the result may differ from the
    # nearest float to 1000/3 in the last bit or two. rel=1e-12 allows that and nothing more:
    # a real mistake (a wrong modifier or tempo formula) is off by a third or more.
    (" 1 / 2 ", 90, Fraction(1, 2), pytest.approx(4000.0 / 3.0, rel=1e-12)),
    ("1/4T", 120, Fraction(1, 6), pytest.approx(1000.0 / 3.0, rel=1e-12)),
    ("1/8t", 120, Fraction(1, 12), pytest.approx(500.0 / 3.0, rel=1e-12)),
]


@pytest.mark.parametrize(("kind", "value", "expected"), VALID)
def test_valid_spellings_parse_exactly(kind: str, value: object, expected: float) -> None:
    """Each documented spelling yields a float in the kind's unit, exactly."""
    result = units.parse(kind, value)
    assert type(result) is float
    assert result == expected


def test_every_kind_has_valid_cases() -> None:
    """A kind added to QUANTITIES without tests would go unnoticed otherwise."""
    assert {kind for kind, _, _ in VALID} == set(QUANTITIES)


@pytest.mark.parametrize(("kind", "value"), INVALID)
def test_invalid_values_name_the_expected_form(kind: str, value: object) -> None:
    """The error message is the kind's ``expected`` text, which users see after "expected"."""
    with pytest.raises(UnitError) as error:
        units.parse(kind, value)
    assert str(error.value) == QUANTITIES[kind].expected


@pytest.mark.parametrize(("text", "tempo", "whole_notes", "expected_ms"), NOTES)
def test_note_values_resolve_at_the_tempo(
    text: str, tempo: float, whole_notes: Fraction, expected_ms: Any
) -> None:
    """Note values stay symbolic until the tempo turns them into ms; straight and dotted
    notes at 120 BPM land exactly on whole milliseconds."""
    note = units.parse("delay_time", text)
    assert isinstance(note, NoteValue)
    assert note.whole_notes == whole_notes
    assert note.text == text.strip()
    assert note.duration_ms(tempo) == expected_ms

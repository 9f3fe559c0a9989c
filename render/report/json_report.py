"""The QC report as ``qc.json``: stable key order, units in key names, the same bytes for the
same render (no clock, no machine in it). Its schema is ``schemas/qc.schema.json``.

JSON has no infinity: a level of silence (``-inf`` dB or LUFS) is written as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from render.qc import Check, FileReport, Report

if TYPE_CHECKING:
    from render.analysis import Analysis

FORMAT = "render-qc/1"
"""The report format's name and version: a consumer checks it before reading further."""


def report_json(report: Report) -> str:
    """``report`` as JSON text (UTF-8, indented, newline-terminated)."""
    document = {
        "format": FORMAT,
        "title": report.title,
        "session": report.session.as_posix(),
        "status": report.status,
        "target": {
            "integrated_lufs": json_number(report.target_lufs),
            "true_peak_dbtp": json_number(report.ceiling_dbtp),
            "lra_min_lu": json_number(report.lra_window_lu[0] if report.lra_window_lu else None),
            "lra_max_lu": json_number(report.lra_window_lu[1] if report.lra_window_lu else None),
        },
        "limiting_db": json_number(report.limiting_db),
        "checks": checks_json(report.checks),
        "files": [file_json(file) for file in report.files],
        "notes": list(report.notes),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def checks_json(checks: Sequence[Check]) -> list[dict[str, str]]:
    """Every check as a JSON object, in report order."""
    return [
        {
            "name": check.name,
            "file": check.file,
            "status": check.status,
            "measured": check.measured,
            "expected": check.expected,
            "detail": check.detail,
        }
        for check in checks
    ]


def file_json(file: FileReport) -> dict[str, Any]:
    """One file's figures as a JSON object."""
    figures: Analysis = file.analysis
    loudness = figures.loudness
    return {
        "role": file.role,
        "file": file.path.name,
        "description": file.description,
        "corrections": list(file.corrections),
        "duration_s": json_number(figures.duration_s),
        "sample_rate_hz": figures.sample_rate,
        "integrated_lufs": json_number(loudness.integrated_lufs),
        "loudness_range_lu": json_number(loudness.loudness_range_lu),
        "max_momentary_lufs": json_number(loudness.max_momentary_lufs),
        "max_short_term_lufs": json_number(loudness.max_short_term_lufs),
        "true_peak_dbtp": [json_number(v) for v in loudness.true_peak_dbtp],
        "sample_peak_dbfs": [json_number(v) for v in loudness.sample_peak_dbfs],
        "plr_db": json_number(figures.plr_db),
        "dc_offset": [json_number(v, 9) for v in figures.dc_offset],
        "correlation": json_number(figures.correlation),
        "min_correlation_400ms": json_number(figures.min_correlation_400ms),
        "mono_fold_drop_lu": json_number(figures.mono_fold_drop_lu),
        "clipped_runs": [
            {"channel": run.channel, "start_s": json_number(run.start_s, 4), "samples": run.samples}
            for run in figures.clipped_runs
        ],
        "true_peak_overs": [
            {
                "channel": over.channel,
                "start_s": json_number(over.start_s, 4),
                "end_s": json_number(over.end_s, 4),
                "true_peak_dbtp": json_number(over.true_peak_dbtp),
            }
            for over in figures.true_peak_overs
        ],
        "leading_silence_s": json_number(figures.leading_silence_s, 4),
        "trailing_silence_s": json_number(figures.trailing_silence_s, 4),
        "octave_bands": [
            {"centre_hz": centre, "level_db": json_number(level)}
            for centre, level in zip(figures.octave_bands_hz, figures.octave_levels_db, strict=True)
        ],
        "devices": [
            {
                "device": device.device,
                "loudness_lufs": json_number(device.loudness_lufs),
                "loudness_change_lu": json_number(device.loudness_change_lu),
                "low_end_retained_db": json_number(device.low_end_retained_db),
                "vocal_range_retained_db": json_number(device.vocal_range_retained_db),
            }
            for device in file.devices
        ],
        "momentary_lufs": _series(loudness.momentary_lufs),
        "short_term_lufs": _series(loudness.short_term_lufs),
    }


def json_number(value: float | None, digits: int = 3) -> float | None:
    """``value`` rounded for a stable, readable file; ``None`` for no value or ±inf (a
    level of silence) and NaN."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _series(values: np.ndarray) -> list[float | None]:
    """A loudness series, 0.01 LU resolution (the meter's own is 0.1 LU by R 128)."""
    return [json_number(v, 2) for v in values.tolist()]

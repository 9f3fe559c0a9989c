"""The album QC report as ``album-qc.json``: every song's figures (the objects of
``qc.json``'s files), its goal, tonal deviation and checks, the album's spread and tonal
average, the album file's checks and where each track starts in it, in samples and CD
frames. Same conventions as ``qc.json``: stable key order, units in key names, ``null`` for
silence; its schema is ``schemas/album-qc.schema.json``."""

from __future__ import annotations

import json

from render.album_qc import AlbumReport
from render.report.json_report import checks_json, file_json, json_number

FORMAT = "render-album-qc/1"


def album_report_json(report: AlbumReport) -> str:
    """``report`` as JSON text (UTF-8, indented, newline-terminated)."""
    whole = report.album_file
    document = {
        "format": FORMAT,
        "title": report.title,
        "album": report.album.as_posix(),
        "status": report.status,
        "mode": report.mode,
        "target": {
            "integrated_lufs": json_number(report.target_lufs),
            "true_peak_dbtp": json_number(report.ceiling_dbtp),
        },
        "loudness_spread_lu": json_number(report.spread_lu),
        "octave_bands_hz": list(report.bands_hz),
        "average_octave_levels_db": [json_number(v) for v in report.average_levels_db],
        "songs": [
            {
                "track": song.number,
                "title": song.title,
                "status": song.status,
                "goal_lufs": json_number(song.goal_lufs),
                "tonal_deviation_db": [json_number(v) for v in song.deviation_db],
                "checks": checks_json((*song.report.checks, song.tonal)),
                "notes": list(song.report.notes),
                "file": file_json(song.file),
            }
            for song in report.songs
        ],
        "album_file": None
        if whole is None
        else {
            "checks": checks_json(whole.checks),
            "tracks": [
                {
                    "track": start.number,
                    "index_00_sample": start.index_00_sample,
                    "index_01_sample": start.index_01_sample,
                    "index_01_frames": start.index_01_frames,
                    "index_01": start.index_01_time,
                }
                for start in report.starts
            ],
            "file": file_json(whole.files[0]),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

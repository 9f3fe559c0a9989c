"""The CUE sheet of the continuous album file: track starts as CD frames (``mm:ss:ff``, 75
frames a second) and, in a ``REM SAMPLE_OFFSET`` line, as the sample of the file where the
track begins; both are the same instant, since every start lies on a whole frame.

Text fields are written in double quotes with any double quote in them replaced by an
apostrophe (the format has no escape); ``CATALOG`` takes the 13-digit EAN form of a UPC.
"""

from __future__ import annotations

from collections.abc import Sequence

from render.album.model import Album
from render.album.sequence import CD_FRAMES_PER_S, Placement


def cue_sheet(album: Album, file_name: str, placements: Sequence[Placement], file_rate: int) -> str:
    """The CUE sheet for ``file_name`` (the album file, at ``file_rate`` Hz), whose songs
    sit at ``placements`` (samples of that file)."""
    lines = ["REM GENERATOR render"]
    if album.year is not None:
        lines.append(f"REM DATE {album.year}")
    if album.upc is not None:
        lines.append(f"CATALOG {album.upc.zfill(13)}")
    if album.artist is not None:
        lines.append(f"PERFORMER {_quoted(album.artist)}")
    lines += [f"TITLE {_quoted(album.title)}", f"FILE {_quoted(file_name)} WAVE"]
    for song, placement in zip(album.songs, placements, strict=True):
        start = frames(placement.index_01, file_rate)
        lines += [f"  TRACK {song.number:02d} AUDIO", f"    TITLE {_quoted(song.title)}"]
        if album.artist is not None:
            lines.append(f"    PERFORMER {_quoted(album.artist)}")
        if song.isrc is not None:
            lines.append(f"    ISRC {song.isrc}")
        lines.append(f"    REM SAMPLE_OFFSET {placement.index_01}")
        if placement.index_00 < placement.index_01:
            lines.append(f"    INDEX 00 {timestamp(frames(placement.index_00, file_rate))}")
        lines.append(f"    INDEX 01 {timestamp(start)}")
    return "\n".join(lines) + "\n"


def frames(sample: int, sample_rate: int) -> int:
    """A frame-aligned sample position as CD frames."""
    count, rest = divmod(sample * CD_FRAMES_PER_S, sample_rate)
    assert rest == 0, "sequencing places every start on a whole frame"
    return count


def timestamp(frame_count: int) -> str:
    """``mm:ss:ff``: minutes, seconds and frames (75 a second)."""
    seconds, frame = divmod(frame_count, CD_FRAMES_PER_S)
    return f"{seconds // 60:02d}:{seconds % 60:02d}:{frame:02d}"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'

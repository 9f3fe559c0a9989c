"""Sequencing: the songs in running order on one timeline, as the continuous album file.

Every song starts (its CUE ``INDEX 01``) on a whole CD frame, 1/75 s (Red Book, IEC 60908),
so that the CUE sheet's ``mm:ss:ff`` times and the sample offsets in the file are the same
instants at any sample rate with a whole number of samples per frame (44100 Hz: 588, 48000:
640). A pre-gap (``INDEX 00`` to ``INDEX 01``) is silence of whole frames after the previous
song's end, itself rounded up to a frame. A crossfade starts the next song early, on the
frame at or before the asked overlap, and overlaps the two with equal-power gains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from render.dsp.levels import crossfade_gains

CD_FRAMES_PER_S = 75
"""Red Book CD frames (sectors) per second: CUE sheet times count them (mm:ss:ff)."""


@dataclass(frozen=True)
class Placement:
    """Where one song sits in the album file, in samples of the file."""

    index_00: int  # the pre-gap's first sample (equal to index_01 without a pre-gap)
    index_01: int  # the song's first sample: a whole CD frame
    length: int  # the song's samples
    fade_in: int  # samples of crossfade from the previous song (0: none)

    @property
    def end(self) -> int:
        return self.index_01 + self.length


class SequenceError(ValueError):
    """A crossfade the songs are too short for; ``song`` is the index of the song fading out."""

    def __init__(self, song: int, message: str) -> None:
        super().__init__(message)
        self.song = song


def place(
    lengths: Sequence[int],
    gaps_s: Sequence[float],
    crossfades_s: Sequence[float],
    sample_rate: int,
) -> tuple[tuple[Placement, ...], int]:
    """Each song's placement and the album's length (a whole number of frames).

    ``gaps_s[i]`` is the silence before song ``i``; ``crossfades_s[i]`` the overlap of song
    ``i`` into song ``i + 1``. ``sample_rate`` must be a multiple of 75 Hz."""
    frame = sample_rate // CD_FRAMES_PER_S
    assert frame * CD_FRAMES_PER_S == sample_rate, "checked when the album is loaded"
    placements: list[Placement] = []
    for song, length in enumerate(lengths):
        previous = placements[-1] if placements else None
        end = previous.end if previous else 0
        crossfade_s = crossfades_s[song - 1] if previous else 0.0
        if previous is not None and crossfade_s > 0.0:
            asked = round(crossfade_s * CD_FRAMES_PER_S) * frame
            start = (end - asked) // frame * frame
            if start < previous.index_01 + previous.fade_in or end - start > length:
                raise SequenceError(
                    song - 1,
                    f"a crossfade of {crossfade_s:g} s overlaps {(end - start) / sample_rate:.3f} "
                    f"s, more than song {song} ({previous.length / sample_rate:.3f} s after "
                    f"its own fade-in) or song {song + 1} ({length / sample_rate:.3f} s) has; "
                    "expected a shorter crossfade",
                )
            placements.append(Placement(start, start, length, end - start))
            continue
        gap_start = -(-end // frame) * frame
        start = gap_start + round(gaps_s[song] * CD_FRAMES_PER_S) * frame
        placements.append(Placement(gap_start, start, length, 0))
    total = -(-placements[-1].end // frame) * frame
    return tuple(placements), total


def assemble(
    masters: Sequence[np.ndarray], placements: Sequence[Placement], total: int
) -> np.ndarray:
    """The album signal, ``float64[channels, total]``: every master at its place, faded
    where it overlaps its neighbours, summed in running order (so the same bytes always)."""
    channels = max(x.shape[0] for x in masters)
    album = np.zeros((channels, total))
    for song, (x, placement) in enumerate(zip(masters, placements, strict=True)):
        y = np.array(np.broadcast_to(x, (channels, x.shape[1])))
        if placement.fade_in:
            y[:, : placement.fade_in] *= crossfade_gains(placement.fade_in)[1]
        following = placements[song + 1].fade_in if song + 1 < len(placements) else 0
        if following:
            y[:, y.shape[1] - following :] *= crossfade_gains(following)[0]
        album[:, placement.index_01 : placement.end] += y
    return album

"""Album loudness: the loudness each song's master is searched to.

``album``: a mastering engineer balances songs against each other, then sets the level of
the whole record. Every song is mastered at its own level (its session's chain and target),
measured (ITU-R BS.1770-4 integrated loudness), and moved by one common offset so that the
loudest song meets the album target: the songs' differences survive, as album
normalisation (ReplayGain album gain, Apple Sound Check album mode) plays them back.
``track``: every song meets the target on its own. In both modes a song's ``gain`` is added
to its goal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from render.album.model import LoudnessMode
from render.errors import RenderError


def song_goals(
    mode: LoudnessMode,
    target_lufs: float,
    levels_lufs: Sequence[float],
    gains_db: Sequence[float],
) -> tuple[float, ...]:
    """The integrated loudness, in LUFS, each song's master is searched to.

    Parameters
    ----------
    mode
        ``album`` or ``track`` (see the module docstring).
    target_lufs
        The album target: the loudest song's loudness (album), every song's (track).
    levels_lufs
        Each song's loudness mastered at its own level (read in mode album only).
    gains_db
        Each song's ``gain`` offset, in dB.
    """
    if mode == "track":
        return tuple(target_lufs + gain for gain in gains_db)
    placed = [level + gain for level, gain in zip(levels_lufs, gains_db, strict=True)]
    heard = [level for level in placed if math.isfinite(level)]
    if not heard:
        raise RenderError("every song of the album is silent: no album loudness can be set")
    offset_db = target_lufs - max(heard)
    return tuple(level + offset_db for level in placed)

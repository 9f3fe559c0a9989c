"""Strips rendered block by block: one block of a track or a bus in, its ``StripOutput`` out.

These are the per-strip steps of the mix; summing their outputs into buses is the mixer's
(``render.mix``). A block of either kind depends only on the strip's earlier blocks (its
stem position, its effects' state), so a strip's blocks run one after another while
different strips' blocks may run at the same time.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from render import audio_io
from render.chain import BlockProcess, Stage, block_chain
from render.dsp.dynamics import Compressor, compress_pair
from render.dsp.eq import Equalizer, filter_pair
from render.errors import AudioInputError
from render.graph import Node
from render.session.model import Track
from render.strip import Clip, Levels, StripOutput

_Pairing = TypeVar("_Pairing", Equalizer, Compressor)


class StreamedBus:
    """A bus whose chain streams: its summed input block → inserts → fader and pan."""

    def __init__(self, node: Node, levels: Levels) -> None:
        stages = block_chain(node.chain, 2)
        assert stages is not None
        self.node = node
        self.stages: list[BlockProcess] = stages
        self.levels = levels

    def block(self, offset: int, x: np.ndarray, keys: list[np.ndarray | None]) -> StripOutput:
        """Block ``x`` (``[2, n]``, the bus's input at timeline ``offset``) through the bus;
        ``keys`` holds each insert's sidechain key block (None where it has none)."""
        return self.levels.apply(self.inserts(offset, x, keys), offset)

    def inserts(self, offset: int, x: np.ndarray, keys: list[np.ndarray | None]) -> np.ndarray:
        """``block`` before the fader and pan."""
        for stage, key in zip(self.stages, keys, strict=True):
            x = stage(x, key)
        return x


class StreamedTrack:
    """A track whose chain streams: stem reader, clip placement, chain state, levels."""

    def __init__(
        self, node: Node, info: audio_io.StemInfo, levels: Levels, rate: int, where: str
    ) -> None:
        track = node.strip
        assert isinstance(track, Track)
        self.node, self.where = node, where
        self.stem = track.stem
        self.clip = Clip(track, info.frames, rate)
        self.channels = info.channels
        stages = block_chain(node.chain, info.channels)
        assert stages is not None
        self.stages: list[BlockProcess] = stages
        self.levels = levels
        self.reader: audio_io.StemReader | None = None

    def block(self, offset: int, n: int) -> StripOutput:
        """The track's ``n`` samples from timeline ``offset`` on, after its inserts, fader
        and pan (blocks must come in timeline order)."""
        return self.levels.apply(self.inserts(offset, n), offset)

    def inserts(self, offset: int, n: int) -> np.ndarray:
        """``block`` before the fader and pan: ``[channels, n]``."""
        x = np.empty((self.channels, n))
        self.place(offset, x)
        return self.through(x)

    def through(self, x: np.ndarray, first: int = 0) -> np.ndarray:
        """Block ``x`` through the chain's inserts from ``first`` on."""
        for stage in self.stages[first:]:
            x = stage(x, None)
        return x

    def processor(self, index: int) -> Any:
        """The processor of the chain's insert ``index``, if it has one there."""
        stage = self.stages[index] if index < len(self.stages) else None
        return stage.processor if isinstance(stage, Stage) else None

    def place(self, offset: int, x: np.ndarray) -> None:
        """The clip's samples in the block ``x`` (``[channels, n]``) at timeline ``offset``:
        the stem decoded straight into it, silence where the clip is not."""
        n = x.shape[1]
        begin, end = self.clip.overlap(offset, n)
        if end - begin < n:
            x[...] = 0.0
        if end > begin:
            at = self.clip.start + begin - offset
            try:
                if self.reader is None:
                    self.reader = audio_io.StemReader(self.stem, self.clip.first)
                self.reader.read_into(x[:, at : at + end - begin])
            except AudioInputError as e:
                raise AudioInputError(f"{self.where}: {e}") from e
            gains = self.clip.gains(begin, end)
            if not (isinstance(gains, float) and gains == 1.0):  # times 1.0 changes no bit
                x[:, at : at + end - begin] *= gains

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


class StreamedPair:
    """Two streamed tracks whose chains open with equalizers that pair
    (``Equalizer.pairs_with``), decoded into one block and equalized side by side
    (``eq.filter_pair``), then compressed side by side where both chains go on with
    compressors that pair (``dynamics.compress_pair``), each then through the rest of its
    own chain: the bits of each track's ``inserts``, the equalizers in 0.6 and the
    compressors in 0.75 of the time."""

    def __init__(self, first: StreamedTrack, second: StreamedTrack) -> None:
        equalizers = _paired(first, second, 0, Equalizer)
        assert equalizers is not None
        self.first, self.second, self.equalizers = first, second, equalizers
        self.compressors = _paired(first, second, 1, Compressor)
        self.shared = 1 if self.compressors is None else 2  # the inserts run side by side

    @staticmethod
    def pairs(first: StreamedTrack, second: StreamedTrack) -> bool:
        return _paired(first, second, 0, Equalizer) is not None

    def inserts(self, offset: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Both tracks' ``inserts`` of the block at ``offset``."""
        channels = self.first.channels
        x = np.empty((2 * channels, n))
        self.first.place(offset, x[:channels])
        self.second.place(offset, x[channels:])
        y = filter_pair(*self.equalizers, x)
        if self.compressors is not None:
            y = compress_pair(*self.compressors, y)
        return (
            self.first.through(y[:channels], self.shared),
            self.second.through(y[channels:], self.shared),
        )

    def close(self) -> None:
        self.first.close()
        self.second.close()


def _paired(
    first: StreamedTrack, second: StreamedTrack, index: int, kind: type[_Pairing]
) -> tuple[_Pairing, _Pairing] | None:
    """Both tracks' inserts ``index``, where both are processors of ``kind`` that pair."""
    one, other = first.processor(index), second.processor(index)
    if not (isinstance(one, kind) and isinstance(other, kind) and one.pairs_with(other)):
        return None
    return one, other

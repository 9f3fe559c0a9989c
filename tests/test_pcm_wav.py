"""Integer PCM WAV decoded directly: the same numbers as libsndfile, or left to it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from render.audio_io import StemReader
from render.pcm_wav import data_offset

BITS = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


def write_pcm(path: Path, rng: np.random.Generator, subtype: str, channels: int) -> np.ndarray:
    """Random integers over the whole range of ``subtype``, extremes included, written as
    ``int32`` scaled to the top bits (libsndfile keeps the top ``bits``)."""
    bits = BITS[subtype]
    codes = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), (5000, channels))
    codes[:2] = [[-(2 ** (bits - 1))], [2 ** (bits - 1) - 1]]
    sf.write(str(path), (codes << (32 - bits)).astype(np.int32), 48_000, subtype=subtype)
    return codes


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("subtype", sorted(BITS))
def test_blocks_equal_libsndfile_to_the_bit(
    tmp_path: Path, rng: np.random.Generator, subtype: str, channels: int
) -> None:
    path = tmp_path / "x.wav"
    codes = write_pcm(path, rng, subtype, channels)
    reader = StemReader(path, 123)
    assert reader.pcm is not None  # the direct path, not libsndfile
    blocks = [reader.read(size) for size in (1, 700, 4000)]
    reader.close()
    expected, _ = sf.read(str(path), start=123, frames=4701, always_2d=True)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), expected.T)
    # And the values themselves: code / 2**(bits - 1).
    np.testing.assert_array_equal(expected.T, codes[123:4824].T / 2.0 ** (BITS[subtype] - 1))


def test_chunks_before_the_data_are_skipped_with_their_padding(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """A 3-byte chunk (padded to 4) between ``fmt `` and ``data``."""
    plain = tmp_path / "plain.wav"
    write_pcm(plain, rng, "PCM_24", 2)
    raw = plain.read_bytes()
    at = raw.index(b"data")
    extra = b"junk" + struct.pack("<I", 3) + b"abc\x00"
    riff_size = struct.unpack("<I", raw[4:8])[0] + len(extra)
    padded = tmp_path / "padded.wav"
    padded.write_bytes(raw[:4] + struct.pack("<I", riff_size) + raw[8:at] + extra + raw[at:])
    assert data_offset(padded, 2, "PCM_24", 5000) == at + len(extra) + 8
    reader = StemReader(padded, 0)
    assert reader.pcm is not None
    np.testing.assert_array_equal(reader.read(5000), sf.read(str(plain), always_2d=True)[0].T)
    reader.close()


def test_other_files_are_left_to_libsndfile(tmp_path: Path, rng: np.random.Generator) -> None:
    """Float WAV, a header that disagrees with libsndfile's frame count, a data chunk running
    past the end of the file."""
    floats = tmp_path / "float.wav"
    sf.write(str(floats), rng.standard_normal((100, 2)) * 0.1, 48_000, subtype="FLOAT")
    assert StemReader(floats, 0).pcm is None
    path = tmp_path / "x.wav"
    write_pcm(path, rng, "PCM_16", 2)
    offset = data_offset(path, 2, "PCM_16", 5000)
    assert offset is not None
    assert data_offset(path, 2, "PCM_16", 4999) is None
    assert data_offset(path, 1, "PCM_16", 5000) is None
    path.write_bytes(path.read_bytes()[:-4])
    assert data_offset(path, 2, "PCM_16", 5000) is None


def test_decoding_into_part_of_a_block(tmp_path: Path, rng: np.random.Generator) -> None:
    """How a streamed track fills a block that its clip covers only in part: the frames
    land in the slice, the rest of the block is untouched."""
    path = tmp_path / "x.wav"
    write_pcm(path, rng, "PCM_24", 2)
    block = np.full((2, 1000), 7.0)
    reader = StemReader(path, 10)
    assert reader.pcm is not None
    reader.read_into(block[:, 300:800])
    reader.close()
    expected, _ = sf.read(str(path), start=10, frames=500, always_2d=True)
    np.testing.assert_array_equal(block[:, 300:800], expected.T)
    assert np.all(block[:, :300] == 7.0) and np.all(block[:, 800:] == 7.0)

"""Integer PCM WAV decoded and written directly: the same numbers and bytes as libsndfile,
or left to it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from render import pcm_wav
from render.audio_io import StemReader, encode, write_encoded, write_frames
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


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_a_data_chunk_cut_short_is_told_from_its_header(tmp_path: Path, subtype: str) -> None:
    """libsndfile reads a WAV whose data ends early as a shorter file; the header's data
    size still says how long it was. A size a streaming writer left unknown says nothing."""
    path = tmp_path / "x.wav"
    sf.write(str(path), np.zeros((5000, 2)), 48_000, subtype=subtype)
    assert pcm_wav.declared_frames(path) == sf.info(str(path)).frames == 5000
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert pcm_wav.declared_frames(path) == 5000 > sf.info(str(path)).frames
    at = raw.index(b"data") + 4
    for unknown in (0, 0xFFFFFFFF):
        path.write_bytes(raw[:at] + struct.pack("<I", unknown) + raw[at + 4 :])
        assert pcm_wav.declared_frames(path) is None
    sf.write(str(path), np.zeros((50, 2)), 48_000, format="FLAC")
    assert pcm_wav.declared_frames(path) is None


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


def codes_for(rng: np.random.Generator, subtype: str, frames: int, channels: int) -> np.ndarray:
    """Random codes over the whole range, extremes included, as libsndfile takes them:
    int16, or int32 with the code in the top bits."""
    bits = BITS[subtype]
    codes = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), (frames, channels))
    if frames >= 2:
        codes[:2] = [[-(2 ** (bits - 1))], [2 ** (bits - 1) - 1]]
    if subtype == "PCM_16":
        return codes.astype(np.int16)
    return (codes << (32 - bits)).astype(np.int32)


# 70001 frames spans two write blocks; 3 frames of mono 24-bit is an odd-sized data chunk.
@pytest.mark.parametrize("frames", [0, 1, 3, 70_001])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("subtype", sorted(BITS))
def test_written_files_equal_libsndfile_byte_for_byte(
    tmp_path: Path, rng: np.random.Generator, subtype: str, channels: int, frames: int
) -> None:
    codes = codes_for(rng, subtype, frames, channels)
    ours, theirs = tmp_path / "ours.wav", tmp_path / "theirs.wav"
    write_frames(ours, codes, 44_100, "WAV", subtype)
    sf.write(str(theirs), codes, 44_100, subtype=subtype, format="WAV")
    assert ours.read_bytes() == theirs.read_bytes()
    assert pcm_wav.write(tmp_path / "direct.wav", codes, 44_100, subtype)  # the direct path
    assert (tmp_path / "direct.wav").read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize(
    ("file_format", "bit_depth"),
    [
        ("wav", 16),
        ("wav", 24),
        ("wav", 32),
        ("wav", "float"),
        ("flac", 16),
        ("flac", 24),
        ("aiff", 16),
        ("aiff", 24),
    ],
)
def test_a_file_quantised_as_it_is_written_equals_the_encoded_frames(
    tmp_path: Path, bit_depth: int | str, file_format: str
) -> None:
    """``write_encoded`` quantises integer PCM block by block as it writes (WAV directly,
    FLAC and AIFF through libsndfile); the file is the one ``encode`` (all the codes at
    once) and ``write_frames`` make, for a length spanning two write blocks; float as
    before."""
    x = np.random.default_rng(8).uniform(-1.05, 1.05, (2, pcm_wav.WRITE_FRAMES + 1_001))
    streamed, whole = tmp_path / f"streamed.{file_format}", tmp_path / f"whole.{file_format}"
    write_encoded(streamed, x, 48_000, file_format, bit_depth, np.random.default_rng(2), "tpdf")
    frames, container, subtype = encode(x, file_format, bit_depth, np.random.default_rng(2), "tpdf")
    write_frames(whole, frames, 48_000, container, subtype)
    assert streamed.read_bytes() == whole.read_bytes()


def test_formats_it_does_not_write_are_left_to_libsndfile(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    codes = codes_for(rng, "PCM_24", 100, 2)
    assert not pcm_wav.write(tmp_path / "a.wav", codes.astype(np.int64), 48_000, "PCM_24")
    assert not pcm_wav.write(tmp_path / "b.wav", codes.astype(np.float32), 48_000, "FLOAT")
    assert not pcm_wav.write(tmp_path / "c.wav", codes[:, 0], 48_000, "PCM_24")
    assert not list(tmp_path.iterdir())  # nothing was written

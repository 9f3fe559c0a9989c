"""Audio in and out: probe and read stems, resample, quantise with dither, write atomically.

Array convention (everywhere in the project): audio is ``float64[channels, samples]``.
soundfile and soxr use ``[samples, channels]``; the transposition happens here and only here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from render.errors import AudioInputError, OutputError

WRITABLE_PCM = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF"}
_PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "PCM_32", "float": "FLOAT"}


@dataclass(frozen=True)
class StemInfo:
    """What a stem file holds, read from its header."""

    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def probe(path: Path) -> StemInfo:
    """Read a stem's header; raise ``AudioInputError`` with a reason a person understands."""
    if not path.exists():
        raise AudioInputError("the file does not exist")
    if not path.is_file():
        raise AudioInputError("this is a folder, not an audio file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioInputError(f"not a readable audio file ({_reason(e)})") from e
    if info.frames <= 0:
        raise AudioInputError("the file holds no audio (zero length)")
    if info.channels not in (1, 2):
        raise AudioInputError(f"expected a mono or stereo file, got {info.channels} channels")
    return StemInfo(info.frames, info.samplerate, info.channels, info.format, info.subtype)


def read_stem(path: Path, sample_rate: int) -> tuple[np.ndarray, StemInfo]:
    """Decode a whole stem as float64 ``[channels, samples]`` at ``sample_rate``.

    A stem at another rate is converted with soxr at very high quality. NaN or infinite
    samples, and files shorter than their header claims, are input errors naming the file.
    """
    info = probe(path)
    reader = StemReader(path, 0)
    try:
        data = np.ascontiguousarray(reader.read(info.frames))
    finally:
        reader.close()
    return resample(data, info.sample_rate, sample_rate), info


class StemReader:
    """Sequential blocks of a stem at its own rate, from frame ``first`` on, as float64
    ``[channels, n]``; the same checks as ``read_stem`` (finite samples, no truncation)."""

    def __init__(self, path: Path, first: int) -> None:
        self.path = path
        try:
            self.file = sf.SoundFile(str(path))
            self.file.seek(first)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise AudioInputError(f"{path}: cannot decode the audio ({_reason(e)})") from e
        self.position = first

    def read(self, n: int) -> np.ndarray:
        try:
            data = self.file.read(n, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise AudioInputError(
                f"{self.path}: cannot decode the audio ({_reason(e)}); the file may be "
                "truncated or damaged"
            ) from e
        if data.shape[0] < n:
            raise AudioInputError(
                f"{self.path}: the file is truncated: its header promises "
                f"{self.file.frames} frames, only {self.position + data.shape[0]} could be read"
            )
        if not np.isfinite(data).all():
            first = self.position + int(np.argmax(~np.isfinite(data).all(axis=1)))
            raise AudioInputError(
                f"{self.path}: sample {first} ({first / self.file.samplerate:.3f} s) is NaN or "
                "infinite; expected finite audio"
            )
        self.position += n
        return data.T

    def close(self) -> None:
        self.file.close()


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Sample-rate conversion of ``[channels, samples]`` audio (soxr, very high quality)."""
    if from_rate == to_rate:
        return x
    return np.ascontiguousarray(soxr.resample(x.T, from_rate, to_rate, quality="VHQ").T)


def resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """How many frames ``resample`` makes of ``frames`` (soxr rounds half up)."""
    return (frames * to_rate + from_rate // 2) // from_rate


def quantise(
    x: np.ndarray, bit_depth: int, rng: np.random.Generator, dither: Literal["tpdf", "none"]
) -> np.ndarray:
    """Float audio to integer PCM codes of ``bit_depth`` bits, the one quantisation point.

    TPDF dither of ±1 LSB peak (the sum of two independent uniform ±0.5 LSB variables)
    decorrelates the error from the signal (Vanderkooy & Lipshitz, "Dither in digital audio",
    JAES 1987). Values beyond full scale are clipped. Returns int32 codes left-aligned in 32 bits
    (libsndfile's convention for int32 input), or int16 for 16-bit.
    """
    scale = float(2 ** (bit_depth - 1))
    y = x * scale
    if dither == "tpdf":
        y = y + rng.uniform(-0.5, 0.5, y.shape) + rng.uniform(-0.5, 0.5, y.shape)
    codes = np.clip(np.round(y), -scale, scale - 1)
    if bit_depth == 16:
        return codes.astype(np.int16)
    return codes.astype(np.int32) << (32 - bit_depth)


def encode(
    x: np.ndarray,
    file_format: str,
    bit_depth: int | Literal["float"],
    rng: np.random.Generator,
    dither: Literal["tpdf", "none"],
) -> tuple[np.ndarray, str, str]:
    """Prepare ``x`` for writing: the sample array (``[samples, channels]``), container and
    libsndfile subtype. Float output is written as float32 without dither."""
    container = WRITABLE_PCM[file_format]
    subtype = _PCM_SUBTYPES[bit_depth]
    if bit_depth == "float":
        return np.ascontiguousarray(x.T, dtype=np.float32), container, subtype
    return np.ascontiguousarray(quantise(x, bit_depth, rng, dither).T), container, subtype


def write_audio(
    path: Path, frames: np.ndarray, sample_rate: int, container: str, subtype: str
) -> None:
    """Write ``frames`` (``[samples, channels]``) to ``path`` atomically."""
    with atomic_path(path) as temporary:
        try:
            sf.write(str(temporary), frames, sample_rate, subtype=subtype, format=container)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise OutputError(f"{path}: cannot write the file ({_reason(e)})") from e


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so an
    interrupted or failed write leaves neither a partial file nor a stray temporary.
    """
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create files here ({_reason(e)})") from e
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _reason(error: Exception) -> str:
    """libsndfile's message without its "Error opening '...': " or "Error : " preamble."""
    text = str(error).strip()
    if text.startswith("Error opening"):
        text = text.split(": ", 1)[-1]
    return text.removeprefix("Error : ").rstrip(".") or type(error).__name__

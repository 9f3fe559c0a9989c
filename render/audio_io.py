"""Audio in and out: probe and read stems, resample, quantise with dither, write files
atomically (PCM, or lossy frames prepared by ``render.lossy``), and decode a written file back.

Array convention (everywhere in the project): audio is ``float64[channels, samples]``.
soundfile and soxr use ``[samples, channels]``; the transposition happens here and only here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from render import pcm_wav
from render.dsp.dither import Dither, Quantiser, quantise
from render.errors import AudioInputError, OutputError
from render.pcm_wav import PcmWavReader

WRITABLE_PCM = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF"}
# libsoxr runs its double-precision (VHQ) resampler on AVX where the CPU has it and in plain C
# elsewhere, and the two engines round differently; libsoxr reads this variable each time it
# starts a conversion. The plain engine on every machine keeps the bytes the same everywhere,
# at 0.4 s instead of 0.23 s for 3 minutes of stereo.
os.environ["SOXR_USE_SIMD"] = "0"
_PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24", 32: "PCM_32", "float": "FLOAT"}
_INTEGER_SUBTYPES = frozenset({"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "ULAW", "ALAW"})


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
    if (short := _truncation(path, info.format, info.frames)) is not None:
        raise AudioInputError(short)
    if info.channels not in (1, 2):
        raise AudioInputError(f"expected a mono or stereo file, got {info.channels} channels")
    return StemInfo(info.frames, info.samplerate, info.channels, info.format, info.subtype)


def _truncation(path: Path, container: str, frames: int) -> str | None:
    """Why ``path`` holds fewer than the ``frames`` its header declares: libsndfile reads a
    WAV or AIFF whose data ends early (a copy cut short, a full disk) as a shorter file,
    without a word. None if it is whole, or its header declares no length."""
    declared = {"WAV": pcm_wav.declared_frames, "AIFF": _aiff_frames}.get(container)
    promised = declared(path) if declared is not None else None
    if promised is None or promised <= frames:
        return None
    return f"the file is truncated: its header promises {promised} frames, it holds {frames}"


def _aiff_frames(path: Path) -> int | None:
    """The frames the ``COMM`` chunk of an AIFF or AIFF-C file declares (Apple, "Audio
    Interchange File Format 1.3", 1989: big-endian chunks padded to even lengths; ``COMM``
    holds the channels, then the sample frames as an unsigned 32-bit number)."""
    with open(path, "rb") as file:
        if file.read(4) != b"FORM" or file.read(8)[4:] not in (b"AIFF", b"AIFC"):
            return None
        for chunk, _ in pcm_wav.chunks(file, "big"):
            if chunk == b"COMM":
                common = file.read(6)
                return int.from_bytes(common[2:6], "big") if len(common) == 6 else None
    return None


def read_stem(path: Path, sample_rate: int) -> tuple[np.ndarray, StemInfo]:
    """Decode a whole stem as float64 ``[channels, samples]`` at ``sample_rate``.

    A stem at another rate is converted with soxr at very high quality. NaN or infinite
    samples, and files shorter than their header claims, are input errors naming the file.
    """
    info = probe(path)
    reader = StemReader(path, 0)
    try:
        data = reader.read(info.frames)
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
        # Integer samples decode to finite numbers: only float files need the scan.
        self.may_be_nonfinite = self.file.subtype not in _INTEGER_SUBTYPES
        # Integer PCM WAV (most stems) is decoded here, the same bits 2-3x faster.
        self.pcm: PcmWavReader | None = None
        offset = None
        if self.file.format == "WAV":
            channels, frames = self.file.channels, self.file.frames
            offset = pcm_wav.data_offset(path, channels, self.file.subtype, frames)
        if offset is not None:
            self.pcm = PcmWavReader(path, offset, self.file.channels, self.file.subtype, first)

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` frames, a new ``[channels, n]`` array."""
        out = np.empty((self.file.channels, n))
        self.read_into(out)
        return out

    def read_into(self, out: np.ndarray) -> None:
        """The next ``out.shape[1]`` frames decoded into ``out`` (``[channels, n]``, rows
        contiguous), so a block is filled without a temporary copy."""
        n = out.shape[1]
        if self.pcm is not None:
            self._check_length(self.pcm.read_into(out), n)
            self.position += n
            return
        try:
            data = self.file.read(n, dtype="float64", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as e:
            raise AudioInputError(
                f"{self.path}: cannot decode the audio ({_reason(e)}); the file may be "
                "truncated or damaged"
            ) from e
        self._check_length(data.shape[0], n)
        if self.may_be_nonfinite and not np.isfinite(data).all():
            first = self.position + int(np.argmax(~np.isfinite(data).all(axis=1)))
            raise AudioInputError(
                f"{self.path}: sample {first} ({first / self.file.samplerate:.3f} s) is NaN or "
                "infinite; expected finite audio"
            )
        self.position += n
        out[...] = data.T

    def _check_length(self, got: int, n: int) -> None:
        if got < n:
            raise AudioInputError(
                f"{self.path}: the file is truncated: its header promises "
                f"{self.file.frames} frames, only {self.position + got} could be read"
            )

    def close(self) -> None:
        self.file.close()
        if self.pcm is not None:
            self.pcm.close()


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Sample-rate conversion of ``[channels, samples]`` audio (soxr, very high quality)."""
    if from_rate == to_rate:
        return x
    return np.ascontiguousarray(soxr.resample(x.T, from_rate, to_rate, quality="VHQ").T)


def resampled_length(frames: int, from_rate: int, to_rate: int) -> int:
    """How many frames ``resample`` makes of ``frames`` (soxr rounds half up)."""
    return (frames * to_rate + from_rate // 2) // from_rate


def encode(
    x: np.ndarray,
    file_format: str,
    bit_depth: int | Literal["float"],
    rng: np.random.Generator,
    dither: Dither,
) -> tuple[np.ndarray, str, str]:
    """Prepare ``x`` for writing: the sample array (``[samples, channels]``), container and
    libsndfile subtype. Float output is written as float32 without dither."""
    container = WRITABLE_PCM[file_format]
    subtype = _PCM_SUBTYPES[bit_depth]
    if bit_depth == "float":
        return np.ascontiguousarray(x.T, dtype=np.float32), container, subtype
    return quantise(x, bit_depth, rng, dither), container, subtype


def write_encoded(
    path: Path,
    x: np.ndarray,
    sample_rate: int,
    file_format: str,
    bit_depth: int | Literal["float"],
    rng: np.random.Generator,
    dither: Dither,
) -> None:
    """``encode`` ``x`` and write it to ``path`` (``write_frames``). Integer PCM, most
    deliverables, is quantised block by block as it is written (``Quantiser``, the same
    codes and the same bytes), with no whole-song array of codes: 71 MB for 3 minutes of
    stereo, 0.6 GB for a 30-minute album file."""
    if bit_depth == "float":
        frames, container, subtype = encode(x, file_format, bit_depth, rng, dither)
        write_frames(path, frames, sample_rate, container, subtype)
        return
    container, subtype = WRITABLE_PCM[file_format], _PCM_SUBTYPES[bit_depth]
    quantiser = Quantiser(x.shape[0], bit_depth, rng, dither)
    codes = np.empty((pcm_wav.WRITE_FRAMES, x.shape[0]), quantiser.dtype)

    def block(start: int, stop: int) -> np.ndarray:
        quantiser.quantise_into(x[:, start:stop], codes[: stop - start])
        return codes[: stop - start]

    channels, n = x.shape
    with _library_errors(path, "write the file"):
        if container == "WAV" and pcm_wav.write_blocks(
            path, n, channels, quantiser.dtype, sample_rate, subtype, block
        ):
            return
        _write_blocks(
            path, n, channels, sample_rate, container, subtype, block, pcm_wav.WRITE_FRAMES
        )


def write_frames(
    path: Path,
    frames: np.ndarray,
    sample_rate: int,
    container: str,
    subtype: str,
    *,
    compression_level: float | None = None,
    bitrate_mode: str | None = None,
) -> None:
    """Write ``frames`` (``[samples, channels]``) to ``path``, not atomically (write into
    an ``atomic_path``). ``container`` fixes the format, so the file name's suffix does not
    matter. ``compression_level`` and ``bitrate_mode`` come from ``LossyEncoding``."""
    with _library_errors(path, "write the file"):
        _write(path, frames, sample_rate, container, subtype, compression_level, bitrate_mode)


# libvorbis allocates its whole pending input on the stack (alloca in block.c,
# _preextrapolate_helper): one write of minutes of audio overflows the stack and kills the
# process (libsndfile issue #1095). Lossy files are written in blocks of 128 kB per channel.
_LOSSY_BLOCK_FRAMES = 32768


def _write(
    path: Path,
    frames: np.ndarray,
    sample_rate: int,
    container: str,
    subtype: str,
    compression_level: float | None,
    bitrate_mode: str | None,
) -> None:
    if container in WRITABLE_PCM.values():
        if container != "WAV" or not pcm_wav.write(path, frames, sample_rate, subtype):
            sf.write(str(path), frames, sample_rate, subtype=subtype, format=container)
        return
    n, channels = frames.shape
    _write_blocks(
        path,
        n,
        channels,
        sample_rate,
        container,
        subtype,
        lambda start, stop: frames[start:stop],
        _LOSSY_BLOCK_FRAMES,
        compression_level=compression_level,
        bitrate_mode=bitrate_mode,
    )


def _write_blocks(
    path: Path,
    n: int,
    channels: int,
    sample_rate: int,
    container: str,
    subtype: str,
    block: Callable[[int, int], np.ndarray],
    block_frames: int,
    **options: Any,
) -> None:
    """``n`` frames written through libsndfile ``block_frames`` at a time, ``block(start,
    stop)`` giving frames ``start:stop`` in order; ``options`` go to ``sf.SoundFile``."""
    with sf.SoundFile(
        str(path), "w", sample_rate, channels, subtype, format=container, **options
    ) as file:
        for start in range(0, n, block_frames):
            file.write(block(start, min(start + block_frames, n)))


def read_delivered(path: Path) -> tuple[np.ndarray, int]:
    """Decode a written file (PCM or lossy) as float64 ``[channels, samples]`` and its rate,
    to measure it as a listener will hear it.

    The decode is sample-aligned and of the encoded length for every lossy format written
    here: libsndfile's mpg123 decoder runs gapless, trimming LAME's encoder delay and padding
    and its own decoder delay as the LAME tag records them (``lossy_encoding`` only allows
    rates whose frames hold that tag), and the Ogg decoders trim Opus's pre-skip and end at
    the last granule position. Measured: a click at sample 30011 of a 2 s file decodes at
    sample 30011 (offset 0), and the file decodes to exactly as many frames as were written.

    A lossless file (the container tells) is decoded in two halves at once, block by block
    into the result, with ``StemReader``: no whole-file temporary to transpose, and integer
    PCM WAV by its own reader (12 minutes of 16-bit FLAC: 0.4-0.75 s instead of 1.4-1.9 s;
    3 minutes of 24-bit WAV: 0.03 s instead of 0.15 s). FLAC seeks to the sample, so the
    halves meet exactly. A lossy file is decoded whole, in order.
    """
    with _library_errors(path, "read the written file back"):
        info = sf.info(str(path))
        if info.format not in WRITABLE_PCM.values():
            data, sample_rate = sf.read(str(path), dtype="float64", always_2d=True)
            return np.ascontiguousarray(data.T), sample_rate
    if (short := _truncation(path, info.format, info.frames)) is not None:
        raise OutputError(f"{_final(path)}: cannot read the written file back ({short})")
    out = np.empty((info.channels, info.frames))
    middle = info.frames // 2
    try:
        for _ in _DECODERS.map(
            lambda span: _decode_span(path, out, *span), [(0, middle), (middle, info.frames)]
        ):
            pass
    except AudioInputError as e:  # the file as written does not decode: the disk's doing
        raise OutputError(f"{_final(path)}: cannot read the written file back ({e})") from e
    return out, info.samplerate


_DECODE_BLOCK_FRAMES = 1 << 16
_DECODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode")
"""Two halves of a written file decoded at once: libsndfile releases the GIL (cffi)."""


def _decode_span(path: Path, out: np.ndarray, start: int, stop: int) -> None:
    """Frames ``start:stop`` of ``path`` decoded into ``out[:, start:stop]``."""
    reader = StemReader(path, start)
    try:
        for first in range(start, stop, _DECODE_BLOCK_FRAMES):
            reader.read_into(out[:, first : min(first + _DECODE_BLOCK_FRAMES, stop)])
    finally:
        reader.close()


@contextlib.contextmanager
def _library_errors(path: Path, action: str) -> Iterator[None]:
    """libsndfile's and the file system's errors as an ``OutputError`` naming ``path`` (the
    file the user asked for, where ``path`` is its ``atomic_path`` temporary)."""
    try:
        yield
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise OutputError(f"{_final(path)}: cannot {action} ({_reason(e)})") from e


def _final(path: Path) -> Path:
    """The file an ``atomic_path`` temporary becomes (any other path as it is)."""
    if path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX):
        name = path.name.removesuffix(PARTIAL_SUFFIX)[1:].rsplit(".", 2)[0]
        return path.with_name(name)
    return path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so an
    interrupted or failed write leaves neither a partial file nor a stray temporary. A
    process killed outright (SIGKILL, power loss) cannot clean up: its temporary carries its
    process id, and ``remove_stale_partials`` clears it on the next render.

    Not fsynced: on ext4 (data=ordered) an fsync waits until every byte the render wrote is
    on the disk, the render cache's entries included (0.3-0.6 s per render here, seconds on
    a hard disk), and a render lost to a power cut is rendered again, to the same bytes.
    """
    try:
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=path.parent
        )
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot create files here ({_reason(e)})") from e
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the temporaries (``atomic_path``) that processes no longer running left in
    ``folder``; a live render's own are kept. Returns what was removed."""
    removed = []
    for candidate in folder.glob(f".*{PARTIAL_SUFFIX}"):
        pid = candidate.name.removesuffix(PARTIAL_SUFFIX).split(".")[-2]
        if pid.isdigit() and not _running(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


PARTIAL_SUFFIX = ".partial"


def _reason(error: Exception) -> str:
    """libsndfile's message without its "Error opening '...': " or "Error : " preamble; the
    system's own words for a file system error."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    if text.startswith("Error opening"):
        text = text.split(": ", 1)[-1]
    return text.removeprefix("Error : ").rstrip(".") or type(error).__name__

"""Lossy deliverables (MP3, Ogg Vorbis, Opus through libsndfile): the encoder settings that
give a requested bit rate, and byte-reproducible Ogg files.

libsndfile takes one compression level per file and maps it onto each codec's own scale;
``lossy_encoding`` inverts those maps. Its Ogg writer stamps every file with a random stream
serial number (a clock-seeded generator), so two renders of one session would differ;
``stamp_ogg_serial`` replaces it with one derived from the session seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from render import audio_io
from render.jit import njit

LOSSY_FORMATS = {
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
}
"""Lossy format name -> libsndfile container and subtype (LAME, libvorbis, libopus)."""
SAMPLE_RATES = {
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    "opus": (8000, 12000, 16000, 24000, 48000),
}
"""The only rates each codec encodes: MPEG-1/2/2.5 Layer III (ISO/IEC 11172-3, 13818-3) and
Opus (RFC 6716 §2); Vorbis takes any. Resample to one of them first."""


@dataclass(frozen=True)
class LossyEncoding:
    """The libsndfile settings for one lossy file, and the bit rate they ask for.

    ``bitrate_kbps`` is what the encoder targets: MP3 the constant rate of every frame (a
    legal Layer III rate), Vorbis the nominal rate its quality mode is built around (the
    actual VBR rate follows the content), Opus its VBR target. None everywhere: the encoder's
    own default (MP3 LAME VBR quality 4, Vorbis quality 0.4 = 128 kbit/s nominal for stereo,
    Opus about 120 kbit/s for 48 kHz stereo).
    """

    container: str
    subtype: str
    bitrate_kbps: int | None = None
    compression_level: float | None = None
    bitrate_mode: Literal["CONSTANT"] | None = None


# Layer III bit rates in kbit/s: MPEG-1 (32-48 kHz; ISO/IEC 11172-3 §2.4.2.3) and MPEG-2
# (16-24 kHz; ISO/IEC 13818-3), whose first eight also serve MPEG-2.5 (8-12 kHz).
_MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_LAME_TAG_BYTES = 156
"""LAME's Xing + LAME header (LAMEHEADERSIZE, libmp3lame/VbrTag.c): it carries the encoder
delay and padding that make the decode gapless, and LAME drops it from frames too small."""

# libvorbis's quality -> nominal bit rate per channel (bit/s) for 40-50 kHz: lib/modes/
# setup_44.h (coupled stereo) and setup_44u.h (mono), from quality 0 (libsndfile clamps the
# quality to [0, 1]) in steps of 0.1; vorbisenc.c interpolates linearly between them.
_VORBIS_QUALITY = np.linspace(0.0, 1.0, 11)
_VORBIS_BPS_PER_CHANNEL = {
    2: (32000, 40000, 48000, 56000, 64000, 80000, 96000, 112000, 128000, 160000, 250001),
    1: (48000, 60000, 70000, 80000, 86000, 96000, 110000, 120000, 140000, 160000, 240001),
}
_OPUS_BPS_PER_CHANNEL = (6000, 256000)
"""libsndfile's Opus compression range (ogg_opus.c, SFC_SET_COMPRESSION_LEVEL)."""
_OPUS_MAX_KBPS = 510
"""libopus's ceiling per stream: one 1275-byte packet per 20 ms frame (RFC 6716 §3.4, R2)."""


def lossy_encoding(
    file_format: str, sample_rate: int, channels: int, bitrate_kbps: int | None
) -> LossyEncoding:
    """libsndfile's settings that make ``file_format`` encode at ``bitrate_kbps``.

    libsndfile 1.2 takes one number, the compression level 0..1, and maps it per codec
    (src/mpeg_l3_encode.c, ogg_vorbis.c, ogg_opus.c); this inverts those maps exactly:

    - MP3, constant bit rate: ``int(top - level * (top - bottom))`` kbit/s, with top/bottom
      320/32 (MPEG-1), 160/8 (MPEG-2) or 64/8 (MPEG-2.5). A rate between two legal Layer III
      rates becomes the nearer one (the lower on a tie, as LAME's FindNearestBitrate). The
      lowest rates are refused: their frames cannot hold the LAME tag, and without it the
      decoded file would carry about 1500 extra samples of encoder delay and padding.
    - Vorbis: quality ``1 - level`` in libvorbis's VBR mode, whose nominal rate is the
      interpolated table above; 44.1/48 kHz only, the rates that table is for.
    - Opus: ``int((1 - level) * 250000 + 6000)`` bit/s per channel, the VBR target.

    Raises ``ValueError`` naming the allowed rates or bit rates when the encoder cannot do it.
    """
    container, subtype = LOSSY_FORMATS[file_format]
    rates = SAMPLE_RATES.get(file_format, (sample_rate,))
    if sample_rate not in rates:
        raise ValueError(
            f"{file_format}: got a sample rate of {sample_rate} Hz, expected one of "
            f"{', '.join(map(str, rates))} Hz; resample first"
        )
    if bitrate_kbps is None:
        return LossyEncoding(container, subtype)
    where = f"at {sample_rate} Hz {'stereo' if channels == 2 else 'mono'}"
    if file_format == "mp3":
        scale = _layer3_kbps(sample_rate)
        steps = [step for step in scale if _holds_lame_tag(step, sample_rate, channels)]
        if steps[0] > scale[0]:
            where += " (lower rates leave no room for LAME's gapless tag)"
        _check_bitrate(file_format, bitrate_kbps, steps[0], steps[-1], where)
        chosen = min(steps, key=lambda step: (abs(step - bitrate_kbps), step))
        level = _truncated_level(chosen, scale[-1], scale[0])
        return LossyEncoding(container, subtype, chosen, level, "CONSTANT")
    if file_format == "ogg":
        if not 40000 <= sample_rate <= 50000:
            raise ValueError(
                f"ogg: a bit rate can be set at 44100 or 48000 Hz only (libvorbis's rate "
                f"table), got {sample_rate} Hz; leave the bit rate out for its default quality"
            )
        per_channel = np.asarray(_VORBIS_BPS_PER_CHANNEL[channels])
        low, high = (round(bps * channels / 1000) for bps in per_channel[[0, -1]])
        _check_bitrate(file_format, bitrate_kbps, low, high, where)
        quality = float(np.interp(bitrate_kbps * 1000 / channels, per_channel, _VORBIS_QUALITY))
        return LossyEncoding(container, subtype, bitrate_kbps, 1.0 - quality)
    low, high = (bps * channels // 1000 for bps in _OPUS_BPS_PER_CHANNEL)
    _check_bitrate(file_format, bitrate_kbps, low, min(high, _OPUS_MAX_KBPS), where)
    level = _truncated_level(bitrate_kbps * 1000 // channels, *_OPUS_BPS_PER_CHANNEL[::-1])
    return LossyEncoding(container, subtype, bitrate_kbps, level)


def encode_lossy(
    x: np.ndarray, file_format: str, sample_rate: int, bitrate_kbps: int | None
) -> tuple[np.ndarray, LossyEncoding]:
    """Prepare ``x`` for a lossy encoder: float64 ``[samples, channels]`` frames, no dither
    (each encoder quantises in its own transform domain), and the settings to write them with
    (``write_frames``). Raises ``ValueError`` as ``lossy_encoding``."""
    encoding = lossy_encoding(file_format, sample_rate, x.shape[0], bitrate_kbps)
    return np.ascontiguousarray(x.T), encoding


def write_lossy(
    path: Path,
    x: np.ndarray,
    file_format: str,
    sample_rate: int,
    bitrate_kbps: int | None,
    serial: int,
) -> None:
    """Encode ``x`` (``float64[channels, samples]``) and write it to ``path`` (not
    atomically: the caller owns the temporary); an Ogg stream gets the serial number
    ``serial`` on every page (``stamp_ogg_serial``), so the bytes do not depend on the clock.
    Raises ``ValueError`` as ``lossy_encoding``."""
    frames, encoding = encode_lossy(x, file_format, sample_rate, bitrate_kbps)
    audio_io.write_frames(
        path,
        frames,
        sample_rate,
        encoding.container,
        encoding.subtype,
        compression_level=encoding.compression_level,
        bitrate_mode=encoding.bitrate_mode,
    )
    if encoding.container == "OGG":
        stamp_ogg_serial(path, serial)


def _layer3_kbps(sample_rate: int) -> tuple[int, ...]:
    """The legal Layer III bit rates at ``sample_rate``: MPEG-1, MPEG-2 or MPEG-2.5."""
    if sample_rate >= 32000:
        return _MPEG1_KBPS
    return _MPEG2_KBPS if sample_rate >= 16000 else _MPEG2_KBPS[:8]


def _holds_lame_tag(kbps: int, sample_rate: int, channels: int) -> bool:
    """Whether a frame of ``kbps`` holds the LAME tag (VbrTag.c, InitVbrTag): a frame has
    ``(144 or 72) * bitrate / rate`` bytes (MPEG-1 or MPEG-2/2.5); the tag needs them for the
    4-byte header, the side information (MPEG-1: 17 bytes mono, 32 stereo; MPEG-2: 9 and 17)
    and its own 156 bytes."""
    mpeg1 = sample_rate >= 32000
    side_info = (17 if channels == 1 else 32) if mpeg1 else (9 if channels == 1 else 17)
    frame_bytes = (144 if mpeg1 else 72) * 1000 * kbps // sample_rate
    return frame_bytes >= 4 + side_info + _LAME_TAG_BYTES


def _truncated_level(target: int, at_zero: float, at_one: float) -> float:
    """The compression level at which libsndfile's ``(int)(at_zero + level * (at_one -
    at_zero))`` gives exactly ``target``: aimed half a unit above it, so that truncation
    towards zero cannot land one below. This also keeps the MP3 level below 1, which LAME's
    VBR quality (``level * 10``, set before the bit-rate mode) requires."""
    return min(1.0, max(0.0, (target + 0.5 - at_zero) / (at_one - at_zero)))


def _check_bitrate(file_format: str, bitrate_kbps: int, low: int, high: int, where: str) -> None:
    if not low <= bitrate_kbps <= high:
        raise ValueError(
            f"{file_format}: got a bit rate of {bitrate_kbps} kbit/s, expected "
            f"{low}-{high} kbit/s {where}"
        )


def stamp_ogg_serial(path: Path, serial: int) -> None:
    """Give every page of the Ogg file at ``path`` the stream serial number ``serial`` and
    recompute each page's CRC (RFC 3533 §6: the serial at bytes 14-17, the CRC-32 at 22-25,
    polynomial 0x04C11DB7, computed over the page with its CRC field zeroed).

    The rest of an Ogg Vorbis or Opus file is already the same on every encode, so the
    whole file then is too."""
    data = np.fromfile(path, dtype=np.uint8)
    if not _restamp(data, serial & 0xFFFFFFFF, _OGG_CRC_TABLE):
        raise ValueError(f"{path}: not an Ogg stream, or a page is cut short")
    data.tofile(path)


def _ogg_crc_table() -> np.ndarray:
    """The byte-wise lookup table of Ogg's CRC-32 (MSB first, no reflection, no final XOR)."""
    table = np.zeros(256, np.int64)
    for byte in range(256):
        remainder = byte << 24
        for _ in range(8):
            remainder = (remainder << 1) ^ (0x04C11DB7 if remainder & 0x80000000 else 0)
        table[byte] = remainder & 0xFFFFFFFF
    return table


_OGG_CRC_TABLE = _ogg_crc_table()


@njit(nogil=True, cache=True)
def _is_capture_pattern(data: np.ndarray, start: int) -> bool:
    """Whether a page starts at ``start``: the bytes "OggS"."""
    return (
        data[start] == 79
        and data[start + 1] == 103
        and data[start + 2] == 103
        and data[start + 3] == 83
    )


@njit(nogil=True, cache=True)
def _restamp(data: np.ndarray, serial: int, table: np.ndarray) -> bool:
    """Rewrite the serial and CRC of every page in ``data``, in place; False if ``data`` is
    not a whole sequence of Ogg pages."""
    n = data.size
    start = 0
    while start < n:
        if start + 27 > n or not _is_capture_pattern(data, start):
            return False
        segments = int(data[start + 26])
        if start + 27 + segments > n:
            return False
        size = 27 + segments
        for k in range(segments):
            size += int(data[start + 27 + k])
        if start + size > n:
            return False
        for k in range(4):
            data[start + 14 + k] = (serial >> (8 * k)) & 0xFF
            data[start + 22 + k] = 0
        crc = 0
        for i in range(start, start + size):
            crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ data[i]) & 0xFF]
        for k in range(4):
            data[start + 22 + k] = (crc >> (8 * k)) & 0xFF
        start += size
    return True

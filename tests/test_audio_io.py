"""Deliverable encoding: lossy files keep length, timing, level and bit rate; bad rates are
refused with the allowed range; quantisation paths keep their bytes."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from render import audio_io, lossy
from render.dsp.dither import Dither, quantise
from tests.conftest import sine

RATE = 48_000
N = 2 * RATE  # 2 s
LOSSY = ["mp3", "ogg", "opus"]
DELIVERY_KBPS = {"mp3": 320, "ogg": 192, "opus": 160}
"""Typical delivery rates. LAME at 160 kbit/s CBR and below encodes a tone (and pink noise)
about 0.45 dB low (measured), and under 0.1 dB low at 320."""


def write_lossy(
    tmp_path: Path, x: np.ndarray, file_format: str, bitrate_kbps: int | None, name: str = "out"
) -> tuple[Path, lossy.LossyEncoding]:
    path = tmp_path / f"{name}.{file_format}"
    lossy.write_lossy(path, x, file_format, RATE, bitrate_kbps, serial=0)
    return path, lossy.lossy_encoding(file_format, RATE, x.shape[0], bitrate_kbps)


def click(channels: int, at: int) -> np.ndarray:
    """A band-limited click (Hann-windowed sinc, 0.8 x Nyquist) centred on sample ``at``."""
    k = np.arange(-64, 65)
    x = np.zeros((channels, N))
    x[:, at - 64 : at + 65] = 0.5 * np.sinc(0.8 * k) * np.hanning(129)
    return x


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("file_format", LOSSY)
def test_lossy_file_decodes_with_its_length_timing_and_level(
    tmp_path: Path, file_format: str, channels: int
) -> None:
    """A 2 s file decodes to exactly 96000 frames (libsndfile trims MP3's encoder delay and
    padding by the LAME tag, Opus's pre-skip and both Ogg codecs' end by the granule
    position); a click decodes at its own sample (cross-correlation peak at lag 0); a 1 kHz
    tone keeps its level within 0.5 dB (a codec keeps a lone tone far above its masking
    threshold: measured 0.1 dB or less at these rates)."""
    kbps = DELIVERY_KBPS[file_format]
    tone = np.tile(sine(1000.0, 2.0, 0.5, RATE), (channels, 1))
    decoded, rate = audio_io.read_delivered(write_lossy(tmp_path, tone, file_format, kbps)[0])
    assert rate == RATE and decoded.shape == (channels, N)
    middle = slice(RATE // 2, 3 * RATE // 2)
    level_db = 20 * np.log10(np.std(decoded[:, middle], axis=1) / np.std(tone[:, middle]))
    assert np.abs(level_db).max() < 0.5

    impulse = click(channels, 30_011)
    path, _ = write_lossy(tmp_path, impulse, file_format, kbps, "click")
    heard = audio_io.read_delivered(path)[0]
    assert heard.shape == (channels, N)
    assert np.argmax(correlate(heard[0], impulse[0])) - (N - 1) == 0


@pytest.mark.parametrize(("requested", "written"), [(64, 64), (128, 128), (300, 320), (320, 320)])
def test_mp3_is_constant_bit_rate_at_the_nearest_layer_iii_rate(
    tmp_path: Path, rng: np.random.Generator, requested: int, written: int
) -> None:
    """CBR: the file is the bit rate x duration, within 10 %: 2 s at 48 kHz is 83.3 frames of
    1152 samples, written as 86 (LAME's 576-sample delay, padding to a whole frame, and the
    frame holding the LAME tag), 3.2 % over. 300 kbit/s is not a Layer III rate: 320 is."""
    noise = 0.1 * rng.standard_normal((2, N))
    path, encoding = write_lossy(tmp_path, noise, "mp3", requested)
    assert encoding.bitrate_kbps == written
    assert path.stat().st_size * 8 / 2.0 / 1000 == pytest.approx(written, rel=0.1)


def test_opus_meets_its_bit_rate_target(tmp_path: Path, rng: np.random.Generator) -> None:
    """Opus VBR on noise lands within 10 % of its target (measured +4.6 %, mostly Ogg page
    overhead)."""
    path, _ = write_lossy(tmp_path, 0.1 * rng.standard_normal((2, N)), "opus", 128)
    assert path.stat().st_size * 8 / 2.0 / 1000 == pytest.approx(128, rel=0.1)


@pytest.mark.parametrize(("channels", "bitrate_kbps"), [(2, 64), (2, 192), (2, 500), (1, 128)])
def test_vorbis_header_carries_the_requested_nominal_bit_rate(
    tmp_path: Path, channels: int, bitrate_kbps: int
) -> None:
    """Vorbis's quality mode is VBR; the quality chosen is the one libvorbis itself rates at
    the request, which it writes as ``bitrate_nominal`` into the identification header
    (Vorbis I specification §4.2.2). 0.1 %: libvorbis interpolates in single precision."""
    tone = np.tile(sine(440.0, 2.0, 0.3, RATE), (channels, 1))
    path, _ = write_lossy(tmp_path, tone, "ogg", bitrate_kbps)
    data = path.read_bytes()
    start = data.index(b"\x01vorbis") + 7
    _, channel_count, rate, _, nominal, _ = struct.unpack("<IBIiii", data[start : start + 21])
    assert (channel_count, rate) == (channels, RATE)
    assert nominal == pytest.approx(bitrate_kbps * 1000, rel=1e-3)


@pytest.mark.parametrize(
    ("file_format", "sample_rate", "channels", "bitrate_kbps", "message"),
    [
        (
            "opus",
            44100,
            2,
            128,
            "got a sample rate of 44100 Hz, expected one of 8000, 12000, 16000, 24000, 48000 Hz",
        ),
        ("opus", 48000, 2, 512, "got a bit rate of 512 kbit/s, expected 12-510 kbit/s"),
        ("mp3", 48000, 2, 400, "expected 64-320 kbit/s at 48000 Hz stereo"),
        ("mp3", 48000, 2, 56, "lower rates leave no room for LAME's gapless tag"),
        ("mp3", 96000, 2, 320, "got a sample rate of 96000 Hz"),
        ("ogg", 96000, 2, 192, "44100 or 48000 Hz only"),
        ("ogg", 48000, 1, 256, "expected 48-240 kbit/s at 48000 Hz mono"),
    ],
)
def test_impossible_settings_are_refused_with_the_allowed_range(
    file_format: str, sample_rate: int, channels: int, bitrate_kbps: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lossy.lossy_encoding(file_format, sample_rate, channels, bitrate_kbps)


@pytest.mark.parametrize(
    ("sample_rate", "channels", "lowest", "below"), [(48000, 2, 64, 56), (44100, 1, 56, 48)]
)
def test_lowest_mp3_rate_is_the_lowest_that_decodes_gapless(
    tmp_path: Path,
    rng: np.random.Generator,
    sample_rate: int,
    channels: int,
    lowest: int,
    below: int,
) -> None:
    """The lowest rate allowed decodes to its exact length; the Layer III rate just below it
    (forced through libsndfile's own map, 320 - level x 288 kbit/s) decodes longer: its frames
    cannot hold the LAME tag that tells the decoder what to trim."""
    allowed = lossy.lossy_encoding("mp3", sample_rate, channels, lowest)
    with pytest.raises(ValueError, match=f"expected {lowest}-320 kbit/s"):
        lossy.lossy_encoding("mp3", sample_rate, channels, below)
    x = 0.1 * rng.standard_normal((sample_rate, channels))
    lengths = []
    for level in (allowed.compression_level, (320 - below - 0.5) / 288):
        path = tmp_path / "rate.mp3"
        sf.write(
            path,
            x,
            sample_rate,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=level,
            bitrate_mode="CONSTANT",
        )
        lengths.append(sf.info(path).frames)
    assert lengths[0] == sample_rate
    assert lengths[1] > sample_rate + 1000


LONG_FRAMES = 2**21 + 2**17  # 46 s mono: one libvorbis write of this many crashes


def write_reference_files(folder: Path) -> None:
    """The files compared across processes, and a long Vorbis file."""
    x = 0.1 * np.random.default_rng(11).standard_normal((2, RATE // 2))
    for file_format in LOSSY:
        write_lossy(folder, x, file_format, 128, "same")
    long = 0.1 * np.random.default_rng(12).standard_normal((1, LONG_FRAMES))
    write_lossy(folder, long, "ogg", None, "long")


@pytest.fixture(scope="module")
def child_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``write_reference_files`` run in a fresh Python process: another process's encoder
    state, and a crash there fails a test instead of killing the session."""
    folder = tmp_path_factory.mktemp("child")
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, '.'); "
        "from tests.test_audio_io import write_reference_files; "
        "write_reference_files(Path(sys.argv[1]))"
    )
    root = Path(__file__).resolve().parents[1]
    child = subprocess.run(
        [sys.executable, "-c", code, str(folder)], cwd=root, capture_output=True, text=True
    )
    assert child.returncode == 0, child.stderr[-2000:]
    return folder


def test_minutes_of_vorbis_are_written_without_overflowing_the_stack(child_files: Path) -> None:
    """libvorbis copies a write call's whole input onto the stack, so one call of 2**21 frames
    overflows the 8 MB stack and the process dies (libsndfile issue #1095); written in blocks,
    46 s of mono decodes whole."""
    decoded, _ = audio_io.read_delivered(child_files / "long.ogg")
    assert decoded.shape == (1, LONG_FRAMES)


def test_mp3_bytes_repeat_across_processes_and_ogg_differs_only_in_its_serial_number(
    child_files: Path, tmp_path: Path
) -> None:
    """The same input encoded here and in another process: MP3 byte-identical. Ogg (Vorbis,
    Opus) identical once each page's stream serial number and the page checksum covering it
    are blanked: libsndfile draws the serial number from a generator seeded by the clock at
    its first use in a process and stepped at every file opened (common.c, psf_rand_int32),
    and offers no way to set it."""
    write_reference_files(tmp_path)
    for file_format in LOSSY:
        here, there = (
            (folder / f"same.{file_format}").read_bytes() for folder in (tmp_path, child_files)
        )
        if file_format == "mp3":
            assert here == there
        else:
            assert blank_serials(here) == blank_serials(there)


def blank_serials(ogg: bytes) -> bytes:
    """``ogg`` with every page's serial number and CRC zeroed (page layout: RFC 3533 §6)."""
    pages, start = bytearray(), 0
    while start < len(ogg):
        assert ogg[start : start + 4] == b"OggS"
        segments = ogg[start + 26]
        length = 27 + segments + sum(ogg[start + 27 : start + 27 + segments])
        page = bytearray(ogg[start : start + length])
        page[14:18] = page[22:26] = b"\0\0\0\0"
        pages += page
        start += length
    return bytes(pages)


def test_pcm_file_reads_back_as_its_codes(tmp_path: Path, rng: np.random.Generator) -> None:
    """``read_delivered`` on a 24-bit WAV returns exactly the written codes over full scale
    (left-aligned in int32, hence / 2**31), as ``[channels, samples]``."""
    x = 0.5 * rng.standard_normal((2, 1000))
    frames, container, subtype = audio_io.encode(x, "wav", 24, np.random.default_rng(0), "tpdf")
    audio_io.write_frames(tmp_path / "x.wav", frames, RATE, container, subtype)
    decoded, rate = audio_io.read_delivered(tmp_path / "x.wav")
    assert rate == RATE
    np.testing.assert_array_equal(decoded, frames.T / 2.0**31)


@pytest.mark.parametrize("file_format", ["wav", "flac", "aiff"])
@pytest.mark.parametrize("bit_depth", [16, 24])
@pytest.mark.parametrize("frames", [1, 2, 131_073])
def test_lossless_file_reads_back_in_halves_as_a_whole(
    tmp_path: Path, rng: np.random.Generator, file_format: str, bit_depth: int, frames: int
) -> None:
    """Decoded in two halves at once (block by block, FLAC seeking to the middle), a written
    file is the same float64 samples as libsndfile decoding it whole, in order; an odd length
    and more than one block each side included."""
    x = 0.5 * rng.standard_normal((2, frames))
    codes, container, subtype = audio_io.encode(
        x, file_format, bit_depth, np.random.default_rng(0), "tpdf"
    )
    path = tmp_path / f"x.{file_format}"
    audio_io.write_frames(path, codes, RATE, container, subtype)
    whole, _ = sf.read(str(path), dtype="float64", always_2d=True)
    decoded, rate = audio_io.read_delivered(path)
    assert rate == RATE and decoded.shape == (2, frames)
    assert decoded.tobytes() == np.ascontiguousarray(whole.T).tobytes()


def test_shaped_dither_codes_are_in_range_with_zero_mean_error(rng: np.random.Generator) -> None:
    """16-bit noise-shaped codes stay within the int16 range even for an input 6 dB over full
    scale, and the error of an in-range signal averages to zero: its spectrum is -16.6 dB at
    DC (|NTF(1)|² = 0.148² of LSB²/4), so over 200000 samples the mean has a standard
    deviation of 2e-4 LSB; 0.01 LSB is the bound flat TPDF meets too."""
    loud = quantise(rng.uniform(-2.0, 2.0, (2, 10_000)), 16, rng, "tpdf_shaped")
    assert loud.dtype == np.int16 and loud.min() == -32768 and loud.max() == 32767
    x = rng.uniform(-0.5, 0.5, (2, 100_000))
    error = quantise(x, 16, rng, "tpdf_shaped").T / 32768.0 - x
    assert abs(np.mean(error)) < 0.01 / 32768


@pytest.mark.parametrize(
    ("bit_depth", "dither", "digest"),
    [
        (16, "tpdf", "58688c2ce051438fa8c0ab80fdff3c655bc77d62bf69482b56542148024302cc"),
        (16, "none", "56de28cbde0b51ffca5a5f3a47d6b261f40e43366700631cc797fcf13dd3e4c5"),
        (24, "tpdf", "0f2ff9b397bc1e278b90b040a03ed49dceb30c6693b6e7967fcb253c8b3ed002"),
        (24, "none", "a2f004316c1a275eed931ad5cd4ec8330d7af18ae961baf40885c64012df074a"),
    ],
)
def test_quantised_codes_are_pinned(bit_depth: int, dither: Dither, digest: str) -> None:
    """The codes of a seeded render are pinned: the undithered ones are those of plain
    rounding since the first release; the dithered ones those of the dither drawn from
    SplitMix64 words (changed deliberately: 4x faster), so any other change to the bytes a
    session writes fails here first."""
    x = np.random.default_rng(7).uniform(-1.1, 1.1, (2, 1000))
    codes = quantise(x, bit_depth, np.random.default_rng(3), dither)
    assert hashlib.sha256(np.ascontiguousarray(codes.T).tobytes()).hexdigest() == digest

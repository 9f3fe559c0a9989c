"""The command line end to end: the demo renders reproducibly, every failure is one clear
paragraph with the documented exit code, and no failure leaves a partial file behind."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from render import audio_io, pcm_wav
from render.cli import main
from render.dsp.dither import quantise
from render.measure import integrated_loudness_lufs
from render.report.terminal import time_line
from tests.ebur128 import ffmpeg_ebur128

REPO = Path(__file__).parent.parent
DEMO = REPO / "sessions" / "demo"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` with its size and modification time in nanoseconds."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def demo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo session, so tests never write into the repository."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("out"))
    return folder


@pytest.fixture(scope="module")
def demo_mix(demo_copy: Path) -> Path:
    assert main([str(demo_copy / "session.yaml"), "--quiet"]) == 0
    return demo_copy / "out" / "mix.wav"


def test_demo_mix_is_plausible(demo_mix: Path) -> None:
    """Not silent, not clipped: a 24-bit stereo mix of the whole song."""
    x, rate = sf.read(str(demo_mix), always_2d=True)
    info = sf.info(str(demo_mix))
    assert (rate, info.channels, info.subtype) == (48_000, 2, "PCM_24")
    # The stems' length (fixtures' song.json), plus what the reverb and echo ring on for.
    assert 1_227_428 <= x.shape[0] <= 1_227_428 + 4 * 48_000
    assert 20 * math.log10(np.max(np.abs(x))) < 0.0
    assert -30.0 < integrated_loudness_lufs(x.T, rate) < -10.0


def test_loudness_agrees_with_ffmpeg(demo_mix: Path) -> None:
    """Our integrated loudness of the mix is within 0.1 LU of ffmpeg's ebur128 meter (an
    independent BS.1770 implementation; it prints one decimal, hence 0.1)."""
    x, rate = sf.read(str(demo_mix), always_2d=True)
    assert integrated_loudness_lufs(x.T, rate) == pytest.approx(
        ffmpeg_ebur128(demo_mix).integrated_lufs, abs=0.1
    )


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_renders_are_byte_identical_for_any_jobs(
    demo_copy: Path, demo_mix: Path, tmp_path: Path, jobs: str
) -> None:
    """The demo (buses, sends, a sidechain-free graph of streamed and whole strips, a
    mastering chain and a loudness search) gives the same bytes in every file on every
    render and for every number of threads."""
    out = tmp_path / f"jobs{jobs}"
    assert (
        main([str(demo_copy / "session.yaml"), "--quiet", "--jobs", jobs, "--out", str(out)]) == 0
    )
    written = sorted(path.name for path in out.iterdir())
    assert written == [
        "Indie Pop - CD 16-44.wav",
        "Indie Pop.wav",
        "manifest.json",
        "mix.wav",
        "qc.html",
        "qc.json",
    ]
    for name in written:
        assert sha256(out / name) == sha256(demo_mix.parent / name), name


def test_check_touches_no_file(demo_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree(demo_copy)
    assert main(["--check", str(demo_copy / "session.yaml")]) == 0
    assert tree(demo_copy) == before
    assert "valid (5 tracks)" in capsys.readouterr().out


def test_the_command_flushes_its_output_before_it_exits(demo_copy: Path) -> None:
    """``render`` ends its process without the interpreter's teardown (``cli.run``): what it
    printed still reaches a pipe, and the status is main's (a failing one: the next test)."""
    run = subprocess.run(
        [sys.executable, "-m", "render", "--check", str(demo_copy / "session.yaml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{demo_copy / 'session.yaml'}: valid (5 tracks)\n"


def test_bad_session_exits_1_with_located_errors(tmp_path: Path) -> None:
    """Through a real process: one paragraph per error on stderr, no traceback, no output."""
    session = tmp_path / "song.yaml"
    session.write_text("version: 1\ntracks:\n  kick: {stem: kick.wav, gain: -3 dbb}\n")
    run = subprocess.run(
        [sys.executable, "-m", "render", str(session)], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert f"{session}:3:32: tracks.kick.gain: expected a level in dB" in run.stderr
    assert f"{session}:3:16: tracks.kick.stem: the file does not exist" in run.stderr
    assert run.stderr.rstrip().endswith("2 errors in the session; nothing was rendered.")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arguments", [["--jobs", "0", "x.yaml"], [], ["--bogus", "x.yaml"]])
def test_usage_errors_exit_2(arguments: list[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2


def test_missing_session_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: cannot read the file" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 1
    assert "this is a folder; expected a session file" in capsys.readouterr().err


def test_out_may_not_overwrite_an_input(
    demo_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree(demo_copy)
    assert main([str(demo_copy / "session.yaml"), "--out", str(demo_copy / "stems")]) == 1
    assert "--out: the output folder" in capsys.readouterr().err
    assert tree(demo_copy) == before


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_interrupted_write_leaves_previous_output_intact(
    demo_copy: Path,
    demo_mix: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A write that dies half-way (Ctrl-C, full disk) leaves the previous mix untouched and
    no temporary file; the user gets one line, not a traceback."""
    previous = sha256(demo_mix)
    written = sorted(os.listdir(demo_mix.parent))
    real_write = audio_io._write

    def dying_write(path: Path, frames: np.ndarray, *args: object, **kwargs: object) -> None:
        real_write(path, frames[: len(frames) // 2], *args, **kwargs)
        raise failure

    real_write_blocks = pcm_wav.write_blocks

    def dying_write_blocks(path: Path, n: int, *args: object) -> bool:
        real_write_blocks(path, n // 2, *args)  # type: ignore[arg-type]
        raise failure

    monkeypatch.setattr(audio_io, "_write", dying_write)
    monkeypatch.setattr(pcm_wav, "write_blocks", dying_write_blocks)  # integer WAV
    status = main([str(demo_copy / "session.yaml"), "--quiet", "--no-cache"])  # must write
    assert status == (130 if failure is KeyboardInterrupt else 1)
    assert sha256(demo_mix) == previous
    assert sorted(os.listdir(demo_mix.parent)) == written
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_failed_first_render_leaves_no_output_folder(
    demo_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io, "_write", full_disk)
    monkeypatch.setattr(pcm_wav, "write_blocks", full_disk)  # integer WAV
    out = tmp_path / "fresh"
    command = [str(demo_copy / "session.yaml"), "--quiet", "--out", str(out), "--no-cache"]
    assert main(command) == 1
    assert not out.exists()


def test_24_bit_quantisation_error_is_bounded_by_tpdf(rng: np.random.Generator) -> None:
    """TPDF dither of ±1 LSB plus rounding keeps every sample within 1.5 LSB of the float
    signal, with zero mean error (Vanderkooy & Lipshitz 1987)."""
    x = rng.uniform(-0.9, 0.9, (2, 200_000))
    codes = quantise(x, 24, np.random.default_rng(0), "tpdf")
    error = (codes.T.astype(np.float64) / 2**31) - x
    lsb = 2.0**-23
    assert np.max(np.abs(error)) <= 1.5 * lsb
    assert abs(np.mean(error)) < 0.01 * lsb
    assert np.std(error) == pytest.approx(lsb * math.sqrt(1 / 12 + 1 / 6), rel=0.02)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("nan", "sample 1000 (0.021 s) is NaN or infinite"),
        ("truncated", "cannot decode the audio (flac decoder lost sync)"),
    ],
)
def test_damaged_stem_is_a_located_input_error(
    tmp_path: Path, damage: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Damage found only while decoding still names the session line and the file, and no
    output is written."""
    stems = tmp_path / "stems"
    stems.mkdir()
    if damage == "nan":
        x = np.zeros(48_000)
        x[1000] = np.nan
        sf.write(str(stems / "bad.flac"), x, 48_000, format="WAV", subtype="FLOAT")
    else:
        data = (DEMO / "stems" / "bass.flac").read_bytes()
        (stems / "bad.flac").write_bytes(data[:200_000])
    session = tmp_path / "s.yaml"
    session.write_text("version: 1\nstems: stems\ntracks:\n  a: {stem: bad.flac}\n")
    assert main([str(session), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"{session}:4:13: tracks.a.stem: {stems / 'bad.flac'}: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "held"), [("a.wav", 47996), ("a.aiff", 47995)])
def test_a_truncated_wav_or_aiff_stem_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, held: int
) -> None:
    """A WAV or AIFF stem whose data ends early (a copy cut short) is named, with its line,
    before anything renders: libsndfile alone would read it as a shorter stem, silently."""
    stem = tmp_path / "stems" / name
    stem.parent.mkdir()
    sf.write(str(stem), np.zeros((96_000, 2)), 48_000, subtype="PCM_24")
    stem.write_bytes(stem.read_bytes()[: stem.stat().st_size // 2])
    session = tmp_path / "s.yaml"
    session.write_text(f"version: 1\nstems: stems\ntracks:\n  a: {{stem: {name}}}\n")
    assert main([str(session), "--quiet"]) == 1
    error = capsys.readouterr().err.splitlines()[0]
    assert error == (
        f"{session}:4:13: tracks.a.stem: the file is truncated: its header promises 96000 "
        f'frames, it holds {held}: "{stem}"'
    )
    assert not (tmp_path / "out").exists()


def test_report_only_names_a_truncated_output(
    demo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    session = str(demo_copy / "session.yaml")
    assert main([session, "--quiet", "--no-cache", "--out", str(out)]) == 0
    mix = out / "mix.wav"
    mix.write_bytes(mix.read_bytes()[:100_000])
    assert main([session, "--quiet", "--report-only", "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error == (
        f"{mix}: cannot read the written file back (the file is truncated: its header "
        "promises 1351955 frames, it holds 16659)\n"
    )


@pytest.mark.parametrize(
    ("elapsed_s", "duration_s", "shown"),
    [(2.18, 1.0, "0.5x"), (1.0, 9.94, "9.9x"), (3.0, 180.0, "60x")],
)
def test_the_time_line_shows_slow_speeds_to_a_decimal(
    elapsed_s: float, duration_s: float, shown: str
) -> None:
    assert time_line(elapsed_s, duration_s) == f"  time    {elapsed_s:.2f} s ({shown} realtime)"


def test_allocator_is_tuned_on_glibc() -> None:
    """On glibc (every Linux CI and user machine here) the block-friendly allocator settings
    take effect; mallopt returns 0 when it refuses one."""
    from render.memory import tune_allocator

    assert tune_allocator() is True


def test_out_that_is_a_file_blames_the_option(
    demo_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    assert main([str(demo_copy / "session.yaml"), "--out", str(a_file)]) == 1
    assert capsys.readouterr().err.startswith(f'--out: "{a_file}" is a file; expected a folder')


def test_a_killed_render_leaves_nothing_behind(demo_copy: Path, tmp_path: Path) -> None:
    """SIGKILL mid-write leaves no output renamed into place; its temporary (named with the
    dead process's id) is removed by the next render, while a live render's is kept."""
    out = tmp_path / "killed"
    script = (
        "import os, signal\n"
        "from render import audio_io, pcm_wav\n"
        "from render.cli import main\n"
        "def die(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "audio_io._write = pcm_wav.write_blocks = die\n"
        f"main([{str(demo_copy / 'session.yaml')!r}, '--quiet', '--no-cache', '--out', "
        f"{str(out)!r}])\n"
    )
    killed = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False)
    assert killed.returncode == -9
    (stale,) = out.iterdir()  # the temporary of mix.wav, nothing else
    assert stale.name.startswith(".mix.wav.") and stale.name.endswith(".partial")
    alive = out / f".x.wav.{os.getpid()}.abcdefgh.partial"
    alive.touch()
    assert main([str(demo_copy / "session.yaml"), "--quiet", "--out", str(out)]) == 0
    assert not stale.exists() and alive.exists()


def test_kernels_are_cached_outside_the_installed_sources(tmp_path: Path) -> None:
    """numba's cache goes to the user's cache folder (files beside an installed package
    outlive its uninstall), unless NUMBA_CACHE_DIR says otherwise; --check loads neither
    numba's compiler nor the engine."""
    probe = (
        "import sys, render.cli\n"
        "from numba.core import config\n"
        "print(config.CACHE_DIR)\n"
        "print(sorted({'render.pipeline', 'matplotlib', 'scipy.signal'} & set(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    folder, modules = run.stdout.splitlines()
    assert Path(folder).parent == tmp_path / "cache" / "render" / "numba"  # one per build
    assert modules == "[]"
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    run = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines()[0] == str(tmp_path / "mine")

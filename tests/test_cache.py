"""The render cache: entries are whole or not used, a cached render is the same bytes as a
cold one, a change renders what lies downstream of it (and says why), and a render that is
interrupted or killed leaves nothing that a later render would use."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from render import audio_io, pcm_wav
from render import cache as cache_module
from render import digests as digests_module
from render.cache import Cache, CacheOptions, parse_size
from render.cache_entry import MAGIC, DamagedEntry
from render.digests import InputDigests, file_sha256
from render.incremental import NOT_HELD
from render.pipeline import NO_CACHE, RenderResult, render_session
from render.session import LoadOptions, load_session
from tests.conftest import sine, write_stem

REPO = Path(__file__).parent.parent

SESSION = """\
version: 1
title: Cached
sample_rate: 48000
stems: stems
tempo: 120
tracks:
  kick: {stem: kick.wav, out: drums, inserts: [{eq: {highpass: 40 Hz}}]}
  snare: {stem: snare.wav, out: drums, pan: R20, sends: {room: -12 dB}}
  keys:
    stem: keys.wav
    pan: L30
    sends: {room: -9 dB}
    inserts: [{compressor: {threshold: -20 dB, ratio: 3}}, {reverb: {decay: 0.4 s}}]
  bass:
    stem: bass.wav
    inserts: [{compressor: {threshold: -24 dB, sidechain: kick}}, {saturation: {drive: 3 dB}}]
buses:
  drums: {inserts: [{compressor: {threshold: -12 dB, ratio: 2}}]}
  room: {inserts: [{reverb: {decay: 0.8 s}}]}
mix: {inserts: [{compressor: {threshold: -10 dB, ratio: 1.5}}]}
mastering:
  chain: [{limiter: {release: 50 ms}}]
  target: {loudness: -16 LUFS, true_peak: -1 dBTP}
output:
  master: [{format: flac, bit_depth: 24}, {format: wav, bit_depth: 16, sample_rate: 44100}]
"""


@pytest.fixture
def session_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A four-track session of 3 s stems (a sidechain, a reverb insert, two buses). Kick and
    snare have light inserts and are never cached; keys (reverb) and bass (saturation) are."""
    folder = tmp_path / "song"
    stems = folder / "stems"
    write_stem(stems / "kick.wav", sine(55, 3.0) * (np.arange(144_000) % 24_000 < 4_000))
    write_stem(stems / "snare.wav", 0.1 * rng.standard_normal((1, 144_000)))
    write_stem(stems / "keys.wav", np.vstack([sine(440, 3.0, 0.2), sine(660, 3.0, 0.2)]))
    write_stem(stems / "bass.wav", sine(82.4, 3.0, 0.4))
    (folder / "session.yaml").write_text(SESSION)
    return folder


def render(folder: Path, out: str, caching: CacheOptions) -> RenderResult:
    session = load_session(folder / "session.yaml", LoadOptions(out_dir=folder / out))
    return render_session(session, 2, caching=caching)


def cold(folder: Path, out: str = "cold") -> dict[str, str]:
    """The hashes of every file a render without cache writes."""
    return hashes(render(folder, out, NO_CACHE).manifest.parent)


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def cached(folder: Path) -> CacheOptions:
    return CacheOptions(folder=folder / "cache")


def test_cached_renders_equal_a_cold_render_and_say_why(session_dir: Path) -> None:
    """Cold with cache, warm, and after a change: every file the same bytes as a render
    without cache, and the account names what ran and why."""
    first = render(session_dir, "cold", cached(session_dir))
    assert not first.account.reused
    assert {reason for _, reason in first.account.rendered} == {"new"}
    assert hashes(session_dir / "cold") == hashes(
        render(session_dir, "a", NO_CACHE).manifest.parent
    )

    warm = render(session_dir, "warm", cached(session_dir))
    # Another output folder: the files are written again from the cached signals.
    assert dict(warm.account.rendered) == {
        "file mix.wav": NOT_HELD,
        "file Cached.flac": NOT_HELD,
        "file Cached.wav": NOT_HELD,
        "QC report": "its settings changed",
    }
    assert "mix" in warm.account.reused and "master" in warm.account.reused
    assert hashes(session_dir / "warm") == hashes(session_dir / "a")

    text = (session_dir / "session.yaml").read_text()
    (session_dir / "session.yaml").write_text(text.replace("highpass: 40 Hz", "highpass: 50 Hz"))
    changed = render(session_dir, "warm", cached(session_dir))
    ran = dict(changed.account.rendered)
    assert ran["tracks.kick"] == "its settings changed"
    assert ran["tracks.bass"] == "tracks.kick changed"  # keyed by the kick
    assert ran["buses.drums"] == "tracks.kick changed"
    assert {"tracks.keys", "buses.room"} <= set(changed.account.reused)
    assert "buses.room" not in ran
    assert ran["tracks.snare"] == "rendered every time (light inserts: cheaper than the cache)"
    assert hashes(session_dir / "warm") == hashes(
        render(session_dir, "b", NO_CACHE).manifest.parent
    )


def test_a_replaced_stem_is_named(session_dir: Path) -> None:
    render(session_dir, "out", cached(session_dir))
    write_stem(session_dir / "stems" / "keys.wav", sine(330, 3.0, 0.2))
    result = render(session_dir, "out", cached(session_dir))
    assert dict(result.account.rendered)["tracks.keys"] == "stems/keys.wav changed"
    assert "buses.drums" in result.account.reused
    assert "tracks.kick" not in dict(result.account.rendered)  # nothing needs it: not read
    assert hashes(session_dir / "out") == hashes(
        render(session_dir, "cold", NO_CACHE).manifest.parent
    )


def test_a_damaged_entry_is_rendered_again_never_used(session_dir: Path) -> None:
    """Flip one byte of every entry (audio or trailer): each is detected and rendered."""
    render(session_dir, "out", cached(session_dir))
    entries = list((session_dir / "cache" / "entries").iterdir())
    for entry in entries:
        data = bytearray(entry.read_bytes())
        data[len(data) // 3] ^= 0x40
        entry.write_bytes(bytes(data))
    result = render(session_dir, "out", cached(session_dir))
    assert result.account.reused == []
    assert hashes(session_dir / "out") == hashes(
        render(session_dir, "cold", NO_CACHE).manifest.parent
    )


def test_entries_round_trip_and_reject_damage(tmp_path: Path) -> None:
    cache = Cache(tmp_path, 10**9)
    blocks = [np.arange(10.0).reshape(2, 5), np.arange(10.0, 16.0).reshape(2, 3)]
    with cache.writer("k" * 64) as writer:
        writer.append(0, blocks[0], -blocks[0])
        writer.append(5, blocks[1], -blocks[1])
        writer.finish({"figure": 1.5})
    entry = cache.open("k" * 64)
    assert entry is not None and entry.value == {"figure": 1.5}
    whole = np.hstack(blocks)
    for offset, n in [(0, 8), (3, 4), (6, 4), (4, 1)]:
        expected = np.zeros((2, n))
        expected[:, : max(0, min(n, 8 - offset))] = whole[:, offset : offset + n]
        assert np.array_equal(entry.read(offset, n), expected)
        assert np.array_equal(entry.read(offset, n, 1), -expected)
    entry.close()
    lazy = cache.open("k" * 64, lazy=True)  # checked as served, in order
    assert lazy is not None
    assert np.array_equal(lazy.block(0, 5), np.stack([blocks[0], -blocks[0]]))
    assert np.array_equal(lazy.block(5, 3), np.stack([blocks[1], -blocks[1]]))
    lazy.close()
    path = tmp_path / "entries" / ("k" * 64)
    data = bytearray(path.read_bytes())
    data[len(MAGIC) + 8 * 12] ^= 1  # a bit of the second block's audio
    path.write_bytes(bytes(data))
    damaged = cache.open("k" * 64, lazy=True)
    assert damaged is not None  # its trailer and object are whole
    damaged.block(0, 5)
    with pytest.raises(DamagedEntry):
        damaged.block(5, 3)
    assert not path.exists()
    cache.store("t" * 64, {"figure": 2.5})
    truncated = tmp_path / "entries" / ("t" * 64)
    truncated.write_bytes(truncated.read_bytes()[:-20])
    assert cache.open("t" * 64) is None and not truncated.exists()


def test_an_unfinished_or_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path, 10**9)
    with cache.writer("a" * 64) as writer:
        writer.append(0, np.ones((2, 4)))  # never finished: the render stopped early
    with pytest.raises(KeyboardInterrupt), cache.writer("b" * 64) as writer:
        writer.append(0, np.ones((2, 4)))
        raise KeyboardInterrupt
    assert list((tmp_path / "entries").iterdir()) == []


class _FillingFile:
    """A cache file on a disk with ``room`` bytes left: a write past it fails as a full disk
    does (ENOSPC)."""

    def __init__(self, path: Path, room: int) -> None:
        self.file, self.room = open(path, "wb"), room  # noqa: SIM115  (closed by close)

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size > self.room:
            raise OSError(28, "No space left on device")
        self.room -= size
        return self.file.write(data)

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        self.file.close()


def full_cache_disk(monkeypatch: pytest.MonkeyPatch, room: int) -> None:
    """Cache entries written from now on fail once ``room`` bytes of each are written."""

    def filling(path: Path, mode: str) -> Any:
        return _FillingFile(path, room) if mode == "wb" else open(path, mode)

    monkeypatch.setattr(cache_module, "open", filling, False)


@pytest.mark.parametrize("room", [0, 100, 4_200])
def test_a_cache_write_that_fails_leaves_no_entry_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    """A full disk while writing an entry (at its start, in its blocks, in its trailer:
    the blocks take 4104 bytes with the magic) leaves neither the entry nor its temporary,
    and the cache keeps the reason."""
    cache = Cache(tmp_path, 10**9)
    full_cache_disk(monkeypatch, room)
    with cache.writer("a" * 64) as writer:
        writer.append(0, np.ones((2, 256)))
        writer.finish({"figure": 1.0})
    assert not writer.finished and writer.failure == "No space left on device"
    assert list((tmp_path / "entries").iterdir()) == []
    assert cache.unstored == ["No space left on device"]


def test_a_cache_folder_that_takes_no_file_leaves_no_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path, 10**9)

    def no_room(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io.tempfile, "mkstemp", no_room)
    cache.store("a" * 64, {"figure": 1.0})
    assert list((tmp_path / "entries").iterdir()) == []
    assert len(cache.unstored) == 1 and "No space left on device" in cache.unstored[0]


def test_a_cache_folder_deleted_during_a_render_stops_nothing(tmp_path: Path) -> None:
    """Deleting the cache while a render writes into it (``rm -rf .render-cache``) loses the
    entries being written, not the render: the entry being finished cannot take its name,
    later ones cannot be made, and eviction finds nothing to bound."""
    cache = Cache(tmp_path / "cache", 10)
    with cache.writer("a" * 64) as writer:
        writer.append(0, np.ones((2, 4)))
        shutil.rmtree(tmp_path / "cache")
        writer.finish()
    cache.store("b" * 64, {"figure": 1.0})
    assert cache.unstored == ["No such file or directory"] * 2
    assert cache.evict("song").freed_bytes == 0 and not (tmp_path / "cache").exists()


def test_a_full_cache_disk_does_not_stop_a_render(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache only saves time: a render whose entries cannot be written writes the
    files a cold render writes, warns, and the next render (with room again) is the same."""
    expected = cold(session_dir)
    full_cache_disk(monkeypatch, 300_000)  # the smaller entries fit, the strips do not
    result = render(session_dir, "full", cached(session_dir))
    assert hashes(session_dir / "full") == expected
    warning = result.account.warning
    assert warning is not None and "No space left on device" in warning
    assert f"could not be kept in {session_dir / 'cache'}" in warning
    assert [p for p in (session_dir / "cache" / "entries").iterdir() if p.name[0] == "."] == []
    monkeypatch.undo()
    again = render(session_dir, "again", cached(session_dir))
    assert hashes(session_dir / "again") == expected and again.account.warning is None
    assert render(session_dir, "again", cached(session_dir)).account.rendered == []


@pytest.mark.parametrize("record", ["[1, 2]", "null", '"x"', '{"mix": 5}', "{"])
def test_a_damaged_render_record_is_read_as_none(session_dir: Path, record: str) -> None:
    """The record of a session's last render (what each stage was made of) only explains
    and guides the next render: damaged, it is ignored, and the render is the same."""
    render(session_dir, "first", cached(session_dir))
    for path in (session_dir / "cache" / "renders").iterdir():
        path.write_text(record)
    result = render(session_dir, "again", cached(session_dir))
    assert hashes(session_dir / "again") == hashes(session_dir / "first")
    assert [stage for stage, _ in result.account.rendered if stage.startswith("file")] == [
        "file mix.wav",
        "file Cached.flac",
        "file Cached.wav",
    ]  # written into the new folder; everything else came from the cache
    assert dict(result.account.rendered)["QC report"] == "new"  # no record says what it was


@pytest.mark.parametrize("remembered", ["[1]", "null", "{NAME: 5}", "{NAME: [1, 2]}", "{"])
def test_damaged_remembered_hashes_are_read_again(session_dir: Path, remembered: str) -> None:
    """The stems' remembered hashes (``inputs.json``) only spare reading them: damaged, the
    stems are hashed again and the render is the same."""
    render(session_dir, "first", cached(session_dir))
    stem = json.dumps(str((session_dir / "stems" / "bass.wav").resolve()))
    (session_dir / "cache" / "inputs.json").write_text(remembered.replace("NAME", stem))
    render(session_dir, "again", cached(session_dir))
    assert hashes(session_dir / "again") == hashes(session_dir / "first")


def test_eviction_drops_the_least_recently_used(tmp_path: Path) -> None:
    for index, key in enumerate("abcd"):
        Cache(tmp_path, 10**9).store(key * 64, np.zeros(1_000))
        os.utime(tmp_path / "entries" / (key * 64), ns=(index * 10**9, index * 10**9))
    cache = Cache(tmp_path, 10**9)  # a new render: it has used nothing yet
    assert cache.load("a" * 64) is not None  # used now: kept over the others
    cache.max_bytes = 3 * (tmp_path / "entries" / ("a" * 64)).stat().st_size
    cache.evict("me")
    left = sorted(p.name[0] for p in (tmp_path / "entries").iterdir())
    assert left == ["a", "c", "d"]
    # A stem kept as a hard link costs nothing while the stem is there: nothing more goes,
    # and it stays when the cache is over its bound, though its mtime (the stem's own) is
    # the oldest: deleting it would free nothing.
    stem = tmp_path / "stem.wav"
    stem.write_bytes(bytes(10**6))
    os.utime(stem, ns=(0, 0))
    os.link(stem, tmp_path / "entries" / ("e" * 64))
    cache.evict("me")
    assert sorted(p.name[0] for p in (tmp_path / "entries").iterdir()) == ["a", "c", "d", "e"]
    cache.max_bytes //= 3
    cache.evict("me")
    assert sorted(p.name[0] for p in (tmp_path / "entries").iterdir()) == ["a", "e"]
    # Once the stem is gone, its kept copy takes space and goes by its age like any entry.
    stem.unlink()
    cache.evict("me")
    assert sorted(p.name[0] for p in (tmp_path / "entries").iterdir()) == ["a"]


def test_eviction_keeps_what_the_next_renders_reuse_longest(tmp_path: Path) -> None:
    """Entries go in this order, each group oldest first: unpinned and unused by this render,
    used by it, pinned by another session, pinned by this one. Evicting pinned entries is
    counted (the render warns); a pin whose entries are all gone is dropped."""
    names = "abcdef"
    for index, key in enumerate(names):
        Cache(tmp_path, 10**9).store(key * 64, np.zeros(1_000))
        age = 10**9 * (len(names) - index)  # a is the newest, f the oldest
        os.utime(tmp_path / "entries" / (key * 64), ns=(age, age))
    size = (tmp_path / "entries" / ("a" * 64)).stat().st_size
    Cache(tmp_path, 10**9).pin("other", ["d" * 64, "x" * 64])
    Cache(tmp_path, 10**9).pin("gone", ["y" * 64])  # nothing of it is left
    (tmp_path / "pins" / "damaged.json").write_text("5")  # pins nothing, breaks nothing
    cache = Cache(tmp_path, 10**9)
    cache.pin("me", ["e" * 64, "f" * 64])
    assert cache.load("c" * 64) is not None

    def left_after(entries: int) -> tuple[str, int, int]:
        cache.max_bytes = entries * size
        eviction = cache.evict("me")
        left = sorted(p.name[0] for p in (tmp_path / "entries").iterdir())
        return "".join(left), eviction.lost_bytes // size, eviction.others_lost_bytes // size

    cache.max_bytes = 10 * size
    eviction = cache.evict("me")
    assert (eviction.freed_bytes, eviction.pinned_bytes, eviction.all_pinned_bytes) == (
        0,
        2 * size,
        3 * size,
    )
    assert left_after(4) == ("cdef", 0, 0)  # a and b: neither used nor pinned, though newest
    assert left_after(3) == ("def", 0, 0)  # then what this render used
    assert left_after(2) == ("ef", 0, 1)  # then what another session pinned
    assert left_after(1) == ("e", 1, 0)  # last its own: the oldest first
    assert sorted(p.stem for p in (tmp_path / "pins").iterdir()) == ["damaged", "me"]


def test_a_render_warns_when_the_cache_cannot_keep_what_it_reuses(session_dir: Path) -> None:
    """Bounded below what the next render reuses, the cache says so and how much room it
    needs; with room enough it says nothing."""
    roomy = render(session_dir, "out", cached(session_dir))
    assert roomy.account.warning is None
    pinned = sum(
        (session_dir / "cache" / "entries" / key).stat().st_size
        for pins in (session_dir / "cache" / "pins").iterdir()
        for key in json.loads(pins.read_text())
        if (session_dir / "cache" / "entries" / key).exists()
    )
    tight = CacheOptions(folder=session_dir / "cache", max_bytes=pinned // 2)
    session = load_session(session_dir / "session.yaml", LoadOptions(out_dir=session_dir / "out"))
    warning = render_session(session, 2, caching=tight).account.warning
    assert warning is not None and "will be rendered again" in warning
    room = float(warning.rsplit("--cache-max ", 1)[1].removesuffix("GB")) * 10**9
    assert 2 * pinned <= room < 2 * pinned + 10**8


def test_input_digests_follow_the_file_not_its_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests_module, "RACY_NS", -1)  # remember even a file just written
    stem = tmp_path / "x.bin"
    stem.write_bytes(b"one")
    digests = InputDigests(tmp_path)
    assert digests.sha256(stem) == hashlib.sha256(b"one").hexdigest()
    digests.save()
    assert str(stem.resolve()) in InputDigests(tmp_path).known
    before = stem.stat()
    time.sleep(0.01)
    stem.write_bytes(b"two")  # same size; mtime put back, ctime cannot be
    os.utime(stem, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert InputDigests(tmp_path).sha256(stem) == hashlib.sha256(b"two").hexdigest()


def test_a_render_reads_each_input_once(session_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stems are hashed for the cache keys and the manifest takes those hashes, though
    the render's own hard link to each stem (its recipe) has changed the stem's ctime; the
    next render knows them all by that new identity."""
    monkeypatch.setattr(digests_module, "RACY_NS", -1)  # remember even a file just written
    hashed: list[str] = []
    real = digests_module.file_sha256
    monkeypatch.setattr(
        digests_module, "file_sha256", lambda path: hashed.append(path.name) or real(path)
    )
    render(session_dir, "out", cached(session_dir))
    assert sorted(hashed) == sorted(p.name for p in (session_dir / "stems").iterdir())
    hashed.clear()
    render(session_dir, "out", cached(session_dir))
    assert hashed == []


def test_a_file_written_just_now_is_hashed_again(tmp_path: Path) -> None:
    """Within a timestamp tick a second write could look like no change: not remembered."""
    stem = tmp_path / "x.bin"
    stem.write_bytes(b"one")
    digests = InputDigests(tmp_path)
    digests.sha256(stem)
    assert str(stem.resolve()) not in digests.known


@pytest.mark.parametrize(
    ("text", "size"),
    [("2GB", 2 * 10**9), ("500 MB", 500 * 10**6), ("1.5GiB", 3 * 2**29), ("4096", 4096)],
)
def test_cache_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bad_cache_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from render.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["x.yaml", "--cache-max", "lots"])
    assert stopped.value.code == 2
    assert "--cache-max: expected a size like 2GB or 500MB, got 'lots'" in capsys.readouterr().err


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_render_leaves_no_entry_that_is_used(session_dir: Path, how: int) -> None:
    """Stop a render while it writes cache entries; the next render's files equal a cold
    render's (whatever entries were complete are whole; the rest were never published)."""
    script = (
        "import os, signal, time\n"
        "import render.cache as cache\n"
        "original = cache.Writer.append\n"
        "count = [0]\n"
        "def append(self, *args):\n"
        "    original(self, *args)\n"
        "    count[0] += 1\n"
        "    if count[0] == 3:\n"
        f"        os.kill(os.getpid(), {int(how)})\n"
        "        time.sleep(5)\n"
        "cache.Writer.append = append\n"
        "from render.cli import main\n"
        f"raise SystemExit(main([{str(session_dir / 'session.yaml')!r}, '--quiet', "
        f"'--cache', {str(session_dir / 'cache')!r}]))\n"
    )
    stopped = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=False)
    assert stopped.returncode == (130 if how == signal.SIGINT else -9)
    entries = session_dir / "cache" / "entries"
    if how == signal.SIGINT:
        assert not any(p.name.endswith(".partial") for p in entries.iterdir())
    result = render(session_dir, "out", cached(session_dir))
    assert not any(p.name.endswith(".partial") for p in entries.iterdir())  # cleared
    assert result.account.rendered
    assert hashes(session_dir / "out") == hashes(
        render(session_dir, "cold", NO_CACHE).manifest.parent
    )


def test_two_renders_at_once_share_the_cache(session_dir: Path) -> None:
    """Two processes render the same session into one cache at the same time: both finish,
    and both write what a cold render writes."""
    command = [sys.executable, "-m", "render", str(session_dir / "session.yaml"), "--quiet"]
    command += ["--cache", str(session_dir / "cache"), "--jobs", "1"]
    runs = [subprocess.Popen([*command, "--out", str(session_dir / o)]) for o in ("p", "q")]
    assert [run.wait() for run in runs] == [0, 0]
    assert hashes(session_dir / "p") == hashes(session_dir / "q") == cold(session_dir)


def test_a_full_disk_while_writing_from_the_cache_is_one_line(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file written again for a render whose signals come from the cache fails like any
    write: one line, exit 1, and no output folder left behind."""
    from render.cli import main

    session = str(session_dir / "session.yaml")
    assert main([session, "--quiet", "--cache", str(session_dir / "cache")]) == 0

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(audio_io, "_write", full_disk)
    monkeypatch.setattr(pcm_wav, "write_blocks", full_disk)  # integer WAV, written as quantised
    out = session_dir / "elsewhere"
    command = [session, "--quiet", "--cache", str(session_dir / "cache"), "--out", str(out)]
    assert main(command) == 1
    error = capsys.readouterr().err
    assert error == f"{out / 'mix.wav'}: cannot write the file (No space left on device)\n"
    assert not out.exists()


def test_an_unwritable_default_cache_is_skipped_but_a_named_one_is_an_error(
    session_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session folder where no cache can be made (read-only, or a file in the way) still
    renders, and the summary says the cache was not used; a --cache DIR that cannot be used
    is the user's mistake and fails with one line."""
    from render.cli import main

    (session_dir / ".render-cache").write_text("not a folder")
    result = render(session_dir, "out", CacheOptions())
    assert result.account.note is not None and "cannot be written" in result.account.note
    assert hashes(session_dir / "out") == cold(session_dir)
    blocked = session_dir / ".render-cache"
    command = [str(session_dir / "session.yaml"), "--quiet", "--cache", str(blocked)]
    assert main(command) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"{blocked}: cannot use this folder as the render cache")
    assert len(error.splitlines()) == 1


def test_a_mastering_change_renders_only_the_master_and_after(session_dir: Path) -> None:
    render(session_dir, "out", cached(session_dir))
    text = (session_dir / "session.yaml").read_text()
    (session_dir / "session.yaml").write_text(text.replace("loudness: -16 LUFS", "loudness: -15"))
    result = render(session_dir, "out", cached(session_dir))
    ran = dict(result.account.rendered)
    assert "mix" in result.account.reused and "analysis of the mix" in result.account.reused
    assert ran["master"] == "its settings changed"
    assert not any(name.startswith(("tracks.", "buses.")) for name in ran)  # nothing read
    assert "file mix.wav" in result.account.reused
    assert hashes(session_dir / "out") == cold(session_dir)


def test_an_unchanged_render_reads_no_samples(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every stage cached and the files in place, neither the mix's samples nor a
    file's cached bytes are read: only the small entries that describe them."""
    render(session_dir, "out", cached(session_dir))
    loaded: list[int] = []
    real_open = Cache.open

    def counting_open(self: Cache, key: str, *, lazy: bool = False) -> object:
        entry = real_open(self, key, lazy=lazy)
        loaded.append((self.entries / key).stat().st_size if entry is not None else 0)
        return entry

    monkeypatch.setattr(Cache, "open", counting_open)
    result = render(session_dir, "out", cached(session_dir))
    assert not result.account.rendered
    assert "mix" in result.account.reused and "file mix.wav" in result.account.reused
    assert loaded and max(loaded) < 1_000_000  # 3 s of the stereo mix or master: 2.3 MB


def test_an_unchanged_render_makes_no_impulse_response(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The buffer length that the reverbs' tails decide is noted in the cache: an unchanged
    render takes it from there and synthesises no impulse response (which would start numba
    and scipy.signal); a changed decay makes it work the length out again."""
    from render.dsp import reverb

    render(session_dir, "out", cached(session_dir))
    made: list[float] = []
    real_synthetic_ir = reverb.synthetic_ir

    def counting(*args: Any, **kwargs: Any) -> np.ndarray:
        made.append(kwargs["decay_s"])
        return real_synthetic_ir(*args, **kwargs)

    monkeypatch.setattr(reverb, "synthetic_ir", counting)
    assert not render(session_dir, "out", cached(session_dir)).account.rendered
    assert made == []
    session_file = session_dir / "session.yaml"
    session_file.write_text(session_file.read_text().replace("decay: 0.8 s", "decay: 0.9 s"))
    changed = render(session_dir, "out", cached(session_dir))
    assert 0.9 in made and "buses.room" in dict(changed.account.rendered)
    assert hashes(session_dir / "out") == cold(session_dir)


def test_an_unchanged_render_loads_no_signal_library(session_dir: Path) -> None:
    """A render served whole from the cache never imports scipy.signal or scipy.fft (0.75 s
    of start-up), nor numba (0.2 s): the modules that use scipy's import it where they use
    it, and a kernel loads numba on its first call."""
    render(session_dir, "out", cached(session_dir))
    script = (
        "import sys; from pathlib import Path; from render.cache import CacheOptions; "
        "from render.pipeline import render_session; "
        "from render.session import LoadOptions, load_session; "
        f"folder = Path({str(session_dir)!r}); "
        "s = load_session(folder / 'session.yaml', LoadOptions(out_dir=folder / 'out')); "
        "r = render_session(s, 2, caching=CacheOptions(folder=folder / 'cache')); "
        "print(len(r.account.rendered), sorted(m for m in ('scipy.signal', 'scipy.fft', 'numba') "
        "if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "[]"]


def test_an_output_file_is_read_once_per_render(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking that a cached output file is still in place and listing it in the manifest
    share one reading of it, in a cold render (stored, then listed) and an unchanged one."""
    from render import incremental, manifest

    read: list[str] = []

    def counting(path: Path) -> str:
        read.append(path.name)
        return file_sha256(path)

    monkeypatch.setattr(incremental, "file_sha256", counting)
    monkeypatch.setattr(manifest, "file_sha256", counting)
    for _ in range(2):
        read.clear()
        render(session_dir, "out", cached(session_dir))
        assert read.count("mix.wav") == 1


def test_a_mix_entry_lost_after_its_brief_is_rendered_again(
    session_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mix is known from its brief, but its samples fail their check when the master
    needs them (or were evicted meanwhile): the mix is rendered again, to the same bytes."""
    from render.graph import plan
    from render.incremental import Incremental

    render(session_dir, "out", cached(session_dir))
    session = load_session(session_dir / "session.yaml", LoadOptions(out_dir=session_dir / "out"))
    mix_key = Incremental(session, cached(session_dir)).keys.strips(plan(session))[1].key
    real_load = Cache.load
    monkeypatch.setattr(
        Cache, "load", lambda self, key: None if key == mix_key else real_load(self, key)
    )
    text = (session_dir / "session.yaml").read_text()
    (session_dir / "session.yaml").write_text(text.replace("loudness: -16 LUFS", "loudness: -15"))
    result = render(session_dir, "out", cached(session_dir))
    assert "mix" in result.account.reused  # known from its brief
    assert hashes(session_dir / "out") == cold(session_dir)


def test_a_deleted_output_is_written_again_from_its_cached_signal(session_dir: Path) -> None:
    render(session_dir, "out", cached(session_dir))
    before = hashes(session_dir / "out")
    (session_dir / "out" / "mix.wav").unlink()
    result = render(session_dir, "out", cached(session_dir))
    assert dict(result.account.rendered)["file mix.wav"] == NOT_HELD
    assert "mix" in result.account.reused
    assert hashes(session_dir / "out") == before


SENDS = """\
version: 1
title: Sends
sample_rate: 48000
stems: stems
tracks:
  one: {stem: one.wav, out: group, sends: {verb: -12 dB}, inserts: [{eq: {highpass: 40 Hz}}]}
  two: {stem: two.wav, out: group, pan: L40, sends: {verb: -9 dB}}
  three: {stem: three.wav, out: group, pan: R40, sends: {verb: -15 dB}}
  four:
    stem: four.wav
    out: group
    sends: {verb: -6 dB}
    inserts: [{compressor: {threshold: -20 dB}}]
buses:
  group: {inserts: [{compressor: {threshold: -18 dB, ratio: 2}}]}
  verb: {inserts: [{reverb: {decay: 0.5 s}}]}
"""
GROUP_LINE = "  group: {inserts: [{compressor: {threshold: -18 dB, ratio: 2}}]}\n"


@pytest.fixture
def sends_dir(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Four light tracks into a group bus, each sending to a reverb bus: both buses keep
    their input sums."""
    folder = tmp_path / "sends"
    for index, name in enumerate(["one", "two", "three", "four"]):
        noise = 0.1 * rng.standard_normal((1 + index % 2, 96_000))
        write_stem(folder / "stems" / f"{name}.wav", noise)
    (folder / "session.yaml").write_text(SENDS)
    return folder


def sums_reused(result: RenderResult) -> list[str]:
    """The cached bus sums a render used, with how (``input of ... (updated for ...)``)."""
    return [name for name in result.account.reused if name.startswith("input")]


def straight_to_mix(folder: Path, more: str = "") -> str:
    """The sends session with every track straight to the mix (no group bus), and ``more``:
    written, and its text returned."""
    text = (folder / "session.yaml").read_text().replace("out: group, ", "")
    text = text.replace("    out: group\n", "").replace(GROUP_LINE, "") + more
    (folder / "session.yaml").write_text(text)
    return text


@pytest.mark.parametrize("limiter", ["", ", {limiter: {release: 50 ms}}"])
def test_a_changed_track_updates_the_cached_bus_sum(sends_dir: Path, limiter: str) -> None:
    """One track's EQ changed: its earlier signal is taken out of the reverb's cached input
    and its new one summed in; the other tracks are not rendered, and every byte equals a
    render without the cache. The earlier signal is rendered again block by block, or
    whole where the track's chain cannot stream (a limiter)."""
    text = (sends_dir / "session.yaml").read_text().replace("40 Hz}}", "40 Hz}}" + limiter)
    (sends_dir / "session.yaml").write_text(text)
    render(sends_dir, "out", cached(sends_dir))
    (sends_dir / "session.yaml").write_text(text.replace("highpass: 40 Hz", "highpass: 90 Hz"))
    result = render(sends_dir, "out", cached(sends_dir))
    assert "input of buses.verb (updated for one)" in result.account.reused
    assert "input of buses.group (updated for one)" in result.account.reused
    ran = dict(result.account.rendered)
    assert ran["tracks.one"] == "its settings changed"
    assert not {"tracks.two", "tracks.three", "tracks.four"} & set(ran)
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_sum_updated_for_one_strip_is_kept_as_it_was(
    sends_dir: Path, rng: np.random.Generator
) -> None:
    """The sums updated for one track are not written back: the next change to that track
    updates the first render's sums again (taking out its first signal). A change to a
    second track then updates them for both and writes them back; each update bit-exact."""
    for name in ("five", "six"):  # six inputs: two may change
        write_stem(sends_dir / "stems" / f"{name}.wav", 0.1 * rng.standard_normal((1, 96_000)))
    text = (
        (sends_dir / "session.yaml")
        .read_text()
        .replace(
            "buses:",
            "  five: {stem: five.wav, out: group, sends: {verb: -9 dB}}\n"
            "  six: {stem: six.wav, out: group, sends: {verb: -9 dB}}\nbuses:",
        )
    )

    def verb_sum() -> object:  # what the cache's record says the reverb's cached sum holds
        (record,) = (sends_dir / "cache" / "renders").iterdir()
        return json.loads(record.read_text())["input of buses.verb"]

    ran: dict[str, str] = {}  # what the last render ran, and why

    def render_with(old: str, new: str) -> list[str]:
        (sends_dir / "session.yaml").write_text(text.replace(old, new))
        result = render(sends_dir, "out", cached(sends_dir))
        assert hashes(sends_dir / "out") == cold(sends_dir)
        ran.clear()
        ran.update(result.account.rendered)
        return result.account.reused

    render_with("", "")
    first = verb_sum()
    for highpass in ("90 Hz", "120 Hz"):
        assert "input of buses.verb (updated for one)" in render_with("40 Hz", highpass)
        assert verb_sum() == first
        assert "mix" in render_with("40 Hz", highpass)  # unchanged: the kept sum stays named
        assert verb_sum() == first
    text = text.replace("40 Hz", "120 Hz")
    assert "input of buses.verb (updated for one, two)" in render_with("L40", "L30")
    # "one" did not change, but the sums held its first output: it rendered to replace it.
    assert ran["tracks.one"] == "replaced its earlier output in the cached input of " + (
        "buses.group, buses.verb"
    )
    written = verb_sum()
    assert written != first
    assert "input of buses.verb (updated for two)" in render_with("L40", "L20")
    assert verb_sum() == written
    # The reverb's fader moved: its sum, kept for "two", is needed, but "two" is not being
    # tuned any more: written back.
    text = text.replace("L40", "L20")
    fader = ("  verb: {inserts", "  verb: {gain: -1 dB, inserts")
    assert "input of buses.verb (updated for two)" in render_with(*fader)
    assert verb_sum() not in (first, written)
    text = text.replace(*fader)
    written = verb_sum()
    text = text.replace(  # a changed input and a new one: written back
        "buses:", "  seven: {stem: six.wav, out: group, sends: {verb: -3 dB}}\nbuses:"
    )
    assert "input of buses.verb (updated for two)" in render_with("L20", "L10")
    assert verb_sum() not in (first, written)


def test_the_mix_bus_keeps_its_input_sum_too(sends_dir: Path) -> None:
    """Tracks straight to the mix: one changed track updates the mix's cached input, so the
    others are not rendered; a change to the mix bus's own chain renders no strip at all.
    Every byte equals a render without the cache."""
    text = (sends_dir / "session.yaml").read_text()
    text = text.replace("out: group, ", "").replace("    out: group\n", "")
    text = text.split("buses:")[0].replace("sends: {verb: -12 dB}, ", "")
    for level in ("-9", "-15", "-6"):
        text = text.replace(f", sends: {{verb: {level} dB}}", "")
        text = text.replace(f"    sends: {{verb: {level} dB}}\n", "")
    text += "mix: {inserts: [{compressor: {threshold: -20 dB, ratio: 2}}]}\n"
    (sends_dir / "session.yaml").write_text(text)
    render(sends_dir, "out", cached(sends_dir))

    (sends_dir / "session.yaml").write_text(text.replace("40 Hz", "90 Hz"))
    result = render(sends_dir, "out", cached(sends_dir))
    assert "input of the mix (updated for one)" in result.account.reused
    assert (
        set(dict(result.account.rendered)) & {"tracks.two", "tracks.three", "tracks.four"} == set()
    )
    assert hashes(sends_dir / "out") == cold(sends_dir)

    (sends_dir / "session.yaml").write_text(text.replace("ratio: 2", "ratio: 3"))
    result = render(sends_dir, "out", cached(sends_dir))
    assert "input of the mix (unchanged)" in result.account.reused
    assert not any(name.startswith("tracks.") for name in dict(result.account.rendered))
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_mix_bus_change_renders_no_track(sends_dir: Path) -> None:
    """Tracks straight to the mix, each sending to a reverb: a change to the mix bus's chain
    renders no track; the reverb, which the mix's sum does not cover (its earlier output is
    not kept), runs again over its own cached sum."""
    text = straight_to_mix(sends_dir, "mix: {inserts: [{compressor: {threshold: -21 dB}}]}\n")
    render(sends_dir, "out", cached(sends_dir))
    (sends_dir / "session.yaml").write_text(text.replace("-21 dB}", "-25 dB}"))
    result = render(sends_dir, "out", cached(sends_dir))
    unchanged = ["input of buses.verb (unchanged)", "input of the mix (unchanged)"]
    assert sums_reused(result) == unchanged
    assert [name for name, _ in result.account.rendered][:2] == ["buses.verb", "mix"]
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_reverb_bus_output_is_kept_from_a_render_that_left_its_input_as_it_was(
    sends_dir: Path,
) -> None:
    """A reverb bus with four inputs keeps its input sum and its output too. A change to
    the group bus leaves the reverb's input as it was: the reverb runs over its cached sum
    and its output is recorded, so the next such change serves it from the cache. A track
    change runs it again over the updated sum without recording it (the track is most
    likely changed again next). Every byte equals a render without the cache."""
    text = (sends_dir / "session.yaml").read_text()
    render(sends_dir, "out", cached(sends_dir))

    def render_with(old: str, new: str) -> RenderResult:
        (sends_dir / "session.yaml").write_text(text.replace(old, new))
        result = render(sends_dir, "out", cached(sends_dir))
        assert hashes(sends_dir / "out") == cold(sends_dir)
        return result

    ran = dict(render_with("ratio: 2", "ratio: 3").account.rendered)
    assert ran["buses.verb"] == "not in the cache"
    result = render_with("ratio: 2", "ratio: 4")
    assert "buses.verb" in result.account.reused
    assert "buses.verb" not in dict(result.account.rendered)
    assert "input of buses.verb (unchanged)" not in result.account.reused  # not even opened
    text = text.replace("ratio: 2", "ratio: 4")
    ran = dict(render_with("40 Hz", "90 Hz").account.rendered)
    assert "buses.verb" in ran and "tracks.one" in ran
    text = text.replace("40 Hz", "90 Hz")
    ran = dict(render_with("ratio: 4", "ratio: 5").account.rendered)
    assert ran["buses.verb"] == "not in the cache"  # nothing was kept of the track change's


def test_a_mix_sum_covers_the_tracks_and_sums_the_returns_afresh(sends_dir: Path) -> None:
    """Tracks straight to the mix, each sending to a reverb whose output is not cached: the
    mix's cached sum holds the tracks only, so one changed track is taken out of it and
    added again while the reverb, rendered anew, is summed in beside; no other track renders.
    Every byte equals a render without the cache."""
    text = straight_to_mix(sends_dir)
    render(sends_dir, "out", cached(sends_dir))
    (sends_dir / "session.yaml").write_text(text.replace("40 Hz", "90 Hz"))
    result = render(sends_dir, "out", cached(sends_dir))
    assert sums_reused(result) == [
        "input of buses.verb (updated for one)",
        "input of the mix (updated for one)",
    ]
    assert [name for name in dict(result.account.rendered) if name.startswith("tracks")] == [
        "tracks.one"
    ]
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_sum_the_mix_does_not_need_is_not_opened(sends_dir: Path) -> None:
    """A group bus feeding a cached sub-bus: after a change to one of its tracks (its sum
    kept as it was), a change to the mix bus's chain serves the sub-bus from the cache, so
    the group's sum is neither updated nor named."""
    text = (
        (sends_dir / "session.yaml")
        .read_text()
        .replace(
            GROUP_LINE,
            "  group: {out: sub, inserts: [{compressor: {threshold: -18 dB, ratio: 2}}]}\n"
            "  sub: {inserts: [{compressor: {threshold: -12 dB}}]}\n",
        )
    )
    text += "mix: {inserts: [{compressor: {threshold: -20 dB, ratio: 2}}]}\n"
    (sends_dir / "session.yaml").write_text(text)
    render(sends_dir, "out", cached(sends_dir))
    text = text.replace("40 Hz", "90 Hz")
    (sends_dir / "session.yaml").write_text(text)
    reused = render(sends_dir, "out", cached(sends_dir)).account.reused
    assert "input of buses.group (updated for one)" in reused

    mix_line = "mix: {inserts: [{compressor: {threshold: -20 dB, ratio: 2}}]}"
    (sends_dir / "session.yaml").write_text(text.replace(mix_line, mix_line.replace("2", "3")))
    result = render(sends_dir, "out", cached(sends_dir))
    assert "buses.sub" in result.account.reused
    assert not any("group" in name for name in result.account.reused if name.startswith("input"))
    assert "tracks.two" not in dict(result.account.rendered)
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_stem_replaced_by_a_new_file_updates_the_sum_one_overwritten_does_not(
    sends_dir: Path, rng: np.random.Generator
) -> None:
    """A stem replaced as git or rsync do (a new file renamed over it) leaves the cache's
    link to its earlier bytes intact, so the sum is updated; one overwritten in place
    (the same inode) changes that link too, so the bus is summed afresh. Both give a cold
    render's bytes."""
    render(sends_dir, "out", cached(sends_dir))
    stem = sends_dir / "stems" / "three.wav"
    write_stem(sends_dir / "new.wav", 0.1 * rng.standard_normal((1, 96_000)))
    os.replace(sends_dir / "new.wav", stem)
    result = render(sends_dir, "out", cached(sends_dir))
    assert "input of buses.verb (updated for three)" in result.account.reused
    assert "tracks.one" not in dict(result.account.rendered)
    assert hashes(sends_dir / "out") == cold(sends_dir)

    time.sleep(0.01)
    write_stem(sends_dir / "stems" / "two.wav", 0.1 * rng.standard_normal((1, 96_000)))
    result = render(sends_dir, "out", cached(sends_dir))
    assert not any(name.startswith("input of") for name in result.account.reused)
    assert dict(result.account.rendered)["tracks.one"] == (
        "summed afresh into buses.group, buses.verb: no cached input close enough to update"
    )
    assert hashes(sends_dir / "out") == cold(sends_dir)


def test_a_full_cache_keeps_what_takes_a_replaced_stem_out_of_a_sum(
    sends_dir: Path, rng: np.random.Generator
) -> None:
    """A replaced stem's earlier bytes (the cache's link to them, now its only name, with
    the stem's old mtime) are what the sums still holding it are updated with: a render that
    must evict keeps them, with everything else the next render reuses, and drops the rest.
    The next change to that track then updates the sums, and names the track it summed
    again."""
    render(sends_dir, "out", cached(sends_dir))
    stem = sends_dir / "stems" / "two.wav"
    write_stem(sends_dir / "new.wav", 0.1 * rng.standard_normal((1, 96_000)))
    os.replace(sends_dir / "new.wav", stem)
    assert (
        "input of buses.verb (updated for two)"
        in render(sends_dir, "out", cached(sends_dir)).account.reused
    )
    entries = sends_dir / "cache" / "entries"
    (pins,) = (sends_dir / "cache" / "pins").iterdir()
    pinned = {key for key in json.loads(pins.read_text()) if (entries / key).exists()}
    before = {path.name for path in entries.iterdir()}
    taking = [(entries / key).stat() for key in pinned]  # a link to a stem takes no room
    room = sum(status.st_size for status in taking if status.st_nlink == 1)
    tight = CacheOptions(folder=sends_dir / "cache", max_bytes=room)
    session = load_session(sends_dir / "session.yaml", LoadOptions(out_dir=sends_dir / "out"))
    assert render_session(session, 2, caching=tight).account.warning is None
    left = {path.name for path in entries.iterdir()}
    assert pinned <= left < before

    text = (sends_dir / "session.yaml").read_text()
    (sends_dir / "session.yaml").write_text(text.replace("pan: L40", "pan: L20"))
    result = render(sends_dir, "out", cached(sends_dir))
    assert "input of buses.verb (updated for two)" in result.account.reused
    assert "tracks.one" not in dict(result.account.rendered)
    assert hashes(sends_dir / "out") == cold(sends_dir)

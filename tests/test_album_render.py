"""Album builds: album loudness keeps the songs' differences (mode album) or levels them
(mode track), every file holds the ceiling, and the bytes do not depend on --jobs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from jsonschema import Draft202012Validator
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from referencing import Registry, Resource

from render.album.build import AlbumResult, render_album
from render.album.load import load_album
from render.album.reuse import REUSED
from render.cache import Cache, CacheOptions
from render.cli import main
from render.measure import measure
from render.pipeline import NO_CACHE
from render.report.album_json import album_report_json
from render.session.validate import load_schema
from tests.album_fixtures import OWN_TARGETS_LUFS, write_album
from tests.conftest import write_stem
from tests.ebur128 import ffmpeg_ebur128

ALBUM = """\
version: 1
title: Test Album
artist: Test Artist
year: 2026
upc: '012345678905'
songs:
  - {{session: song1/session.yaml, isrc: GBAYE2600001}}
  - {{session: song2/session.yaml, title: Second}}
  - {{session: song3/session.yaml}}
loudness: {{mode: {mode}, target: {{loudness: -12 LUFS, true_peak: -1 dBTP}}}}
deliver:
  tracks:
    - {{format: flac, bit_depth: 24}}
    - {{format: wav, bit_depth: 16, sample_rate: 44100}}
    - {{format: mp3, bitrate: 192}}
  album: {{format: flac, bit_depth: 16, sample_rate: 44100}}
"""


def build(folder: Path, mode: str, jobs: int, caching: CacheOptions = NO_CACHE) -> AlbumResult:
    rng = np.random.default_rng(20261202)
    album = load_album(write_album(rng, folder, ALBUM.format(mode=mode)))
    return render_album(album, jobs, caching=caching)


def digests(result: AlbumResult) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(result.album.out_dir.iterdir())
    }


@pytest.fixture(scope="module")
def album_mode(tmp_path_factory: pytest.TempPathFactory) -> AlbumResult:
    return build(tmp_path_factory.mktemp("album"), "album", jobs=1)


def written_loudness(result: AlbumResult, deliverable: int = 0) -> list[float]:
    """Each song's integrated loudness as its file reads back, by our meter."""
    out = []
    for finished in result.songs:
        x, rate = sf.read(finished.files[deliverable].path, dtype="float64", always_2d=True)
        out.append(measure(x.T, rate).integrated_lufs)
    return out


def test_album_mode_keeps_relative_levels_and_puts_the_loudest_on_target(
    album_mode: AlbumResult,
) -> None:
    """Own levels within the search tolerance (0.02 LU) of each session's target; after the
    album offset, every difference between two songs is the same within 0.1 LU, and the
    loudest song reads -12 LUFS within 0.1 LU, by our meter and by ffmpeg's."""
    own = [level.loudness_lufs for level in album_mode.levels]
    assert own == pytest.approx(OWN_TARGETS_LUFS, abs=0.02)
    for deliverable in (0, 1):
        after = written_loudness(album_mode, deliverable)
        assert max(after) == pytest.approx(-12.0, abs=0.1)
        for i in range(3):
            for j in range(i + 1, 3):
                assert after[i] - after[j] == pytest.approx(own[i] - own[j], abs=0.1)
    loudest = album_mode.songs[0].files[0].path
    assert ffmpeg_ebur128(loudest).integrated_lufs == pytest.approx(-12.0, abs=0.2)


def test_every_track_file_holds_the_ceiling(album_mode: AlbumResult) -> None:
    for finished in album_mode.songs:
        for file in finished.files:
            assert max(file.figures.loudness.true_peak_dbtp) <= -1.0


def test_track_mode_puts_every_song_on_target(tmp_path: Path) -> None:
    result = build(tmp_path, "track", jobs=1)
    assert written_loudness(result) == pytest.approx([-12.0] * 3, abs=0.1)


def test_jobs_1_and_2_write_identical_bytes(album_mode: AlbumResult, tmp_path: Path) -> None:
    parallel = build(tmp_path, "album", jobs=2)
    assert digests(parallel) == digests(album_mode)
    assert len(digests(parallel)) == 3 * 3 + 4  # album file, CUE sheet, album-qc.json/html


def test_a_cached_album_writes_the_same_bytes(album_mode: AlbumResult, tmp_path: Path) -> None:
    """Built again with nothing changed and every file as written, the album renders and
    writes nothing. With one file gone, it is built again, each song's mix, limiter input
    and own level from the render cache; with one song changed, only that song renders and
    only its track files are written again. Every file is the same bytes as a build without
    the cache."""
    caching = CacheOptions(folder=tmp_path / "cache")
    first = build(tmp_path, "album", jobs=2, caching=caching)
    assert all(level.cache.rendered and not level.cache.reused for level in first.levels)
    written = {path: path.stat().st_mtime_ns for path in first.album.out_dir.iterdir()}

    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert [level.cache.note for level in again.levels] == [REUSED] * 3
    assert all(done.kept for done in again.songs) and not any(d.kept for d in first.songs)
    assert {path: path.stat().st_mtime_ns for path in written} == written
    assert album_report_json(again.report) == album_report_json(first.report)

    first.songs[1].files[0].path.unlink()
    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert all(not level.cache.rendered for level in again.levels)
    assert {"mix", "limiter input", "own level"} <= set(again.levels[0].cache.reused)
    assert digests(first) == digests(again) == digests(album_mode)

    session = tmp_path / "song2" / "session.yaml"
    session.write_text(session.read_text().replace("gain: -6 dB", "gain: -7 dB"))
    times = {path: path.stat().st_mtime_ns for path in first.album.out_dir.iterdir()}
    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert [bool(level.cache.rendered) for level in again.levels] == [False, True, False]
    assert [done.kept for done in again.songs] == [True, False, True]
    # Song 2 is mastered to its own level, so its goal, and the others', stays: songs 1 and
    # 3 are not finished again, their track files left as they were.
    kept = [file.path for index in (0, 2) for file in first.songs[index].files]
    assert all(path.stat().st_mtime_ns == times[path] for path in kept)
    assert all(f.path.stat().st_mtime_ns != times[f.path] for f in again.songs[1].files)
    session.write_text(session.read_text().replace("gain: -7 dB", "gain: -6 dB"))
    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert all(not level.cache.rendered for level in again.levels)  # its files were replaced
    assert digests(again) == digests(album_mode)
    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert [level.cache.note for level in again.levels] == [REUSED] * 3


def test_a_full_cache_keeps_what_an_album_rebuild_reuses(tmp_path: Path) -> None:
    """Evicted down to what the songs and the album pinned, the cache still holds each
    song's mix and limiter input and each finished song with its master: after one song
    changed, the others keep their files, and every byte equals a build without the cache."""
    root = tmp_path / "cache"
    caching = CacheOptions(folder=root)
    build(tmp_path, "album", jobs=2, caching=caching)
    entries = root / "entries"
    pinned = {key for pins in (root / "pins").iterdir() for key in json.loads(pins.read_text())}
    taking = [(entries / key).stat() for key in pinned if (entries / key).exists()]
    room = sum(status.st_size for status in taking if status.st_nlink == 1)
    assert Cache(root, room).evict("nobody").freed_bytes > 0

    session = tmp_path / "song2" / "session.yaml"
    session.write_text(session.read_text().replace("gain: -6 dB", "gain: -7 dB"))
    again = render_album(load_album(tmp_path / "album.yaml"), 2, caching=caching)
    assert [bool(level.cache.rendered) for level in again.levels] == [False, True, False]
    assert [done.kept for done in again.songs] == [True, False, True]
    cached_bytes = digests(again)
    assert digests(render_album(load_album(tmp_path / "album.yaml"), 2)) == cached_bytes


def test_a_cache_too_small_for_the_album_warns_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The songs pin what they reuse and leave the cache to the album, which bounds it once
    all are kept: too small for them all, it says so once, with the room that keeps them,
    and what is left fits the bound (links to stems take none)."""
    album = write_album(np.random.default_rng(1), tmp_path, ALBUM.format(mode="album"))
    cache = tmp_path / "cache"
    assert main([str(album), "--jobs", "1", "--cache", str(cache), "--cache-max", "1MB"]) == 0
    out = capsys.readouterr().out
    assert out.count("warning:") == 1
    assert "  cache   warning: bounded to 1 MB, the cache could not keep what" in out
    left = [path.stat() for path in (cache / "entries").iterdir()]
    assert sum(status.st_size for status in left if status.st_nlink == 1) <= 10**6


def test_a_failing_song_fails_the_album_with_its_own_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged stem fails its song with the session's file:line:key, in
    a worker process; the other songs' files are complete, none is left half-written."""
    album = write_album(np.random.default_rng(1), tmp_path, ALBUM.format(mode="track"))
    damaged = np.zeros((2, 48_000))
    damaged[0, 1000] = np.nan  # found only while decoding, after the album validated
    write_stem(tmp_path / "song2" / "stems" / "noise.wav", damaged)
    assert main([str(album), "--jobs", "2", "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "song2/session.yaml:6:" in error and "tracks.noise.stem" in error
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        f"{song}.{kind}" for song in ("01 Song 1", "03 Song 3") for kind in ("flac", "mp3", "wav")
    ]


def test_tags_read_back_with_mutagen(album_mode: AlbumResult) -> None:
    """Title, artist, album, track number, ISRC, year and UPC, as the album file says, in the
    FLAC and MP3 track files and the album file."""
    album = album_mode.album
    for song, finished in zip(album.songs, album_mode.songs, strict=True):
        flac, _, mp3 = (file.path for file in finished.files)
        vorbis = FLAC(flac)
        assert {key: vorbis[key] for key in vorbis} == {
            "title": [song.title],
            "artist": ["Test Artist"],
            "album": ["Test Album"],
            "tracknumber": [str(song.number)],
            "tracktotal": ["3"],
            "date": ["2026"],
            "barcode": ["012345678905"],
            **({"isrc": [song.isrc]} if song.isrc else {}),
        }
        id3 = ID3(mp3)
        assert id3["TIT2"].text == [song.title] and id3["TPE1"].text == ["Test Artist"]
        assert id3["TALB"].text == ["Test Album"] and id3["TRCK"].text == [f"{song.number}/3"]
        assert str(id3["TDRC"].text[0]) == "2026"
        assert id3["TXXX:BARCODE"].text == ["012345678905"]
        assert ("TSRC" in id3) == (song.isrc is not None)
    assert FLAC(album_mode.songs[0].files[0].path)["isrc"] == ["GBAYE2600001"]
    assert album_mode.album_file is not None
    whole = FLAC(album_mode.album_file.written.path)
    assert (whole["title"], whole["album"], whole["date"]) == (["Test Album"],) * 2 + (["2026"],)
    assert "tracknumber" not in whole


def test_album_qc_report_files(album_mode: AlbumResult) -> None:
    """album-qc.json follows its schema and holds each song's loudness as written and the
    spread of the own levels (-14 to -20 LUFS: 6 LU); album-qc.html has its two plots and
    denies the page the network."""
    qc_json, qc_html = album_mode.report_files
    document = json.loads(qc_json.read_text())
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema))
        for schema in map(load_schema, ("qc.schema.json", "album-qc.schema.json"))
    )
    Draft202012Validator(load_schema("album-qc.schema.json"), registry=registry).validate(document)
    assert document["loudness_spread_lu"] == pytest.approx(6.0, abs=0.1)
    written = written_loudness(album_mode)
    for song, loudness in zip(document["songs"], written, strict=True):
        assert song["file"]["integrated_lufs"] == pytest.approx(loudness, abs=0.001)
    tracks = document["album_file"]["tracks"]
    assert [track["index_01_sample"] * 75 for track in tracks] == [
        track["index_01_frames"] * 44_100 for track in tracks
    ]
    page = qc_html.read_text()
    assert page.count('<img src="data:image/png;base64,') == 2
    assert "default-src 'none'" in page

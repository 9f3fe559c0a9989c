"""Tags of the album's files, written with mutagen: title, artist, album, track number,
ISRC, year (and the release's UPC). FLAC files get Vorbis comments (the field names of the
Xiph recommendation: TITLE, ARTIST, ALBUM, TRACKNUMBER, TRACKTOTAL, ISRC, DATE, BARCODE);
MP3 files an ID3v2.4 tag (TIT2, TPE1, TALB, TRCK "n/total", TSRC, TDRC, TXXX:BARCODE).
Other formats are written untagged. Tags hold no time and no tool version, so a tagged file
is as reproducible as its audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TDRC, TIT2, TPE1, TRCK, TSRC, TXXX, ID3NoHeaderError

from render.album.model import Album, Song
from render.errors import OutputError

TAGGED_FORMATS = ("flac", "mp3")


@dataclass(frozen=True)
class Tags:
    """What a file says about itself; ``track`` None for the continuous album file."""

    title: str
    album: str
    artist: str | None = None
    track: int | None = None
    tracks: int | None = None
    isrc: str | None = None
    year: int | None = None
    upc: str | None = None

    def vorbis(self) -> dict[str, str]:
        fields = {
            "TITLE": self.title,
            "ARTIST": self.artist,
            "ALBUM": self.album,
            "TRACKNUMBER": self.track,
            "TRACKTOTAL": self.tracks if self.track is not None else None,
            "ISRC": self.isrc,
            "DATE": self.year,
            "BARCODE": self.upc,
        }
        return {key: str(value) for key, value in fields.items() if value is not None}


def song_tags(album: Album, song: Song) -> Tags:
    return Tags(
        song.title,
        album.title,
        album.artist,
        song.number,
        len(album.songs),
        song.isrc,
        album.year,
        album.upc,
    )


def album_tags(album: Album) -> Tags:
    return Tags(album.title, album.title, album.artist, year=album.year, upc=album.upc)


def write_tags(tags: Tags, path: Path, file_format: str) -> None:
    """Tag the file at ``path`` (a finished ``file_format`` file) in place."""
    try:
        if file_format == "flac":
            _flac(tags, path)
        elif file_format == "mp3":
            _id3(tags, path)
    except Exception as e:  # mutagen raises its own error classes per format
        raise OutputError(f"{path}: cannot write the tags ({e})") from e


def _flac(tags: Tags, path: Path) -> None:
    audio = FLAC(path)
    audio.clear()  # only what this render says, whatever the encoder wrote
    for key, value in tags.vorbis().items():
        audio[key] = value
    audio.save(deleteid3=True)


def _id3(tags: Tags, path: Path) -> None:
    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        id3 = ID3()
    id3.delete(path)
    id3.clear()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TALB(encoding=3, text=tags.album))
    if tags.artist is not None:
        id3.add(TPE1(encoding=3, text=tags.artist))
    if tags.track is not None:
        id3.add(TRCK(encoding=3, text=f"{tags.track}/{tags.tracks}"))
    if tags.isrc is not None:
        id3.add(TSRC(encoding=3, text=tags.isrc))
    if tags.year is not None:
        id3.add(TDRC(encoding=3, text=str(tags.year)))
    if tags.upc is not None:
        id3.add(TXXX(encoding=3, desc="BARCODE", text=tags.upc))
    id3.save(path, v2_version=4)

"""The build manifest: what went into a render and what came out, so anyone can prove that the
same inputs give the same bytes (``render --verify``).

``manifest.json`` holds no time and no absolute path: the renderer's and its libraries'
versions, the session file's hash and its parameters as the engine read them, every input
file's hash and format, the hash of each rendered stage (the mix and the master before they
are quantised) and every output file's hash, size and headline figures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from render import __version__, audio_io
from render.analysis import Analysis
from render.report.json_report import json_number
from render.session.model import Output, Reverb, Session

FORMAT = "render-manifest/1"
NAME = "manifest.json"
LIBRARIES = ("numpy", "scipy", "soundfile", "soxr", "numba", "matplotlib")
"""The libraries whose arithmetic or encoders decide the output bytes."""


@dataclass(frozen=True)
class Difference:
    """One way a fresh render differs from the manifest, and the stage it belongs to."""

    stage: str  # "renderer", "session", "stem", "mix", "master", "output"
    what: str


STAGES = ("renderer", "session", "stem", "mix", "master", "output")
"""In signal order: the first stage that differs is where to look."""


def audio_sha256(x: np.ndarray) -> str:
    """The hash of a rendered signal's float64 samples (C order), read in place: a copy of
    3 minutes of stereo cost ~34,000 page faults."""
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(
    session: Session,
    inputs: list[dict[str, Any]],
    stages: Mapping[str, str],
    outputs: list[tuple[str, Path, str, Analysis | None]],
) -> dict[str, Any]:
    """The manifest of a render of ``session``: ``inputs`` is ``describe_inputs(session)``;
    ``stages`` maps "mix"/"master" to ``audio_sha256`` of that signal; ``outputs`` lists
    (role, path, description, figures) of every file written, the reports included (no
    figures)."""
    base = session.path.parent
    return {
        "format": FORMAT,
        "renderer": {
            "version": __version__,
            "python": platform.python_version(),
            "libraries": {name: _version(name) for name in LIBRARIES}
            | {
                "libsndfile": soundfile.__libsndfile_version__,
                "libc": " ".join(platform.libc_ver()),
            },
        },
        "session": {
            "file": session.path.name,
            "sha256": file_sha256(session.path),
            "parameters": _normalised(session, base),
        },
        "inputs": inputs,
        "stages": dict(stages),
        "outputs": [
            {
                "role": role,
                "file": path.name,
                "sha256": file_sha256(path),
                "size_bytes": path.stat().st_size,
                "format": description,
                "integrated_lufs": json_number(figures and figures.loudness.integrated_lufs),
                "true_peak_dbtp": json_number(figures and max(figures.loudness.true_peak_dbtp)),
            }
            for role, path, description, figures in outputs
        ],
    }


def describe_inputs(session: Session) -> list[dict[str, Any]]:
    """Every input file's path (relative to the session), hash and format, in session order:
    the slowest part of a manifest (hashing 16 stems of 3 minutes takes ~0.5 s), so the
    pipeline runs it beside other work."""
    return [_input(path, session.path.parent) for path in input_files(session)]


def input_files(session: Session) -> list[Path]:
    """Every file the render reads besides the session: stems and impulse responses, once
    each, in session order."""
    paths = [track.stem for track in session.tracks]
    chains = [t.inserts for t in session.tracks] + [b.inserts for b in session.buses]
    chains += [session.mix.inserts, session.mastering.chain if session.mastering else ()]
    paths += [e.ir for chain in chains for e in chain if isinstance(e, Reverb) and e.ir]
    return list(dict.fromkeys(paths))


def write_manifest(manifest: dict[str, Any], out_dir: Path) -> Path:
    """``manifest.json`` in ``out_dir``, replaced atomically."""
    path = out_dir / NAME
    with audio_io.atomic_path(path) as temporary:
        temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def compare(recorded: dict[str, Any], fresh: dict[str, Any]) -> list[Difference]:
    """How ``fresh`` differs from ``recorded``, in signal order (``STAGES``)."""
    found: list[Difference] = []
    if recorded.get("renderer") != fresh["renderer"]:
        found.append(Difference("renderer", _changed_versions(recorded.get("renderer"), fresh)))
    if recorded.get("session", {}).get("sha256") != fresh["session"]["sha256"]:
        found.append(Difference("session", f"{fresh['session']['file']} changed"))
    before = {item["path"]: item for item in recorded.get("inputs", [])}
    for item in fresh["inputs"]:
        old = before.get(item["path"])
        if old is None:
            found.append(Difference("stem", f"{item['path']} is new"))
        elif old["sha256"] != item["sha256"]:
            found.append(Difference("stem", f"{item['path']} changed (sha256 differs)"))
    for stage in ("mix", "master"):
        if recorded.get("stages", {}).get(stage) != fresh["stages"].get(stage):
            found.append(Difference(stage, f"the {stage} signal differs"))
    written = {item["file"]: item for item in recorded.get("outputs", [])}
    for item in fresh["outputs"]:
        old = written.get(item["file"])
        if old is None or old["sha256"] != item["sha256"]:
            found.append(Difference("output", f"{item['file']} differs"))
    return sorted(found, key=lambda d: STAGES.index(d.stage))


def _changed_versions(recorded: Any, fresh: dict[str, Any]) -> str:
    old = recorded if isinstance(recorded, dict) else {}
    now = fresh["renderer"]
    pairs = [("render", old.get("version"), now["version"])]
    pairs += [
        (name, old.get("libraries", {}).get(name), version)
        for name, version in now["libraries"].items()
    ]
    changed = [f"{name} {was} -> {new}" for name, was, new in pairs if was != new]
    return ", ".join(changed) or "the renderer's environment changed"


def _input(path: Path, base: Path) -> dict[str, Any]:
    info = audio_io.probe(path)
    return {
        "path": _relative(path, base),
        "sha256": file_sha256(path),
        "format": f"{info.format} {info.subtype}",
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "frames": info.frames,
    }


def _normalised(value: Any, base: Path) -> Any:
    """The session model as plain JSON: paths relative to the session's folder, where the
    outputs go left out (it decides no byte), non-finite numbers as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            field.name: _normalised(getattr(value, field.name), base)
            for field in dataclasses.fields(value)
            if field.compare and (type(value), field.name) not in _LOCATIONS
        }
        if not isinstance(value, Session):
            fields = {"type": type(value).__name__, **fields}
        return fields
    if isinstance(value, Mapping):
        return {str(k): _normalised(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalised(v, base) for v in value]
    if isinstance(value, Path):
        return _relative(value, base)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # note values ("1/8.") and other small value types


_LOCATIONS = {(Session, "path"), (Output, "dir")}
"""Fields that say where files are, not what they hold: left out of the parameters."""


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name  # outside the session's folder: its name, never a machine's path


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"

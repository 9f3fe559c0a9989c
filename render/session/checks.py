"""Checks a schema cannot express: names that must exist, cycles, files on disk, paths.

They run on the parsed data even when the schema found problems (every check guards its own
types), so a user sees all errors at once. Each problem is a located ``Diagnostic``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from render import audio_io, lossy
from render.errors import AudioInputError, Diagnostic
from render.session import units
from render.session.model import DEFAULT_SAMPLE_RATE, EFFECTS, EQ_BAND_TYPES, MIX_BUS, EqBand
from render.session.routing import find_cycle
from render.session.validate import describe, did_you_mean
from render.session.yaml_source import KeyPath, YamlDocument

PCM_FORMATS = ("wav", "flac", "aiff")


@dataclass(frozen=True)
class LoadOptions:
    """Choices the command line makes about loading a session."""

    allow_outside_paths: bool = False
    out_dir: Path | None = None  # --out, relative to the working directory


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def listing(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parsed(kind: str, value: Any) -> Any:
    """``units.parse`` that yields None for a value the schema check already reports."""
    try:
        return units.parse(kind, value)
    except units.UnitError:
        return None


def session_dir_of(session_path: Path) -> Path:
    return Path(os.path.abspath(session_path)).parent


def resolve_output_dir(
    document: YamlDocument, session_path: Path, options: LoadOptions, section: str = "output"
) -> Path:
    """``--out``, else ``<section>.dir`` (relative to the file), else ``out/`` beside it."""
    if options.out_dir is not None:
        return Path(os.path.abspath(options.out_dir))
    written = mapping(mapping(document.data).get(section)).get("dir")
    return Path(
        os.path.normpath(
            session_dir_of(session_path) / (written if isinstance(written, str) else "out")
        )
    )


def strips(data: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(section, name, settings)`` for every track and bus, in session order."""
    for section in ("tracks", "buses"):
        for name, settings in mapping(data.get(section)).items():
            yield section, name, mapping(settings)


def effects(data: dict[str, Any]) -> Iterator[tuple[KeyPath, str, dict[str, Any]]]:
    """``(path, effect name, parameters)`` for every effect anywhere in the session."""
    chains: list[tuple[KeyPath, Any]] = [
        ((section, name, "inserts"), settings.get("inserts"))
        for section, name, settings in strips(data)
    ]
    chains.append((("mix", "inserts"), mapping(data.get("mix")).get("inserts")))
    chains.append((("mastering", "chain"), mapping(data.get("mastering")).get("chain")))
    for path, chain in chains:
        for index, item in enumerate(listing(chain)):
            for effect_name, parameters in mapping(item).items():
                yield (*path, index, effect_name), effect_name, mapping(parameters)


def frequencies(model: type, parameters: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """Every frequency written in an effect's parameters, with its path (model-driven, so a
    new effect's frequencies are checked without code here)."""
    if not isinstance(parameters, dict):
        shorthand = getattr(model, "shorthand", None)
        if shorthand is None:
            return
        yield from ((path, value) for _, value in frequencies(model, {shorthand: parameters}, path))
        return
    if model is EqBand:
        yield from (((*path, t), parameters[t]) for t in EQ_BAND_TYPES if t in parameters)
    for field in fields(model):
        key = field.metadata.get("key")
        if key not in parameters:
            continue
        values = parameters[key]
        items = list(enumerate(values)) if isinstance(values, list) else [(None, values)]
        for index, value in items:
            where = (*path, key) if index is None else (*path, key, index)
            if field.metadata.get("kind") == "frequency_hz":
                yield where, value
            elif (nested_model := field.metadata.get("model")) is not None:
                yield from frequencies(nested_model, value, where)


class SessionChecks:
    """Runs every semantic check over one parsed session file."""

    OUTPUT_SECTION = "output"
    """The section whose ``dir`` names the output folder (an album's is ``deliver``)."""

    def __init__(self, document: YamlDocument, session_path: Path, options: LoadOptions):
        self.document = document
        self.data = mapping(document.data)
        self.session_dir = session_dir_of(session_path)
        self.session_path = session_path
        self.options = options
        self.problems: list[Diagnostic] = []
        self.inputs: list[tuple[KeyPath, Path]] = []

    @property
    def sample_rate(self) -> Any:
        """The render rate as written (checked by the schema), for the deliverables."""
        return self.data.get("sample_rate", DEFAULT_SAMPLE_RATE)

    def error(self, path: KeyPath, message: str, hint: str | None = None, *, of_key: bool = False):
        self.problems.append(self.document.diagnostic(path, message, hint=hint, of_key=of_key))

    def run(self) -> list[Diagnostic]:
        self.check_names()
        self.check_routing()
        self.check_files()
        self.check_effects()
        self.check_timing()
        self.check_outputs()
        return self.problems

    # --- names and routing ----------------------------------------------------------------

    def check_names(self) -> None:
        tracks, buses = mapping(self.data.get("tracks")), mapping(self.data.get("buses"))
        for section, name, _ in strips(self.data):
            if name == MIX_BUS:
                self.error(
                    (section, name),
                    'the name "mix" is reserved for the mix bus; expected another name',
                    of_key=True,
                )
        for name in buses:
            if name in tracks:
                self.error(
                    ("buses", name),
                    f"{describe(name)} names both a track and a bus; "
                    "expected unique names so routing is unambiguous",
                    of_key=True,
                )

    def check_routing(self) -> None:
        tracks, buses = mapping(self.data.get("tracks")), mapping(self.data.get("buses"))
        edges: dict[str, list[str]] = {}
        edge_paths: dict[tuple[str, str], tuple[KeyPath, bool]] = {}

        def connect(source: str, target: str, path: KeyPath, of_key: bool = False) -> None:
            edges.setdefault(source, []).append(target)
            edge_paths.setdefault((source, target), (path, of_key))

        for section, name, settings in strips(self.data):
            edges.setdefault(name, [])
            out = settings.get("out", MIX_BUS)
            if isinstance(out, str) and self._is_bus(out, (section, name, "out"), tracks, buses):
                connect(name, out, (section, name, "out"))
            for bus in mapping(settings.get("sends")):
                if self._is_bus(bus, (section, name, "sends", bus), tracks, buses, of_key=True):
                    connect(name, bus, (section, name, "sends", bus), of_key=True)
        for path, _, parameters in effects(self.data):
            source = parameters.get("sidechain")
            if not isinstance(source, str):
                continue
            key_path = (*path, "sidechain")
            if path[0] == "mastering":
                self.error(
                    key_path,
                    "the mastering chain hears only the finished mix; expected no "
                    "`sidechain` here (key a compressor from a track on the mix bus instead)",
                    of_key=True,
                )
            elif path[0] in ("tracks", "buses") and source == path[1]:
                self.error(
                    key_path,
                    f"{describe(source)} is this effect's own strip; expected "
                    "another track or bus (without `sidechain` it hears its own signal)",
                )
            elif source in tracks or source in buses:
                if path[0] in ("tracks", "buses"):
                    connect(source, str(path[1]), key_path)
            else:
                self.error(
                    key_path,
                    f"unknown sidechain source {describe(source)}; expected "
                    "the name of a track or bus",
                    did_you_mean(source, [*tracks, *buses]),
                )
        if cycle := find_cycle(edges):
            path, of_key = edge_paths[(cycle[0], cycle[1])]
            self.error(
                path,
                f"routing cycle: {' -> '.join(cycle)}; expected signal to flow "
                "one way, from tracks through buses to the mix bus",
                of_key=of_key,
            )

    def _is_bus(self, name: str, path: KeyPath, tracks: dict, buses: dict, of_key=False) -> bool:
        if name == MIX_BUS:
            return True  # the mix bus ends the graph: no edge needed
        if name in buses:
            return True
        options = ", ".join([MIX_BUS, *buses])
        if name in tracks:
            self.error(
                path, f"{describe(name)} is a track; expected a bus: {options}", of_key=of_key
            )
        else:
            self.error(
                path,
                f"unknown bus {describe(name)}; expected one of: {options}",
                did_you_mean(name, [MIX_BUS, *buses]),
                of_key=of_key,
            )
        return False

    # --- files ----------------------------------------------------------------------------

    def inside(self, path: KeyPath, written: str, base: Path) -> Path | None:
        """``written`` resolved against ``base``; None (and an error) if it leaves the session
        folder and the user has not allowed that."""
        target = Path(os.path.normpath(base / written))
        if not self.options.allow_outside_paths and not target.is_relative_to(self.session_dir):
            self.error(
                path,
                f'the path "{written}" leads outside the session folder '
                f"({self.session_dir}); expected a path inside it, or pass "
                "--allow-outside-paths to allow it",
            )
            return None
        return target

    def audio_input(self, path: KeyPath, written: Any, base: Path) -> audio_io.StemInfo | None:
        if not isinstance(written, str) or (file := self.inside(path, written, base)) is None:
            return None
        self.inputs.append((path, file))
        try:
            return audio_io.probe(file)
        except AudioInputError as e:
            self.error(path, f'{e}: "{file}"')
            return None

    def check_files(self) -> None:
        stems = self.data.get("stems", ".")
        stems_dir = (
            self.inside(("stems",), stems, self.session_dir) if isinstance(stems, str) else None
        )
        if stems_dir is not None and not stems_dir.is_dir():
            self.error(
                ("stems",),
                f'the stems folder "{stems_dir}" does not exist; expected a '
                "folder relative to the session file",
            )
            stems_dir = None
        if stems_dir is not None:
            self.inputs.append((("stems",), stems_dir))
            for name, track in mapping(self.data.get("tracks")).items():
                info = self.audio_input(
                    ("tracks", name, "stem"), mapping(track).get("stem"), stems_dir
                )
                if info is not None:
                    self._check_trim(
                        ("tracks", name, "trim"), mapping(mapping(track).get("trim")), info
                    )
        for path, name, parameters in effects(self.data):
            if name == "reverb" and "ir" in parameters:
                self.audio_input((*path, "ir"), parameters["ir"], self.session_dir)

    def _check_trim(self, path: KeyPath, trim: dict[str, Any], info: audio_io.StemInfo) -> None:
        start = parsed("time_s", trim.get("start", 0)) or 0.0
        end = parsed("time_s", trim.get("end", info.duration_s))
        if end is None:
            return
        if end > info.duration_s:
            self.error(
                (*path, "end"),
                f"the stem is {info.duration_s:.3f} s long; expected an end within it, "
                f"got {describe(trim['end'])}",
            )
        elif start >= end:
            self.error(
                (*path, "start"),
                f"expected a start before the end ({end:.3f} s), got {describe(trim['start'])}",
            )

    # --- effects and timing ---------------------------------------------------------------

    def check_effects(self) -> None:
        rate = self.data.get("sample_rate", DEFAULT_SAMPLE_RATE)
        nyquist_hz = rate / 2 if isinstance(rate, int) and not isinstance(rate, bool) else None
        for path, name, parameters in effects(self.data):
            if nyquist_hz is not None and name in EFFECTS:
                for where, value in frequencies(EFFECTS[name], parameters, path):
                    hz = parsed("frequency_hz", value)
                    if hz is not None and hz >= nyquist_hz:
                        self.error(
                            where,
                            f"expected a frequency below {nyquist_hz:g} Hz (the "
                            f"Nyquist frequency at {rate} Hz), got {describe(value)}",
                        )
            if name == "eq":
                for index, band in enumerate(listing(parameters.get("bands"))):
                    self._check_band((*path, "bands", index), mapping(band))
            elif name == "reverb" and "ir" in parameters:
                for synthetic in ("decay", "damping", "size"):
                    if synthetic in parameters:
                        self.error(
                            (*path, synthetic),
                            f"`{synthetic}` shapes the synthetic "
                            "reverb and has no effect with an `ir` file; expected one "
                            "or the other",
                            of_key=True,
                        )
            elif name == "delay":
                time = parsed("delay_time", parameters.get("time"))
                if isinstance(time, units.NoteValue) and "tempo" not in self.data:
                    self.error(
                        (*path, "time"),
                        f"the note value {describe(time.text)} needs the "
                        "session's `tempo`; expected a top-level `tempo: <BPM>`",
                    )
            elif name == "multiband":
                self._check_multiband(path, parameters)

    def _check_band(self, path: KeyPath, band: dict[str, Any]) -> None:
        types = [key for key in EQ_BAND_TYPES if key in band]
        if len(types) != 1:
            written = ", ".join(types) or "none"
            self.error(
                path, f"expected exactly one band type ({', '.join(EQ_BAND_TYPES)}), got {written}"
            )
            return
        shelf = types[0].endswith("_shelf")
        if "slope" in band and not shelf:
            self.error(
                (*path, "slope"),
                f"`slope` shapes shelves only; expected `q` for a {types[0]} band",
                of_key=True,
            )
        if "slope" in band and "q" in band:
            self.error((*path, "slope"), "expected `q` or `slope`, not both", of_key=True)
        if "gain" in band and types[0] in ("notch", "band_pass"):
            self.error(
                (*path, "gain"), f"a {types[0]} band has no gain; expected no `gain`", of_key=True
            )

    def _check_multiband(self, path: KeyPath, parameters: dict[str, Any]) -> None:
        crossovers = [parsed("frequency_hz", f) for f in listing(parameters.get("crossovers"))]
        bands = listing(parameters.get("bands"))
        if crossovers and bands and len(bands) != len(crossovers) + 1:
            self.error(
                (*path, "bands"),
                f"{len(crossovers)} crossovers make "
                f"{len(crossovers) + 1} bands; got {len(bands)} band settings",
            )
        for index in range(1, len(crossovers)):
            low, high = crossovers[index - 1], crossovers[index]
            if low is not None and high is not None and high <= low:
                self.error(
                    (*path, "crossovers", index),
                    f"expected crossovers in ascending order, got {high:g} Hz after {low:g} Hz",
                )

    def check_timing(self) -> None:
        for section, name, settings in strips(self.data):
            for lane, points in mapping(settings.get("automation")).items():
                previous = None
                for index, point in enumerate(listing(points)):
                    at = parsed("time_s", mapping(point).get("at"))
                    if at is not None and previous is not None and at < previous:
                        self.error(
                            (section, name, "automation", lane, index, "at"),
                            f"expected points in time order, got {at:g} s after {previous:g} s",
                        )
                    previous = at if at is not None else previous

    # --- outputs --------------------------------------------------------------------------

    def check_outputs(self) -> None:
        out_dir = resolve_output_dir(
            self.document, self.session_path, self.options, self.OUTPUT_SECTION
        )
        self._check_output_dir(out_dir)
        output = mapping(self.data.get("output"))
        if "master" in output and "mastering" not in self.data:
            self.error(
                ("output", "master"),
                "master deliverables need a `mastering` section (a chain, a target or "
                "both); expected one, or write these files under `output.mix`",
                of_key=True,
            )
        names: dict[str, KeyPath] = {}
        master_stem = master_file_stem(self.data.get("title"), self.session_path)
        stems = {"mix": "mix", "master": master_stem}
        for role in ("mix", "master"):
            written = output.get(role, [])
            deliverables = written if isinstance(written, list) else [written]
            for index, deliverable in enumerate(deliverables):
                path = ("output", role, index) if isinstance(written, list) else ("output", role)
                self._check_deliverable(path, mapping(deliverable), stems[role], names)

    def _check_output_dir(self, out_dir: Path) -> None:
        real_out = out_dir.resolve()
        for input_path in [self.session_path, *(path for _, path in self.inputs)]:
            real_input = Path(input_path).resolve()
            if real_out == real_input or real_out in real_input.parents:
                relation = "is" if real_out == real_input else "contains"
                self._output_dir_error(
                    f'the output folder "{out_dir}" {relation} the input "{input_path}"; '
                    "expected a folder of its own (the default is out/ beside the session)"
                )
                return
        if out_dir.exists() and not out_dir.is_dir():
            self._output_dir_error(f'"{out_dir}" is a file; expected a folder for the outputs')

    def _output_dir_error(self, message: str) -> None:
        """Blame ``--out`` when the command line chose the folder, else ``output.dir``."""
        if self.options.out_dir is not None:
            self.problems.append(Diagnostic("--out", None, None, "", message))
        else:
            self.error((self.OUTPUT_SECTION, "dir"), message)

    def _check_deliverable(
        self, path: KeyPath, deliverable: dict[str, Any], stem: str, names: dict[str, KeyPath]
    ) -> None:
        file_format = deliverable.get("format")
        if not isinstance(file_format, str):
            return
        rate = deliverable.get("sample_rate", self.sample_rate)
        if file_format in lossy.LOSSY_FORMATS and isinstance(rate, int):
            self._check_lossy(path, deliverable, file_format, rate)
        if file_format not in PCM_FORMATS and deliverable.get("dither", "none") != "none":
            self.error(
                (*path, "dither"),
                f"{file_format} is lossy: its encoder quantises, so there is nothing to "
                "dither; expected no `dither`",
                of_key=True,
            )
        bit_depth = deliverable.get("bit_depth")
        if file_format in PCM_FORMATS and "bitrate" in deliverable:
            self.error(
                (*path, "bitrate"),
                f"{file_format} is lossless; expected `bitrate` only for mp3, ogg or opus",
                of_key=True,
            )
        if file_format not in PCM_FORMATS and bit_depth is not None:
            self.error(
                (*path, "bit_depth"),
                f"{file_format} is lossy and has no bit depth; expected `bitrate` instead",
                of_key=True,
            )
        if file_format == "flac" and bit_depth in (32, "float"):
            self.error(
                (*path, "bit_depth"), f"FLAC stores 16 or 24 bits, got {describe(bit_depth)}"
            )
        name = output_file_name(deliverable.get("name"), stem, file_format)
        if name in names:
            self.error(
                path,
                f'two deliverables would both be written to "{name}"; expected a '
                "distinct `name` for each",
            )
        names.setdefault(name, path)

    def _check_lossy(
        self, path: KeyPath, deliverable: dict[str, Any], file_format: str, rate: int
    ) -> None:
        """The encoder must take the rate and bit rate (the mix and master are stereo)."""
        allowed = lossy.SAMPLE_RATES.get(file_format)
        if allowed and rate not in allowed:
            self.error(
                (*path, "sample_rate") if "sample_rate" in deliverable else (*path, "format"),
                f"{file_format} takes only {', '.join(map(str, allowed))} Hz, got {rate} Hz; "
                "expected one of those as this deliverable's `sample_rate`",
            )
            return
        bitrate = deliverable.get("bitrate")
        try:
            lossy.lossy_encoding(
                file_format, rate, 2, bitrate if isinstance(bitrate, int) else None
            )
        except ValueError as e:
            self.error((*path, "bitrate"), str(e).removeprefix(f"{file_format}: "))


def master_file_stem(title: Any, session_path: Path) -> str:
    """The default file name of a master, without extension: the session's title (else the
    session file's name), with characters no file system takes (``/ \\ : * ? " < > |``
    and control characters) replaced by ``_``."""
    text = title if isinstance(title, str) and title.strip() else Path(session_path).stem
    return "".join("_" if c in '/\\:*?"<>|' or ord(c) < 32 else c for c in text.strip())


def output_file_name(name: Any, default_stem: str, file_format: str) -> str:
    """A deliverable's file name: ``name`` (its extension added if missing), else
    ``<default_stem>.<format>``."""
    stem = name if isinstance(name, str) and name else default_stem
    extension = f".{file_format}"
    return stem if stem.lower().endswith(extension) else stem + extension

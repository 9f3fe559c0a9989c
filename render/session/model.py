"""The typed session: frozen dataclasses built once from a validated session file.

Nothing downstream reads the raw YAML. Field names carry units (``gain_db``, ``attack_ms``);
each field's metadata names the session key it comes from (``key``) and, for values with
engineer's units, the quantity kind that parses it (``kind``, see ``units.QUANTITIES``).
Defaults here are the documented defaults of ``schemas/session.schema.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from render.session.units import NoteValue

Polarity = Literal["normal", "inverted"]
FadeCurve = Literal["linear", "equal_power", "exponential", "s_curve"]
SendTap = Literal["pre", "post"]
SegmentCurve = Literal["linear", "exponential"]
EqBandType = Literal["peak", "low_shelf", "high_shelf", "notch", "band_pass"]
EQ_BAND_TYPES: tuple[EqBandType, ...] = ("peak", "low_shelf", "high_shelf", "notch", "band_pass")
EqChannels = Literal["stereo", "mid", "side", "left", "right"]
BitDepth = Literal[16, 24, 32, "float"]
DEFAULT_SAMPLE_RATE = 48_000
MIX_BUS = "mix"
"""The name that routes to the mix bus (``out: mix``); no track or bus may take it."""


def key(
    name: str, kind: str | None = None, default: Any = None, *, factory: Any = None, **extra: Any
) -> Any:
    """A model field read from session key ``name``, parsed as quantity ``kind``."""
    metadata = {"key": name, "kind": kind, **extra}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def nested(
    name: str, model: type, *, optional: bool = False, many: bool = False, default: Any = ()
) -> Any:
    """A field holding a nested model: one (default-constructed when absent, or None when
    ``optional``) or, with ``many``, a tuple of them (a single mapping counts as one)."""
    metadata = {"key": name, "model": model, "many": many}
    if many:
        return field(default=default, metadata=metadata)
    if optional:
        return field(default=None, metadata=metadata)
    return field(default_factory=model, metadata=metadata)


# --- effects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassFilter:
    """Butterworth high- or low-pass (``eq.highpass`` / ``eq.lowpass``)."""

    shorthand: ClassVar[str] = "frequency"
    frequency_hz: float = key("frequency", "frequency_hz", 0.0)
    slope_db_per_oct: float = key("slope", "slope_db_per_oct", 12.0)


@dataclass(frozen=True)
class EqBand:
    """One parametric band; its type is the one type key written (``peak: 4 kHz``)."""

    type: EqBandType = "peak"
    frequency_hz: float = 1000.0
    gain_db: float = key("gain", "level_db", 0.0)
    q: float | None = key("q")
    slope: float | None = key("slope")
    channels: EqChannels = key("channels", default="stereo")


@dataclass(frozen=True)
class Eq:
    name: ClassVar[str] = "eq"
    highpass: PassFilter | None = nested("highpass", PassFilter, optional=True)
    lowpass: PassFilter | None = nested("lowpass", PassFilter, optional=True)
    bands: tuple[EqBand, ...] = nested("bands", EqBand, many=True)
    phase: Literal["minimum", "linear"] = key("phase", default="minimum")


@dataclass(frozen=True)
class Compressor:
    name: ClassVar[str] = "compressor"
    threshold_db: float = key("threshold", "level_db", -18.0)
    ratio: float = key("ratio", "ratio", 4.0)
    knee_db: float = key("knee", "level_db", 6.0)
    attack_ms: float = key("attack", "time_ms", 10.0)
    release_ms: float = key("release", "time_ms", 100.0)
    makeup_db: float = key("makeup", "level_db", 0.0)
    detector: Literal["peak", "rms"] = key("detector", default="peak")
    link: float = key("link", "fraction", 1.0)
    mix: float = key("mix", "fraction", 1.0)
    sidechain: str | None = key("sidechain")
    sidechain_highpass_hz: float | None = key("sidechain_highpass", "frequency_hz")


@dataclass(frozen=True)
class Gate:
    name: ClassVar[str] = "gate"
    threshold_db: float = key("threshold", "level_db", -50.0)
    range_db: float = key("range", "level_db", -80.0)
    ratio: float | None = key("ratio", "ratio")
    attack_ms: float = key("attack", "time_ms", 1.0)
    hold_ms: float = key("hold", "time_ms", 20.0)
    release_ms: float = key("release", "time_ms", 100.0)
    sidechain: str | None = key("sidechain")
    sidechain_highpass_hz: float | None = key("sidechain_highpass", "frequency_hz")


@dataclass(frozen=True)
class Limiter:
    name: ClassVar[str] = "limiter"
    ceiling_dbtp: float = key("ceiling", "true_peak_dbtp", -1.0)
    release_ms: float = key("release", "time_ms", 100.0)
    lookahead_ms: float = key("lookahead", "time_ms", 5.0)
    true_peak: bool = key("true_peak", default=True)


@dataclass(frozen=True)
class Reverb:
    name: ClassVar[str] = "reverb"
    ir: Path | None = key("ir", "path")
    decay_s: float = key("decay", "time_s", 1.8)
    predelay_ms: float = key("predelay", "time_ms", 0.0)
    damping: float = key("damping", "fraction", 0.5)
    size: float = key("size", "fraction", 0.5)
    width: float = key("width", "fraction", 1.0)
    mix: float = key("mix", "fraction", 1.0)
    highpass_hz: float | None = key("highpass", "frequency_hz")
    lowpass_hz: float | None = key("lowpass", "frequency_hz")


@dataclass(frozen=True)
class Delay:
    name: ClassVar[str] = "delay"
    time: float | NoteValue = key("time", "delay_time", 250.0)
    feedback: float = key("feedback", "fraction", 0.3)
    mix: float = key("mix", "fraction", 1.0)
    ping_pong: bool = key("ping_pong", default=False)
    highpass_hz: float | None = key("highpass", "frequency_hz")
    lowpass_hz: float | None = key("lowpass", "frequency_hz")


@dataclass(frozen=True)
class Saturation:
    name: ClassVar[str] = "saturation"
    drive_db: float = key("drive", "level_db", 6.0)
    curve: Literal["tanh", "soft_clip"] = key("curve", default="tanh")
    mix: float = key("mix", "fraction", 1.0)
    output_db: float = key("output", "level_db", 0.0)
    oversample: int = key("oversample", default=4)


@dataclass(frozen=True)
class Width:
    name: ClassVar[str] = "width"
    shorthand: ClassVar[str] = "amount"
    amount: float = key("amount", "fraction", 1.0)
    bass_mono_hz: float | None = key("bass_mono", "frequency_hz")


@dataclass(frozen=True)
class Gain:
    name: ClassVar[str] = "gain"
    shorthand: ClassVar[str] = "level"
    level_db: float = key("level", "level_db", 0.0)
    polarity: Polarity = key("polarity", default="normal")


@dataclass(frozen=True)
class MultibandBand:
    threshold_db: float = key("threshold", "level_db", -18.0)
    ratio: float = key("ratio", "ratio", 2.0)
    knee_db: float = key("knee", "level_db", 6.0)
    attack_ms: float = key("attack", "time_ms", 10.0)
    release_ms: float = key("release", "time_ms", 100.0)
    makeup_db: float = key("makeup", "level_db", 0.0)
    bypass: bool = key("bypass", default=False)


@dataclass(frozen=True)
class Multiband:
    name: ClassVar[str] = "multiband"
    crossovers_hz: tuple[float, ...] = key("crossovers", "frequency_hz", (), many=True)
    bands: tuple[MultibandBand, ...] = nested("bands", MultibandBand, many=True)
    mix: float = key("mix", "fraction", 1.0)


Effect = Eq | Compressor | Gate | Limiter | Reverb | Delay | Saturation | Width | Gain | Multiband
EFFECTS: dict[str, type] = {
    cls.name: cls
    for cls in (Eq, Compressor, Gate, Limiter, Reverb, Delay, Saturation, Width, Gain, Multiband)
}


# --- tracks and buses ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fade:
    """A clip fade; ``fade_in: 2 s`` is shorthand for ``{length: 2 s}``."""

    shorthand: ClassVar[str] = "length"
    length_s: float = key("length", "time_s", 0.0)
    curve: FadeCurve = key("curve", default="linear")


@dataclass(frozen=True)
class Trim:
    """The part of the stem that plays: from ``start_s`` to ``end_s`` (stem time)."""

    start_s: float = key("start", "time_s", 0.0)
    end_s: float | None = key("end", "time_s")


@dataclass(frozen=True)
class Send:
    """A send to a bus; ``plate: -12 dB`` is shorthand for ``{level: -12 dB}``."""

    shorthand: ClassVar[str] = "level"
    level_db: float = key("level", "level_db", 0.0)
    tap: SendTap = key("tap", default="post")


@dataclass(frozen=True)
class GainPoint:
    at_s: float = key("at", "time_s", 0.0)
    value_db: float = key("value", "level_db", 0.0)
    curve: SegmentCurve = key("curve", default="linear")


@dataclass(frozen=True)
class PanPoint:
    at_s: float = key("at", "time_s", 0.0)
    value: float = key("value", "pan", 0.0)
    curve: Literal["linear"] = key("curve", default="linear")


@dataclass(frozen=True)
class Automation:
    gain: tuple[GainPoint, ...] = nested("gain", GainPoint, many=True)
    pan: tuple[PanPoint, ...] = nested("pan", PanPoint, many=True)


@dataclass(frozen=True)
class Track:
    """One stem and its channel strip."""

    name: str
    stem: Path = key("stem", "stem_path", Path())
    gain_db: float = key("gain", "level_db", 0.0)
    pan: float = key("pan", "pan", 0.0)
    mute: bool = key("mute", default=False)
    solo: bool = key("solo", default=False)
    polarity: Polarity = key("polarity", default="normal")
    start_s: float = key("start", "time_s", 0.0)
    trim: Trim = nested("trim", Trim)
    fade_in: Fade = nested("fade_in", Fade)
    fade_out: Fade = nested("fade_out", Fade)
    inserts: tuple[Effect, ...] = key("inserts", "effects", ())
    sends: Mapping[str, Send] = key("sends", "sends", factory=dict)
    out: str = key("out", default=MIX_BUS)
    automation: Automation = nested("automation", Automation)


@dataclass(frozen=True)
class Bus:
    name: str
    inserts: tuple[Effect, ...] = key("inserts", "effects", ())
    sends: Mapping[str, Send] = key("sends", "sends", factory=dict)
    out: str = key("out", default=MIX_BUS)
    gain_db: float = key("gain", "level_db", 0.0)
    pan: float = key("pan", "pan", 0.0)
    mute: bool = key("mute", default=False)
    automation: Automation = nested("automation", Automation)


@dataclass(frozen=True)
class MixBus:
    inserts: tuple[Effect, ...] = key("inserts", "effects", ())
    gain_db: float = key("gain", "level_db", 0.0)


# --- mastering and output ------------------------------------------------------------------


@dataclass(frozen=True)
class LoudnessRange:
    min_lu: float | None = key("min", "loudness_range_lu")
    max_lu: float | None = key("max", "loudness_range_lu")


LOUDNESS_PRESETS: dict[str, tuple[float, float]] = {
    "spotify": (-14.0, -1.0),
    "apple-music": (-16.0, -1.0),
    "youtube": (-14.0, -1.0),
    "tidal": (-14.0, -1.0),
    "amazon": (-14.0, -2.0),
    "deezer": (-15.0, -1.0),
    "soundcloud": (-14.0, -1.0),
    "ebu-r128": (-23.0, -1.0),
    "atsc-a85": (-24.0, -2.0),
    "cd": (-9.0, -0.1),
    "podcast": (-16.0, -1.0),
}
"""``preset: (integrated loudness in LUFS, true-peak ceiling in dBTP)``. The source of each
value is cited in the schema's description of ``mastering.target.preset``."""


@dataclass(frozen=True)
class Target:
    """What the master must measure; explicit values override the preset's."""

    preset: str | None = key("preset")
    loudness_lufs: float | None = key("loudness", "loudness_lufs")
    true_peak_dbtp: float | None = key("true_peak", "true_peak_dbtp")
    lra: LoudnessRange | None = nested("lra", LoudnessRange, optional=True)
    max_limiting_db: float = key("max_limiting", "level_db", 6.0)

    @property
    def integrated_lufs(self) -> float | None:
        """The integrated loudness to land on, if any."""
        if self.loudness_lufs is not None or self.preset is None:
            return self.loudness_lufs
        return LOUDNESS_PRESETS[self.preset][0]

    @property
    def ceiling_dbtp(self) -> float | None:
        """The true-peak level no delivered file may exceed, if any."""
        if self.true_peak_dbtp is not None or self.preset is None:
            return self.true_peak_dbtp
        return LOUDNESS_PRESETS[self.preset][1]


@dataclass(frozen=True)
class Mastering:
    chain: tuple[Effect, ...] = key("chain", "effects", ())
    target: Target = nested("target", Target)


@dataclass(frozen=True)
class Deliverable:
    """One output file: its format, resolution and file name."""

    format: str = key("format", default="wav")
    bit_depth: BitDepth = key("bit_depth", default=24)
    sample_rate: int | None = key("sample_rate")
    dither: Literal["tpdf", "tpdf_shaped", "none"] | None = key("dither")
    bitrate_kbps: int | None = key("bitrate")
    name: str | None = key("name")


@dataclass(frozen=True)
class Output:
    """Where outputs go (None: ``out/`` beside the session) and in which formats."""

    dir: Path | None = key("dir", "path")
    mix: tuple[Deliverable, ...] = nested("mix", Deliverable, many=True, default=(Deliverable(),))
    master: tuple[Deliverable, ...] = nested("master", Deliverable, many=True)


@dataclass(frozen=True)
class Session:
    """A whole session, paths resolved against the session file's folder."""

    path: Path
    title: str
    artist: str | None
    sample_rate: int
    stems_dir: Path
    seed: int
    tempo_bpm: float | None
    tracks: tuple[Track, ...]
    buses: tuple[Bus, ...]
    mix: MixBus
    mastering: Mastering | None
    output: Output
    marks: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Where each key path is written (``"tracks.kick.stem"`` → ``"song.yaml:12:11"``), so
    that a problem found while rendering (a damaged stem) points at the session's line."""

    def where(self, key_path: str) -> str:
        """``song.yaml:12:11: tracks.kick.stem`` (the file alone when the key has no mark)."""
        mark = self.marks.get(key_path)
        return f"{mark}: {key_path}" if mark else f"{self.path}: {key_path}"

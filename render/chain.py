"""Insert chains: the session's effects, prepared once, run over a strip's signal.

Each model effect becomes a ``PreparedEffect``: a call into ``render.dsp`` with its
parameters converted (note values to ms at the session tempo, reverb impulse responses
synthesised or loaded), the length of the tail it adds after the input ends, and the
sidechain it listens to. Effects that delay their output (a lookahead limiter) are
compensated here, so every chain's output stays aligned to time zero and parallel paths
meet at a bus sample-aligned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache, cached_property
from typing import Any

import numpy as np

from render import audio_io, designs
from render.dsp import (
    delay,
    dynamics,
    eq,
    limiter,
    linear_phase,
    multiband,
    reverb,
    saturation,
    stereo,
)
from render.dsp.levels import db_to_gain
from render.session.model import (
    Compressor,
    Delay,
    Effect,
    Eq,
    Gain,
    Gate,
    Limiter,
    Multiband,
    Reverb,
    Saturation,
    Session,
    Width,
)

Keys = Mapping[str, np.ndarray]
BlockProcess = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
"""One block ``[channels, n]`` (and its sidechain key block, or None) to the processed block;
a block processor carries its state from one call to the next."""


class Tail:
    """How long an effect rings after its input falls silent, in samples. Most effects know
    at once; a synthetic reverb works it out from its decay (its crossover's response and
    a T30 fit: a few ms, and the start of numba: 0.45 s), which a render served whole from
    the cache never needs.
    ``key`` is what decides the length, as JSON: the length itself, or the settings it
    follows from; ``samples`` works it out on first use."""

    def __init__(self, samples: int | Callable[[], int], key: Any = None) -> None:
        self._samples = samples
        self.key = samples if isinstance(samples, int) else key

    @cached_property
    def samples(self) -> int:
        return self._samples if isinstance(self._samples, int) else self._samples()


@dataclass(frozen=True)
class PreparedEffect:
    """One effect ready to run on ``float64[channels, n]`` audio."""

    process: BlockProcess  # the whole signal (and its whole key) at once
    tail: Tail  # how long it rings after its input falls silent
    latency_samples: int  # how late its output is; removed by ``run_chain``
    sidechain: str | None  # the track or bus whose signal keys it
    stream: Callable[[int], BlockProcess] | None = None
    """A fresh block processor for a signal of that many channels; None where the effect
    can only run on the whole signal. Blocks give bit-identical results to ``process``."""
    block_multiple: int = 1
    """Blocks given to the block processor must be multiples of this many samples (all but
    the last): a partitioned convolution works in whole partitions."""


def prepare_chain(
    effects: Sequence[Effect], where: str, session: Session
) -> tuple[PreparedEffect, ...]:
    """Prepare ``effects`` (written at key path ``where``, e.g. ``buses.plate.inserts``)."""
    return tuple(
        prepare_effect(effect, f"{where}[{index}]", session) for index, effect in enumerate(effects)
    )


def run_chain(chain: Sequence[PreparedEffect], x: np.ndarray, keys: Keys) -> np.ndarray:
    """Run ``x`` through ``chain`` in order; sidechain keys are looked up by source name."""
    for effect in chain:
        key = keys[effect.sidechain] if effect.sidechain is not None else None
        if effect.latency_samples:
            padded = np.pad(x, ((0, 0), (0, effect.latency_samples)))
            key = None if key is None else np.pad(key, ((0, 0), (0, effect.latency_samples)))
            x = effect.process(padded, key)[:, effect.latency_samples :]
        else:
            x = effect.process(x, key)
    return x


def streams(chain: Sequence[PreparedEffect], block: int) -> bool:
    """Whether every effect of ``chain`` can run in blocks of ``block`` samples (the last
    block may be shorter)."""
    return all(effect.stream is not None and block % effect.block_multiple == 0 for effect in chain)


def block_chain(chain: Sequence[PreparedEffect], channels: int) -> list[BlockProcess] | None:
    """Fresh block processors for every effect of ``chain``, or None when one of them can
    only run on the whole signal."""
    if any(effect.stream is None for effect in chain):
        return None
    return [effect.stream(channels) for effect in chain]  # type: ignore[misc]


def chain_tail_samples(chain: Sequence[PreparedEffect]) -> int:
    """Samples a chain may ring after its input ends: the tails of its effects add up."""
    return sum(effect.tail.samples for effect in chain)


def chain_tail_keys(chain: Sequence[PreparedEffect]) -> list[Any]:
    """What decides each of the chain's tails (``Tail.key``), without working them out."""
    return [effect.tail.key for effect in chain]


def prepare_effect(effect: Effect, where: str, session: Session) -> PreparedEffect:
    """The dsp call for one model effect (dispatch on the effect's type)."""
    rate = session.sample_rate
    match effect:
        case Eq():
            bands = [
                eq.Band(b.type, b.frequency_hz, b.gain_db, b.q, b.slope, b.channels)
                for b in effect.bands
            ]
            passes = {
                kind: (setting.frequency_hz, int(setting.slope_db_per_oct)) if setting else None
                for kind, setting in (("highpass", effect.highpass), ("lowpass", effect.lowpass))
            }
            if effect.phase == "linear":
                return PreparedEffect(
                    lambda x, key: linear_phase.equalize_linear_phase(x, rate, bands, **passes),
                    Tail(linear_phase.linear_phase_tail_samples(rate, bands, **passes)),
                    linear_phase.linear_phase_latency_samples(rate, bands, **passes),
                    None,
                )
            return _streamed(
                lambda channels: eq.Equalizer(rate, channels, bands, **passes), None, keyed=False
            )
        case Compressor() | Gate():
            # The model's fields are the processor's keyword arguments, but for the sidechain
            # (a name, resolved to a key signal at run time) and the key filter's name.
            settings = {f.name: getattr(effect, f.name) for f in fields(effect)}
            sidechain = settings.pop("sidechain")
            settings["key_highpass_hz"] = settings.pop("sidechain_highpass_hz")
            processor = dynamics.Compressor if isinstance(effect, Compressor) else dynamics.Gate
            return _streamed(lambda channels: processor(rate, channels, **settings), sidechain)
        case Multiband():
            bands = [
                multiband.BandSettings(**{f.name: getattr(b, f.name) for f in fields(b)})
                for b in effect.bands
            ]
            return _streamed(
                lambda channels: multiband.MultibandCompressor(
                    rate, channels, effect.crossovers_hz, bands, effect.mix
                ),
                None,
                keyed=False,
            )
        case Limiter():
            return PreparedEffect(
                lambda x, key: limiter.limit(
                    x,
                    rate,
                    ceiling_db=effect.ceiling_dbtp,
                    release_ms=effect.release_ms,
                    lookahead_ms=effect.lookahead_ms,
                    true_peak=effect.true_peak,
                ),
                Tail(0),
                limiter.limiter_latency_samples(rate, effect.lookahead_ms),
                None,
            )
        case Reverb():
            ir, tail = _impulse_response(effect, where, session)
            settings = {
                "mix": effect.mix,
                "sample_rate": rate,
                "highpass_hz": effect.highpass_hz,
                "lowpass_hz": effect.lowpass_hz,
            }
            return _streamed(
                lambda channels: reverb.ConvolutionReverb(ir(), channels, **settings),
                None,
                keyed=False,
                tail=tail,
                block_multiple=reverb.PARTITION,
            )
        case Delay():
            time_ms = (
                effect.time
                if isinstance(effect.time, float)
                else effect.time.duration_ms(session.tempo_bpm or 0.0)
            )
            settings = {
                "time_ms": time_ms,
                "feedback": effect.feedback,
                "mix": effect.mix,
                "ping_pong": effect.ping_pong,
                "highpass_hz": effect.highpass_hz,
                "lowpass_hz": effect.lowpass_hz,
            }
            return _streamed(
                lambda channels: delay.Echo(rate, channels, **settings),
                None,
                keyed=False,
                tail=Tail(delay.delay_tail_samples(rate, time_ms, effect.feedback)),
            )
        case Saturation():
            factor = effect.oversample
            return _whole(
                lambda x: saturation.saturate(
                    x,
                    drive_db=effect.drive_db,
                    curve=effect.curve,
                    mix=effect.mix,
                    output_db=effect.output_db,
                    oversample=factor,
                    resampler=None if factor == 1 else _resampler(factor),
                )
            )
        case Width():

            def widen(x: np.ndarray) -> np.ndarray:
                return stereo.width(x, rate, amount=effect.amount, bass_mono_hz=effect.bass_mono_hz)

            # Without bass mono, width is memoryless: any block is processed on its own.
            return _whole(widen, stateless=effect.bass_mono_hz is None)
        case Gain():
            factor = db_to_gain(effect.level_db) * (-1.0 if effect.polarity == "inverted" else 1.0)
            return _whole(lambda x: x * factor, stateless=True)
    raise TypeError(f"{where}: no renderer for {type(effect).__name__}")


def _streamed(
    make: Callable[[int], Any],
    sidechain: str | None,
    *,
    keyed: bool = True,
    tail: Tail | None = None,
    block_multiple: int = 1,
) -> PreparedEffect:
    """An effect with a block processor class (``make(channels)``); the whole signal is then
    processed as one block. ``keyed`` processors take the sidechain key block too."""

    def stream(channels: int) -> BlockProcess:
        return Stage(make(channels), keyed)

    def whole(x: np.ndarray, key: np.ndarray | None) -> np.ndarray:
        return stream(x.shape[0])(x, key)

    return PreparedEffect(whole, tail or Tail(0), 0, sidechain, stream, block_multiple)


class Stage:
    """The block process of a ``processor`` (``keyed``: one that takes the key block too),
    which it holds for whoever can run it better knowing what it is (two tracks' equalizers
    or compressors side by side)."""

    def __init__(self, processor: Any, keyed: bool) -> None:
        self.processor, self.keyed = processor, keyed

    def __call__(self, x: np.ndarray, key: np.ndarray | None) -> np.ndarray:
        if self.keyed:
            return self.processor.process(x, key)  # type: ignore[no-any-return]
        return self.processor.process(x)  # type: ignore[no-any-return]


def _whole(
    process: Callable[[np.ndarray], np.ndarray], *, stateless: bool = False
) -> PreparedEffect:
    def run(x: np.ndarray, key: np.ndarray | None) -> np.ndarray:
        return process(x)

    return PreparedEffect(run, Tail(0), 0, None, (lambda channels: run) if stateless else None)


def _impulse_response(
    effect: Reverb, where: str, session: Session
) -> tuple[Callable[[], np.ndarray], Tail]:
    """The reverb's IR (a call that makes it) and its tail: loaded from its file (resampled
    to the session rate) here, so a bad file is reported before anything renders; or
    synthesised on first use with a generator seeded by the session seed and the effect's
    place in the session, so two reverbs differ and each is the same on every render."""
    if effect.ir is not None:
        ir, _ = audio_io.read_stem(effect.ir, session.sample_rate)
        loaded = np.vstack([ir, ir]) if ir.shape[0] == 1 else ir
        return lambda: loaded, Tail(reverb.reverb_tail_samples(loaded))
    settings = {
        "decay_s": effect.decay_s,
        "predelay_ms": effect.predelay_ms,
        "damping": effect.damping,
        "size": effect.size,
        "width": effect.width,
    }

    @cache
    def synthesised() -> np.ndarray:
        rng = np.random.default_rng([session.seed, zlib.crc32(where.encode("utf-8"))])
        return reverb.synthetic_ir(session.sample_rate, **settings, rng=rng)

    def samples() -> int:
        return reverb.synthetic_ir_samples(
            session.sample_rate,
            decay_s=effect.decay_s,
            predelay_ms=effect.predelay_ms,
            damping=effect.damping,
        )

    key = {"synthetic_ir": {"sample_rate": session.sample_rate, **settings}}
    return synthesised, Tail(samples, key)


@cache
def _resampler(factor: int) -> np.ndarray:
    """Saturation's resampling filter for ``factor``, kept between runs (``render.designs``):
    designing it needs scipy.signal, 0.6 s to import. Read once per process, however many
    strips saturate."""
    return designs.kept(
        "saturation-resampler",
        saturation.resampler_design(factor),
        lambda: saturation.resampling_filter(factor),
    )

"""The channel strip is exact: rendered samples equal their closed-form values.

Stems are written as 64-bit float WAV so the file adds no error; the tolerance of 1e-9 is
far below one 24-bit step (1.2e-7) and only absorbs floating-point rounding.
"""

from __future__ import annotations

import gc
import math
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from render.mix import _Mixer, _queue_after, render_mix
from render.session import load_session
from render.session.model import MIX_BUS
from render.streamed import StreamedPair
from tests.conftest import SAMPLE_RATE, sine, write_stem

ATOL = 1e-9


def mix_of(folder: Path, tracks_yaml: str, extra: str = "", jobs: int = 2) -> np.ndarray:
    session = folder / "session.yaml"
    session.write_text(f"version: 1\nstems: stems\n{extra}tracks:\n{tracks_yaml}")
    return render_mix(load_session(session), jobs).audio


@pytest.fixture
def stems(tmp_path: Path) -> Path:
    """tone.wav: mono 1 kHz sine at 0.5; dc.wav: mono 0.5 for 1 s; wide.wav: stereo noise."""
    write_stem(tmp_path / "stems" / "tone.wav", sine(1000.0, 1.0))
    write_stem(tmp_path / "stems" / "dc.wav", np.full((1, SAMPLE_RATE), 0.5))
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, SAMPLE_RATE))
    write_stem(tmp_path / "stems" / "wide.wav", noise)
    return tmp_path


@pytest.mark.parametrize("gain_db", [0.0, -6.0, -20.5, 3.0])
@pytest.mark.parametrize("pan", ["C", "L30", "R100", "L100", "R45"])
def test_mono_gain_and_constant_power_pan(stems: Path, gain_db: float, pan: str) -> None:
    mix = mix_of(stems, f"  t: {{stem: tone.wav, gain: {gain_db} dB, pan: {pan}}}\n")
    position = {"C": 0.0, "L30": -0.3, "R100": 1.0, "L100": -1.0, "R45": 0.45}[pan]
    angle = (position + 1) * math.pi / 4
    gain = 10 ** (gain_db / 20)
    x = sine(1000.0, 1.0)[0]
    np.testing.assert_allclose(mix[0], x * gain * math.cos(angle), atol=ATOL)
    np.testing.assert_allclose(mix[1], x * gain * math.sin(angle), atol=ATOL)


def test_pan_law_figures(stems: Path) -> None:
    """Centre is -3.01 dB per side; hard left leaves the right side exactly silent."""
    centre = mix_of(stems, "  t: {stem: dc.wav}\n")
    assert 20 * math.log10(centre[0, 0] / 0.5) == pytest.approx(-3.0103, abs=1e-4)
    hard_left = mix_of(stems, "  t: {stem: dc.wav, pan: L100}\n")
    assert np.all(hard_left[1] == 0.0) and np.allclose(hard_left[0], 0.5, atol=ATOL)
    hard_right = mix_of(stems, "  t: {stem: dc.wav, pan: R100}\n")
    assert np.all(hard_right[0] == 0.0)


@pytest.mark.parametrize("pan", [0.0, 0.5, -0.8])
def test_stereo_balance(stems: Path, pan: float) -> None:
    """Balance keeps the near side at unity and turns the far side down (sin/cos scaled by √2)."""
    mix = mix_of(stems, f"  t: {{stem: wide.wav, pan: {pan}}}\n")
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, SAMPLE_RATE))
    angle = (pan + 1) * math.pi / 4
    left = min(1.0, math.sqrt(2) * math.cos(angle))
    right = min(1.0, math.sqrt(2) * math.sin(angle))
    np.testing.assert_allclose(mix, noise * np.array([[left], [right]]), atol=ATOL)


def test_impulse_start_offset_polarity_and_mix_gain(tmp_path: Path) -> None:
    impulse = np.zeros((1, 100))
    impulse[0, 10] = 0.8
    write_stem(tmp_path / "stems" / "click.wav", impulse)
    mix = mix_of(
        tmp_path,
        "  a: {stem: click.wav, start: 0.5 s, pan: L100, polarity: inverted}\n",
        extra="mix: {gain: -6 dB}\n",
    )
    at = SAMPLE_RATE // 2 + 10
    assert mix.shape == (2, SAMPLE_RATE // 2 + 100)
    assert mix[0, at] == pytest.approx(-0.8 * 10 ** (-6 / 20), abs=ATOL)
    assert np.count_nonzero(mix) == 1


def test_trim_and_linear_fades(stems: Path) -> None:
    """Trim cuts the stem to [0.25 s, 0.75 s); a 0.1 s linear fade ramps k/n from exact 0."""
    mix = mix_of(
        stems,
        "  t: {stem: dc.wav, pan: L100, trim: {start: 0.25 s, end: 0.75 s}, "
        "fade_in: 0.1 s, fade_out: 0.1 s}\n",
    )
    n = SAMPLE_RATE // 10
    assert mix.shape[1] == SAMPLE_RATE // 2
    ramp = 0.5 * np.arange(n) / n
    np.testing.assert_allclose(mix[0, :n], ramp, atol=ATOL)
    np.testing.assert_allclose(mix[0, -n:], ramp[::-1], atol=ATOL)
    np.testing.assert_allclose(mix[0, n:-n], 0.5, atol=ATOL)


@pytest.mark.parametrize(
    ("curve", "midpoint"),
    [
        ("linear", 0.5),
        ("equal_power", math.sin(math.pi / 4)),
        ("s_curve", 0.5),
        ("exponential", (math.sqrt(1000) - 1) / 999),
    ],
)
def test_fade_curves_at_their_midpoint(stems: Path, curve: str, midpoint: float) -> None:
    mix = mix_of(
        stems, f"  t: {{stem: dc.wav, pan: L100, fade_in: {{length: 1 s, curve: {curve}}}}}\n"
    )
    assert mix[0, 0] == 0.0
    assert mix[0, SAMPLE_RATE // 2] == pytest.approx(0.5 * midpoint, abs=ATOL)


def test_mute_and_solo_behave_like_a_console(stems: Path) -> None:
    tracks = "  a: {stem: dc.wav, pan: L100}\n  b: {stem: dc.wav, pan: R100, %s}\n"
    muted = mix_of(stems, tracks % "mute: true")
    assert np.all(muted[1] == 0.0) and np.all(muted[0] > 0.49)
    soloed = mix_of(stems, tracks % "solo: true")
    assert np.all(soloed[0] == 0.0) and np.all(soloed[1] > 0.49)


def test_resampled_stem_keeps_pitch_and_level(tmp_path: Path) -> None:
    """A 44.1 kHz stem in a 48 kHz session plays at the same pitch and level (soxr VHQ)."""
    write_stem(tmp_path / "stems" / "tone.wav", sine(1000.0, 1.0, sample_rate=44_100), 44_100)
    session = tmp_path / "session.yaml"
    session.write_text("version: 1\nstems: stems\ntracks:\n  t: {stem: tone.wav, pan: L100}\n")
    mix = render_mix(load_session(session), 1)
    assert mix.audio.shape[1] == SAMPLE_RATE
    assert any("resampled" in note for note in mix.notes)
    middle = mix.audio[0, 4800:-4800]  # away from the resampler's edge transients
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / middle.size
    assert peak_hz == pytest.approx(1000.0, abs=SAMPLE_RATE / middle.size)
    assert np.sqrt(2 * np.mean(middle**2)) == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("jobs", [1, 3])
def test_the_mix_bus_streamed_keeps_its_bits(
    stems: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Where all its inputs stream, the mix bus runs block by block in the workers (each
    worker's partial sums of its input added up, its chain, its gain) as its inputs come:
    the bits of the mix bus run after the stream, over a song of three and a half blocks,
    with tracks and buses feeding it and a compressor whose state crosses the blocks."""
    write_stem(stems / "stems" / "long.wav", sine(220.0, 4.8, amplitude=0.7))
    tracks = (
        "  a: {stem: long.wav, pan: L30, sends: {room: -6 dB}}\n"
        "  b: {stem: wide.wav, start: 2.1 s, out: group}\n"
        "  c: {stem: tone.wav, start: 3 s, gain: -2 dB, out: group}\n"
    )
    extra = (
        "buses:\n  group: {inserts: [{compressor: {threshold: -30 dB, ratio: 3}}]}\n"
        "  room: {inserts: [{delay: {time: 90 ms, feedback: 40%}}]}\n"
        "mix: {gain: -1.5 dB, inserts: [{compressor: {threshold: -24 dB, ratio: 4}}]}\n"
    )
    streaming: list[bool] = []
    chosen = _Mixer.streamed_nodes

    def spy(self: _Mixer, needed: list) -> list:  # type: ignore[type-arg]
        nodes = chosen(self, needed)
        streaming.append(MIX_BUS in self.streamed)
        return nodes

    monkeypatch.setattr(_Mixer, "streamed_nodes", spy)
    streamed = mix_of(stems, tracks, extra, jobs)

    def whole(self: _Mixer, needed: list) -> list:  # type: ignore[type-arg]
        nodes = chosen(self, needed)
        self.streamed.discard(MIX_BUS)
        return nodes

    monkeypatch.setattr(_Mixer, "streamed_nodes", whole)
    assert streaming == [True]
    assert streamed.shape[1] > 3 * 65_536
    assert streamed.tobytes() == mix_of(stems, tracks, extra, jobs).tobytes()


def test_jobs_do_not_change_a_bit(stems: Path) -> None:
    """Tracks are summed in session order whatever order threads finish in."""
    tracks = "".join(
        f"  t{i}: {{stem: wide.wav, gain: -{i}.3 dB, pan: {i / 10}}}\n" for i in range(7)
    )
    one = mix_of(stems, tracks, jobs=1)
    four = mix_of(stems, tracks, jobs=4)
    assert one.tobytes() == four.tobytes()


def test_tracks_equalized_side_by_side_keep_their_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamed tracks whose chains open with equalizers of as many sections (3 here) are decoded
    into one block and equalized in one loop, two mono or two stereo at a time, and then
    compressed side by side where both chains go on with compressors that pair; each gets
    the bits it gets alone, over several blocks, with clips that start and end inside a
    block, and in chains that go on after the equalizer or the compressor."""
    rng = np.random.default_rng(7)
    stems = (("m1", 1), ("m2", 1), ("s1", 2), ("s2", 2), ("s3", 2), ("s4", 2), ("s5", 2))
    for name, channels in stems:
        write_stem(tmp_path / "stems" / f"{name}.wav", rng.uniform(-0.5, 0.5, (channels, 150_000)))
    eq = "{eq: {highpass: 40 Hz, bands: [{peak: 400 Hz, gain: -3 dB}, {peak: 8 kHz, gain: 2 dB}]}}"
    other = "{eq: {lowpass: 12 kHz, bands: [{peak: 1 kHz, gain: 4 dB}, {peak: 90 Hz, gain: 2 dB}]}}"
    compressor = "{compressor: {threshold: -20 dB, ratio: 3, attack: 5 ms}}"
    gentle = "{compressor: {threshold: -12 dB, ratio: 2, knee: 0 dB, release: 40 ms, mix: 80%}}"
    unlinked = "{compressor: {threshold: -20 dB, ratio: 3, link: 50%}}"
    # Paired tracks are summed from both in one pass where both feed a bus from the same
    # tap (a and c the mix; b and d the mix and the room), else each alone.
    sends = (
        "{room: -12 dB}",
        "{room: -6 dB, sub: {level: -3 dB, tap: pre}}",
        "{room: -9 dB, sub: -4 dB}",
    )
    tracks = (
        f"  a: {{stem: m1.wav, pan: L40, sends: {sends[0]}, inserts: [{eq}, {compressor}]}}\n"
        f"  b: {{stem: s1.wav, start: 0.5 s, fade_out: 0.3 s, sends: {sends[1]},\n"
        f"      inserts: [{eq}, {compressor}]}}\n"
        f"  c: {{stem: m2.wav, gain: -3 dB, inserts: [{other}, {gentle}]}}\n"
        f"  d: {{stem: s2.wav, pan: R20, sends: {sends[2]}, inserts: [{other}, {gentle}, {eq}]}}\n"
        f"  e: {{stem: s3.wav, inserts: [{compressor}, {eq}]}}\n"
        f"  f: {{stem: s4.wav, inserts: [{eq}, {unlinked}]}}\n"
        f"  g: {{stem: s5.wav, out: sub, inserts: [{other}, {compressor}]}}\n"
    )
    buses = (
        "buses:\n  room: {inserts: [{delay: {time: 30 ms, feedback: 20%}}]}\n  sub: {gain: -2 dB}\n"
    )
    paired: set[tuple[str, str, bool]] = set()
    inserts = StreamedPair.inserts

    def spy(self: StreamedPair, offset: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        paired.add((self.first.node.name, self.second.node.name, self.compressors is not None))
        return inserts(self, offset, n)

    monkeypatch.setattr(StreamedPair, "inserts", spy)
    together = mix_of(tmp_path, tracks, buses)
    # e's chain opens otherwise; f's stereo compressor has two drives, so f and g share
    # only the equalizers.
    assert paired == {("a", "c", True), ("b", "d", True), ("f", "g", False)}
    monkeypatch.setattr(StreamedPair, "pairs", staticmethod(lambda first, second: False))
    alone = mix_of(tmp_path, tracks, buses)
    assert together.tobytes() == alone.tobytes()


def test_a_strips_blocks_queue_in_order_and_pass_on_a_failure() -> None:
    """Each block is queued only once the one before is done, so blocks of one strip run in
    order even on many workers, none of them waiting; a failed block fails the blocks after
    it without running them."""
    ran: list[int] = []
    gate = threading.Event()

    def block(index: int) -> int:
        if index == 0:
            gate.wait(5.0)
        if index == 3:
            raise ValueError("block 3 failed")
        ran.append(index)
        return index

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: list[Future[int]] = []
        for index in range(6):
            futures.append(_queue_after(pool, futures[-1:], block, index))
        assert not any(f.done() for f in futures)  # all wait for block 0
        gate.set()
        assert [f.result(timeout=5.0) for f in futures[:3]] == [0, 1, 2]
        for future in futures[3:]:
            with pytest.raises(ValueError, match="block 3 failed"):
                future.result(timeout=5.0)
        assert ran == [0, 1, 2]


def test_a_queued_blocks_arguments_are_freed_once_it_has_run() -> None:
    """A block queued after others holds its arguments (a megabyte of audio each) only
    until it has run: no reference cycle between the futures and their callbacks keeps
    them for a full collection of the garbage collector, which may be far off."""

    class Block:
        pass

    collecting = gc.isenabled()
    gc.disable()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.submit(lambda: None), pool.submit(lambda: None)
            argument = Block()
            freed = weakref.ref(argument)
            last = _queue_after(pool, [first, None, second], lambda block: None, argument)
            del argument
            last.result(timeout=5.0)
        del first, second, last
        assert freed() is None
    finally:
        if collecting:
            gc.enable()

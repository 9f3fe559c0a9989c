"""The mixing graph: buses, sends, sidechains, automation, latency and tails, checked
sample by sample against closed-form values (tolerance 1e-9: float64 rounding only)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from render.mix import render_mix
from render.session import load_session
from tests.conftest import SAMPLE_RATE, sine, write_stem

ATOL = 1e-9
CENTRE = math.cos(math.pi / 4)  # constant-power pan law at the centre


def mix_of(folder: Path, body: str, jobs: int = 2) -> np.ndarray:
    session = folder / "session.yaml"
    session.write_text(f"version: 1\nstems: stems\ntempo: 112\n{body}")
    return render_mix(load_session(session), jobs).audio


def gain(db: float) -> float:
    return 10 ** (db / 20)


@pytest.fixture
def stems(tmp_path: Path) -> Path:
    """dc.wav: mono 0.5 for 1 s; click.wav: one 0.5 impulse at 0.1 s in 1 s; tone.wav: 1 kHz."""
    write_stem(tmp_path / "stems" / "dc.wav", np.full((1, SAMPLE_RATE), 0.5))
    click = np.zeros((1, SAMPLE_RATE))
    click[0, SAMPLE_RATE // 10] = 0.5
    write_stem(tmp_path / "stems" / "click.wav", click)
    write_stem(tmp_path / "stems" / "tone.wav", sine(1000.0, 1.0))
    return tmp_path


def test_bus_fader_pan_and_mute(stems: Path) -> None:
    body = """tracks:
  a: {stem: dc.wav, out: group}
  b: {stem: dc.wav, out: quiet}
buses:
  group: {gain: -6 dB, pan: L100}
  quiet: {mute: true}
"""
    mix = mix_of(stems, body)
    # The mono track is panned centre (cos 45°) into a stereo bus; the bus balance at hard
    # left keeps the left side at unity and silences the right.
    np.testing.assert_allclose(mix[0], 0.5 * CENTRE * gain(-6), atol=ATOL)
    assert np.all(mix[1] == 0.0)


@pytest.mark.parametrize("tap", ["post", "pre"])
def test_send_levels_pre_and_post_fader(stems: Path, tap: str) -> None:
    """A post-fader send follows the fader; a pre-fader send ignores it (both follow pan)."""
    body = f"""tracks:
  a: {{stem: dc.wav, gain: -6 dB, sends: {{aux: {{level: -12 dB, tap: {tap}}}}}}}
buses:
  aux: {{}}
"""
    mix = mix_of(stems, body)
    send_source = gain(-6) if tap == "post" else 1.0
    expected = 0.5 * CENTRE * (gain(-6) + send_source * gain(-12))
    np.testing.assert_allclose(mix, expected, atol=ATOL)


def test_solo_keeps_effect_returns_alive(stems: Path) -> None:
    """Soloing a track mutes the other tracks but not the return bus it sends to."""
    body = """tracks:
  a: {stem: dc.wav, pan: L100, solo: true, sends: {aux: -6 dB}}
  b: {stem: dc.wav, pan: L100}
buses:
  aux: {}
"""
    mix = mix_of(stems, body)
    np.testing.assert_allclose(mix[0], 0.5 * (1 + gain(-6)), atol=ATOL)
    assert np.all(mix[1] == 0.0)


def test_lookahead_path_and_dry_path_arrive_together(stems: Path) -> None:
    """An impulse through a 5 ms lookahead limiter and the same impulse dry meet at the mix
    bus as one impulse at the same sample: the graph compensates the limiter's latency."""
    body = """tracks:
  dry: {stem: click.wav, pan: L100}
  limited: {stem: click.wav, pan: L100, out: lim}
buses:
  lim:
    inserts: [{limiter: {ceiling: -1 dB, lookahead: 5 ms, true_peak: false}}]
"""
    mix = mix_of(stems, body)
    assert np.flatnonzero(mix[0]).tolist() == [SAMPLE_RATE // 10]
    # dry 0.5 plus the limited copy: 0.5 is below the -1 dB ceiling (0.891) and passes.
    assert mix[0, SAMPLE_RATE // 10] == pytest.approx(1.0, abs=1e-9)


def test_sidechain_ducks_only_while_the_key_plays(stems: Path) -> None:
    """The bass is ducked by a muted kick (a 100 ms burst from 0.1 s): untouched before the
    burst, more than 10 dB down during it, back to unity once the release has run out."""
    burst = np.zeros((1, SAMPLE_RATE))
    burst[:, SAMPLE_RATE // 10 : SAMPLE_RATE // 5] = sine(100.0, 0.1)
    write_stem(stems / "stems" / "kick.wav", burst)
    body = """tracks:
  kick: {stem: kick.wav, mute: true}
  bass:
    stem: tone.wav
    pan: L100
    inserts:
      - compressor: {threshold: -40 dB, ratio: 10, attack: 1 ms, release: 20 ms, sidechain: kick}
"""
    mix = mix_of(stems, body)[0]
    tone = sine(1000.0, 1.0)[0]
    start, end = SAMPLE_RATE // 10, SAMPLE_RATE // 5
    np.testing.assert_allclose(mix[:start], tone[:start], atol=ATOL)
    during = slice(start + SAMPLE_RATE // 50, end)  # after 20 attack time constants
    ducked_db = 20 * math.log10(np.max(np.abs(mix[during])) / np.max(np.abs(tone[during])))
    assert ducked_db < -10.0
    late = slice(end + SAMPLE_RATE // 2, end + SAMPLE_RATE // 2 + 480)  # 25 release constants on
    np.testing.assert_allclose(mix[late], tone[late], atol=1e-6)


def test_gain_automation_is_sample_accurate(stems: Path) -> None:
    """A linear lane ramps the amplitude from the point's sample to the next point's; an
    exponential lane moves in dB at a constant rate; before and after, the value holds."""
    body = """tracks:
  a:
    stem: dc.wav
    pan: L100
    gain: 12 dB   # replaced by the automated fader
    automation:
      gain: [{at: 0.25 s, value: -inf dB}, {at: 0.5 s, value: 0 dB},
             {at: 0.75 s, value: -40 dB, curve: exponential}]
"""
    mix = mix_of(stems, body)[0]
    q = SAMPLE_RATE // 4
    assert np.all(mix[:q] == 0.0)
    k = np.arange(q)
    np.testing.assert_allclose(mix[q : 2 * q], 0.5 * k / q, atol=ATOL)
    np.testing.assert_allclose(mix[2 * q : 3 * q], 0.5 * 10 ** (-40 * k / q / 20), atol=ATOL)
    np.testing.assert_allclose(mix[3 * q :], 0.5 * gain(-40), atol=ATOL)


def test_pan_automation_sweeps_with_the_pan_law(stems: Path) -> None:
    body = """tracks:
  a: {stem: dc.wav, automation: {pan: [{at: 0 s, value: L100}, {at: 1 s, value: R100}]}}
"""
    mix = mix_of(stems, body)
    assert (mix[0, 0], mix[1, 0]) == (0.5, 0.0)
    middle = SAMPLE_RATE // 2
    np.testing.assert_allclose(mix[:, middle], 0.5 * CENTRE, atol=ATOL)


def test_tails_extend_the_mix_and_note_values_follow_the_tempo(stems: Path) -> None:
    """A dotted-eighth delay at 112 BPM repeats every 401.79 ms and rings past the stem's end;
    the mix is as long as its last audible repeat."""
    body = """tracks:
  a: {stem: click.wav, pan: L100, sends: {echo: 0 dB}}
buses:
  echo: {inserts: [{delay: {time: 1/8., feedback: 50%, mix: 100%}}], pan: L100}
"""
    mix = mix_of(stems, body)[0]
    period = round(60 / 112 * 0.75 * SAMPLE_RATE)
    at = SAMPLE_RATE // 10
    assert mix[at] == pytest.approx(0.5, abs=ATOL)
    assert mix[at + period] == pytest.approx(0.5, abs=ATOL)
    assert mix[at + 2 * period] == pytest.approx(0.25, abs=ATOL)
    assert mix.size > SAMPLE_RATE + period  # rings on after the 1 s stem


def test_jobs_do_not_change_a_bit_with_buses_and_sidechains(stems: Path) -> None:
    tracks = "".join(
        f"  t{i}: {{stem: tone.wav, gain: -{i}.5 dB, pan: {i / 10}, out: {'ab'[i % 2]}, "
        f"sends: {{verb: -{10 + i} dB}}}}\n"
        for i in range(6)
    )
    body = f"""tracks:
{tracks}  k: {{stem: click.wav, inserts: [{{compressor: {{threshold: -30 dB, sidechain: t1}}}}]}}
buses:
  a: {{inserts: [{{eq: {{bands: [{{peak: 2 kHz, gain: 3 dB}}]}}}}]}}
  b: {{inserts: [{{compressor: {{threshold: -20 dB, sidechain: a}}}}]}}
  verb: {{inserts: [{{reverb: {{decay: 0.4 s}}}}]}}
"""
    assert mix_of(stems, body, jobs=1).tobytes() == mix_of(stems, body, jobs=4).tobytes()


def test_streamed_tracks_equal_whole_renders(stems: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracks rendered block by block give the same bits as the same tracks rendered whole
    (blocks of 1000 samples, so every clip, fade and automation point crosses a boundary)."""
    import render.mix

    body = """tracks:
  a:
    stem: tone.wav
    start: 0.1 s
    fade_in: 30 ms
    fade_out: {length: 0.2 s, curve: s_curve}
    inserts:
      - eq: {highpass: 80 Hz, bands: [{peak: 1 kHz, gain: -4 dB}]}
      - compressor: {threshold: -20 dB, ratio: 3, attack: 2 ms, release: 50 ms}
      - gate: {threshold: -60 dB, hold: 5 ms}
      - gain: -2 dB
    automation: {pan: [{at: 0 s, value: L50}, {at: 0.9 s, value: R40}]}
    sends: {aux: {level: -6 dB, tap: pre}}
  b: {stem: dc.wav, trim: {start: 0.2 s}, polarity: inverted, out: aux}
buses:
  aux: {inserts: [{compressor: {threshold: -30 dB, sidechain: a}}]}
"""
    monkeypatch.setattr(render.mix, "BLOCK", 1000)
    streamed = mix_of(stems, body)
    monkeypatch.setattr(render.mix._Mixer, "streamable", lambda self, node: False)
    assert streamed.tobytes() == mix_of(stems, body).tobytes()


@pytest.mark.parametrize("jobs", [1, 2])
def test_streamed_buses_equal_whole_renders(
    stems: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """Buses rendered block by block in the workers (a bus into a bus, a bus keyed by a bus,
    an echo, tracks straight to the mix) give the same bits as every strip rendered whole:
    each bus still receives its inputs in render order."""
    import render.mix

    body = """tracks:
  a: {stem: tone.wav, out: group, sends: {echo: -6 dB}}
  b: {stem: click.wav, gain: -3 dB, out: group, pan: L30}
  c: {stem: dc.wav, trim: {start: 0.3 s}, gain: -12 dB}
  d: {stem: tone.wav, gain: -20 dB, pan: R60}
  e: {stem: tone.wav, gain: -9 dB, out: master_bus}
buses:
  group:
    inserts: [{eq: {bands: [{peak: 2 kHz, gain: 3 dB}]}}, {gain: -1 dB}]
    out: master_bus
  echo: {inserts: [{delay: {time: 1/16, feedback: 40%, mix: 100%}}], out: master_bus}
  master_bus:
    inserts: [{compressor: {threshold: -30 dB, ratio: 2, sidechain: group}}]
    pan: R20
"""
    monkeypatch.setattr(render.mix, "BLOCK", 1000)
    streamed = mix_of(stems, body, jobs)
    monkeypatch.setattr(render.mix._Mixer, "streamable", lambda self, node: False)
    assert streamed.tobytes() == mix_of(stems, body, jobs).tobytes()


def test_reverb_convolves_with_an_impulse_response_file(stems: Path) -> None:
    """An IR file that is a single tap of 0.5 at 100 samples turns the reverb return into a
    100-sample echo at half level (mono IR files serve both channels)."""
    ir = np.zeros((1, 200))
    ir[0, 100] = 0.5
    write_stem(stems / "irs" / "tap.wav", ir)
    body = """tracks:
  a: {stem: click.wav, pan: L100, out: room}
buses:
  room: {inserts: [{reverb: {ir: irs/tap.wav, mix: 100%}}]}
"""
    mix = mix_of(stems, body)
    at = SAMPLE_RATE // 10 + 100
    assert mix[0, at] == pytest.approx(0.25, abs=ATOL)
    mix[0, at] = 0.0
    assert np.max(np.abs(mix)) < 1e-12  # FFT convolution leaves only round-off elsewhere


def test_endless_echo_is_cut_a_minute_after_the_last_clip(stems: Path) -> None:
    """A 1 s echo with 99 % feedback would ring for 17 minutes; the render stops 60 s after
    the last clip and says so."""
    session = stems / "session.yaml"
    session.write_text(
        "version: 1\nstems: stems\ntracks:\n  a: {stem: click.wav, sends: {echo: 0 dB}}\n"
        "buses:\n  echo: {inserts: [{delay: {time: 1 s, feedback: 99%}}]}\n"
    )
    mix = render_mix(load_session(session), 2)
    # The last repeat inside the minute after the 1 s clip sounds at 60.1 s; nothing after it.
    assert mix.audio.shape[1] == 60 * SAMPLE_RATE + SAMPLE_RATE // 10 + 1
    assert any("the render stops 60 s after it" in note for note in mix.notes)


def test_multiband_compresses_only_the_band_it_is_told_to(tmp_path: Path) -> None:
    """Session keys reach the right band: the low band (below 300 Hz) at a -40 dB threshold
    pulls a loud 60 Hz tone down; the bypassed high band leaves 3 kHz at its level."""
    low, high = sine(60.0, 2.0, 0.5), sine(3000.0, 2.0, 0.1)
    write_stem(tmp_path / "stems" / "both.wav", low + high)
    y = mix_of(
        tmp_path,
        "tracks:\n  both:\n    stem: both.wav\n    inserts: [{multiband: {crossovers: [300 Hz], "
        "bands: [{threshold: -40 dB, ratio: 4, knee: 0 dB}, {bypass: true}]}}]\n",
    )[0, SAMPLE_RATE:]  # the second second: the compressor has settled

    def level_db(x: np.ndarray, frequency_hz: float) -> float:
        """Amplitude of one tone, from the DFT bin it falls on (1 s: 1 Hz bins)."""
        spectrum = np.abs(np.fft.rfft(x[:SAMPLE_RATE])) * 2 / SAMPLE_RATE
        return 20 * math.log10(spectrum[round(frequency_hz)])

    assert level_db(y, 3000.0) == pytest.approx(20 * math.log10(0.1 * CENTRE), abs=0.05)
    assert level_db(y, 60.0) < 20 * math.log10(0.5 * CENTRE) - 10.0

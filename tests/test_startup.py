"""What a render loads as it starts: never ``scipy.signal`` (0.6 s to import) for a mix and
master of EQ (linear-phase too), compression, reverb, delay, width and limiting; saturation
imports it once, to design the filter it keeps (``tests/test_designs.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import render_in_a_fresh_process, sine, write_stem

REPO = Path(__file__).resolve().parent.parent
SESSION = """\
version: 1
stems: stems
tracks:
  bass:
    stem: bass.wav
    inserts:
      - eq: {highpass: {frequency: 30 Hz, slope: 18}, bands: [{peak: 200 Hz, gain: -2 dB}]}
      - compressor: {threshold: -18 dB, ratio: 3, sidechain_highpass: 80 Hz}
    sends: {room: -12 dB, echo: -18 dB}
  keys:
    stem: keys.wav
    inserts:
      - eq:
          lowpass: {frequency: 12 kHz, slope: 24}
          bands: [{high_shelf: 8 kHz, gain: 2 dB, channels: side}]
    sends: {room: -10 dB}
buses:
  room: {inserts: [{reverb: {decay: 0.6 s, highpass: 200 Hz, lowpass: 8 kHz}}]}
  echo: {inserts: [{delay: {time: 120 ms, feedback: 30%, highpass: 300 Hz, lowpass: 5 kHz}}]}
mastering:
  chain:
    - eq: {highpass: {frequency: 25 Hz, slope: 12}}
    - eq: {bands: [{high_shelf: 12 kHz, gain: 1 dB}], phase: linear}
    - width: {amount: 110%, bass_mono: 120 Hz}
    - limiter: {ceiling: -1 dBTP}
  target: {loudness: -16 LUFS}
output:
  master:
    - {format: wav, bit_depth: 24}
    - {format: wav, bit_depth: 16, sample_rate: 44100, name: cd.wav}
"""


def test_a_render_with_eq_dynamics_reverb_and_delay_loads_no_scipy_signal_nor_fft(
    tmp_path: Path,
) -> None:
    write_stem(tmp_path / "stems" / "bass.wav", sine(55.0, 2.0, 0.4))
    write_stem(tmp_path / "stems" / "keys.wav", np.vstack([sine(440.0, 2.0), sine(660.0, 2.0)]))
    (tmp_path / "session.yaml").write_text(SESSION)
    files, modules = render_in_a_fresh_process(
        tmp_path,
        "print(*sorted(f.path.name for f in result.files))\n"
        "print('scipy.signal' in sys.modules, 'scipy.fft' in sys.modules)",
    )
    assert files == "cd.wav mix.wav session.wav"
    assert modules == "False False"  # the reverb's FFTs are numpy's

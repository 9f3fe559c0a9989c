"""Kernels load numba on their first call (``render.jit``), and then work as numba's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def printed(probe: str, *args: str) -> list[str]:
    """The lines ``probe`` prints, run with ``args`` in a fresh interpreter (numba not
    loaded yet)."""
    run = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_numba_is_loaded_by_the_first_kernel_call() -> None:
    """Importing kernel modules loads no numba. The first call of a kernel loads it and puts
    the dispatchers in place of the stand-ins, also where a module imported one by name, so
    a kernel that calls another compiles: ``expm1_each`` calls ``expm1``, which calls
    ``exp``. The values agree with the C library's to 2 ulp."""
    probe = (
        "import math, sys\n"
        "import numpy as np\n"
        "from render.dsp import kernel_math, levels\n"
        "from render.jit import Kernel\n"
        "print('numba' in sys.modules, isinstance(levels.expm1, Kernel))\n"
        "y = np.array([-3.0, -1e-9, 0.0, 0.3, 2.5])\n"
        "got = kernel_math.expm1_each(y)\n"
        "ulps = [abs(g - math.expm1(v)) / math.ulp(math.expm1(v) or 1.0) for g, v in zip(got, y)]\n"
        "print('numba' in sys.modules, max(ulps) <= 2.0)\n"
        "print(type(kernel_math.exp).__name__, type(levels.expm1).__name__)\n"
        "print(abs(kernel_math.exp(1.0) - math.e) <= math.ulp(math.e))\n"
    )
    assert printed(probe) == [
        "False True",
        "True True",
        "CPUDispatcher CPUDispatcher",
        "True",
    ]


def test_numbas_objects_are_frozen_out_of_the_collectors_reach() -> None:
    """Loading numba leaves its long-lived objects frozen (``gc.freeze``), so no later full
    collection traverses them again, and the collector as the caller had it: on, or off."""
    probe = (
        "import gc, sys\n"
        "import numpy as np\n"
        "if sys.argv[-1] == 'off': gc.disable()\n"
        "from render.dsp.kernel_math import exp_each\n"
        "exp_each(np.zeros(1))\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 100_000, len(gc.get_objects()) < 1_000)\n"
    )
    assert printed(probe) == ["True True True"]
    assert printed(probe, "off") == ["False True True"]


def test_a_kernel_declared_after_numba_is_loaded_is_numbas_own() -> None:
    """A module imported after the first kernel call gets dispatchers, not stand-ins."""
    probe = (
        "import numpy as np\n"
        "from render.dsp.kernel_math import exp_each\n"
        "exp_each(np.zeros(1))\n"
        "from render.dsp import eq\n"
        "print(type(eq._sosfilt).__name__)\n"
    )
    assert printed(probe) == ["CPUDispatcher"]


CACHED_SESSION = """\
version: 1
stems: stems
tracks:
  keys:
    stem: keys.wav
    inserts:
      - eq: {highpass: 40 Hz, bands: [{peak: 1 kHz, gain: -2 dB}]}
      - compressor: {threshold: -20 dB, ratio: 2}
mastering:
  chain:
    - eq: {bands: [{high_shelf: 8 kHz, gain: 1 dB}]}
    - limiter: {ceiling: -1 dBTP}
  target: {loudness: -16 LUFS}
"""


def test_a_cached_render_compiles_no_kernel_for_read_only_arrays(tmp_path: Path) -> None:
    """numba compiles a kernel again for read-only arrays: had the render kept its mix
    read-only while storing it, the master's EQ and the analyses of the mix would have
    compiled a second time (1.6 s more on a first render). A render that stores its mix and
    master hands its kernels writable arrays only."""
    from tests.conftest import sine, write_stem

    write_stem(tmp_path / "stems" / "keys.wav", np.vstack([sine(440.0, 1.0), sine(660.0, 1.0)]))
    (tmp_path / "session.yaml").write_text(CACHED_SESSION)
    probe = (
        "import gc; from pathlib import Path\n"
        "from render.cache import CacheOptions\n"
        "from render.pipeline import render_session\n"
        "from render.session import LoadOptions, load_session\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "s = load_session(folder / 'session.yaml', LoadOptions(out_dir=folder / 'out'))\n"
        "caching = CacheOptions(enabled=True, folder=folder / 'cache')\n"
        "result = render_session(s, 2, caching=caching)\n"
        "from numba.core.registry import CPUDispatcher\n"
        "from numba.core.types import Array\n"
        "kernels, read_only = set(), set()\n"
        "gc.unfreeze()  # the dispatchers were frozen out of the collector's lists\n"
        "for d in gc.get_objects():\n"
        "    if type(d) is CPUDispatcher and d.signatures:\n"
        "        kernels.add(d.py_func.__name__)\n"
        "        if any(isinstance(t, Array) and not t.mutable for s in d.signatures for t in s):\n"
        "            read_only.add(d.py_func.__name__)\n"
        "print('_true_peaks' in kernels, '_sosfilt' in kernels, sorted(read_only))\n"
    )
    assert printed(probe) == ["True True []"]

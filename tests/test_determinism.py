"""A render is the same bytes whatever runs it: every file the demo writes (the mix, both
masters, qc.json, qc.html, manifest.json with its hashes of the float64 mix and master) is
identical across runs, thread counts and the CPU features the libraries pick code for.

Each variant renders in its own process (the switches are read when the libraries load):

- one thread everywhere (``--jobs 1``, OpenBLAS, OpenMP, MKL and numba at 1) against two;
- numpy without its AVX-512 code, and with none of its runtime-dispatched SIMD code
  (``NPY_DISABLE_CPU_FEATURES``; numpy refuses to disable its baseline, SSE4.2 on x86-64);
- numba compiling for a generic CPU instead of this one (``NUMBA_CPU_NAME=generic``, into a
  private cache so the repository's is not replaced);
- OpenBLAS with the kernels of an older CPU (``OPENBLAS_CORETYPE``, x86-64 builds);
- all of these at once, the nearest this machine comes to an old x86-64 one.

Each switch is checked to have taken effect: numpy ignores names it does not know (with an
ImportWarning nobody sees), and OpenBLAS falls back to the detected core.

Not varied: the C library's FMA code paths (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA``),
which every sin, cos and filter design goes through; README "Reproducibility" says why.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
DEMO = REPO / "sessions" / "demo"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
KNOBS = (
    *THREAD_VARIABLES,
    "NUMBA_NUM_THREADS",
    "NPY_DISABLE_CPU_FEATURES",
    "NPY_ENABLE_CPU_FEATURES",
    "NUMBA_CPU_NAME",
    "NUMBA_CPU_FEATURES",
    "NUMBA_CACHE_DIR",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_VERBOSE",
    "SOXR_USE_SIMD",
    "SOXR_USE_SIMD32",
    "SOXR_USE_SIMD64",
    "GLIBC_TUNABLES",
)
"""Variables that change which code or how many threads the libraries run: the reference
render is made with none of them inherited from the shell running the tests."""
NUMPY_PROBE = """\
try:
    from numpy._core import _multiarray_umath as m
except ImportError:  # numpy 1.x
    from numpy.core import _multiarray_umath as m
print(" ".join(f for f in m.__cpu_dispatch__ if m.__cpu_features__.get(f)))
"""
"""Prints the dispatched SIMD targets numpy uses in its process (a private module, but the
list ``numpy.show_runtime`` prints as "found")."""
OLD_OPENBLAS_CORE = "Nehalem"
"""SSE4.2, no AVX: the same generation as numpy's x86-64 baseline."""


@dataclass(frozen=True)
class Setup:
    """How a render runs: ``--jobs`` and the environment on top of the test's own."""

    jobs: int
    env: Mapping[str, str]


def threads(count: int) -> Setup:
    """``count`` tracks at once, and ``count`` threads in OpenBLAS, OpenMP, MKL and numba."""
    return Setup(count, {name: str(count) for name in (*THREAD_VARIABLES, "NUMBA_NUM_THREADS")})


REFERENCE = threads(2)
"""Two threads everywhere, whatever the machine's core count, so "one thread" differs."""


def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in KNOBS}


def numpy_simd(disabled: str = "") -> set[str]:
    """numpy's runtime-dispatched SIMD targets a process uses on this CPU (numpy 2.4 on an
    AVX-512 machine: X86_V3, X86_V4, AVX512_ICL), ``disabled`` as NPY_DISABLE_CPU_FEATURES."""
    env = clean_env() | ({"NPY_DISABLE_CPU_FEATURES": disabled} if disabled else {})
    run = subprocess.run(
        [sys.executable, "-c", NUMPY_PROBE], env=env, capture_output=True, text=True, check=True
    )
    return set(run.stdout.split())


def variants() -> dict[str, Setup]:
    """Name -> how the render runs. Only variants that change something on this machine are
    made: none without AVX-512 where numpy has no AVX-512 code to drop, and OpenBLAS core
    types only on x86-64."""
    simd = sorted(numpy_simd())
    avx512 = [name for name in simd if "AVX512" in name or name == "X86_V4"]
    old_machine = {"NUMBA_CPU_NAME": "generic"}
    varied = {"repeated": {}, "numba generic CPU": {"NUMBA_CPU_NAME": "generic"}}
    if avx512:
        varied["numpy without AVX-512"] = {"NPY_DISABLE_CPU_FEATURES": " ".join(avx512)}
    if simd:
        varied["numpy baseline only"] = {"NPY_DISABLE_CPU_FEATURES": " ".join(simd)}
        old_machine |= varied["numpy baseline only"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        varied["OpenBLAS Sandybridge kernels"] = {"OPENBLAS_CORETYPE": "Sandybridge"}
        old_machine |= {"OPENBLAS_CORETYPE": OLD_OPENBLAS_CORE, "SOXR_USE_SIMD64": "0"}
    found = {name: Setup(REFERENCE.jobs, {**REFERENCE.env, **env}) for name, env in varied.items()}
    one_thread = threads(1)
    found["one thread"] = one_thread
    found["old machine"] = Setup(one_thread.jobs, {**one_thread.env, **old_machine})
    return found


VARIANTS = variants()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render(session: Path, out: Path, setup: Setup, numba_cache: Path) -> str:
    """Render ``session`` into ``out`` in a fresh process set up by ``setup``; its stderr."""
    env = clean_env() | dict(setup.env)
    if "NUMBA_CPU_NAME" in env:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)  # not beside the repository's modules
    if "OPENBLAS_CORETYPE" in env:
        env["OPENBLAS_VERBOSE"] = "2"  # prints the core in use, checked by the test
    command = [sys.executable, "-m", "render", str(session), "--quiet", "--out", str(out)]
    run = subprocess.run(
        [*command, "--jobs", str(setup.jobs)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo: renders never write into the repository."""
    folder = tmp_path_factory.mktemp("determinism") / "demo"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("out"))
    return folder / "session.yaml"


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Kernels compiled for the generic CPU, shared by the variants that ask for it."""
    return tmp_path_factory.mktemp("numba-generic")


@pytest.fixture(scope="module")
def reference(session: Path, numba_cache: Path) -> dict[str, str]:
    """File name -> sha256 of every file of the reference render."""
    out = session.parent / "reference"
    render(session, out, REFERENCE, numba_cache)
    hashes = {path.name: sha256(path) for path in sorted(out.iterdir())}
    expected = {"mix.wav", "Indie Pop.wav", "Indie Pop - CD 16-44.wav", "qc.json", "qc.html"}
    assert expected <= hashes.keys()
    return hashes


@pytest.mark.parametrize("variant", VARIANTS)
def test_render_is_byte_identical(
    variant: str, session: Path, numba_cache: Path, reference: dict[str, str]
) -> None:
    setup = VARIANTS[variant]
    if disabled := setup.env.get("NPY_DISABLE_CPU_FEATURES", ""):
        assert not numpy_simd(disabled) & set(disabled.split()), "numpy ignored the variable"
    out = session.parent / variant.replace(" ", "-")
    stderr = render(session, out, setup, numba_cache)
    if core := setup.env.get("OPENBLAS_CORETYPE"):
        assert {line for line in stderr.splitlines() if line.startswith("Core")} == {
            f"Core: {core}"
        }, stderr
    if "NUMBA_CPU_NAME" in setup.env:
        assert any(numba_cache.rglob("*.nbi")), "numba did not cache into NUMBA_CACHE_DIR"
    written = {path.name: sha256(path) for path in sorted(out.iterdir())}
    assert written.keys() == reference.keys()
    differing = sorted(name for name in written if written[name] != reference[name])
    assert not differing, f"{variant} ({setup}): {', '.join(differing)} differ"


RESAMPLE_PROBE = """\
import hashlib
import numpy as np
from render import audio_io
x = np.random.default_rng(20261124).standard_normal((2, 48000))
print(hashlib.sha256(audio_io.resample(x, 48000, 44100).tobytes()).hexdigest())
"""


def test_resampling_does_not_depend_on_avx() -> None:
    """libsoxr picks its AVX engine for very high quality where the CPU has AVX; the two
    engines differ in the last bits (visible in the float64 samples long before a 16-bit
    master shows it), so the renderer pins the plain one. SOXR_USE_SIMD64=0 is libsoxr's
    own switch for a CPU without AVX."""
    hashes = [
        subprocess.run(
            [sys.executable, "-c", RESAMPLE_PROBE],
            env=clean_env() | extra,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for extra in ({}, {"SOXR_USE_SIMD64": "0"})
    ]
    assert hashes[0] == hashes[1]

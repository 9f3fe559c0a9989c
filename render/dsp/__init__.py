"""Pure signal processing: arrays and parameters in, arrays out; no files, no session.

The contract every module here keeps:

- Audio is ``float64[channels, samples]`` with 1 or 2 channels; an effect returns a new
  array of the same shape (it never changes the channel count, and never writes into its
  input).
- Parameters are plain numbers in the units their names carry (``cutoff_hz``,
  ``attack_ms``, ``threshold_db``, ``ratio``, ``mix`` as a fraction 0..1); nothing here knows
  the session format.
- An effect whose output is delayed relative to its input (a lookahead limiter) says so
  with a ``*_latency_samples`` function; the engine removes that delay so every path stays
  aligned to time zero. An effect without such a function has no latency.
- Randomness (synthetic reverb tails) comes from a ``numpy.random.Generator`` passed in,
  never from global state, so the same seed gives the same bytes.
- Per-sample recursions are numba-compiled with ``nogil=True, cache=True`` so tracks can run
  in parallel threads (declared with ``render.jit.njit``, which loads numba on first use).
"""

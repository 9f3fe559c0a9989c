"""Pure signal processing: arrays and parameters in, arrays out; no files, no session.

Audio is ``float64[channels, samples]`` throughout.
"""

"""Album builds: many sessions rendered as one release (album loudness, sequencing,
deliverables with tags, album QC)."""

"""render: declarative session files for mixing and mastering.

A session file (YAML, validated against ``schemas/session.schema.json``) names the stems,
their processing and routing; ``render`` turns it into a reproducible mix.
"""

__version__ = "0.1.0"

"""Data-driven error cases: a YAML file whose header names every error it must raise,
``# expect: [FILE ]LINE:COL PATH: message-prefix`` (FILE, relative to the case's folder,
defaults to the case itself; ``{session_dir}`` stands for that folder)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from render.errors import Diagnostic

_EXPECT = re.compile(r"^# expect: (?:(\S+\.yaml) )?(\d+):(\d+) (\S*): (.*)$")


def assert_reported(diagnostics: Sequence[Diagnostic], case: Path, folder: Path) -> None:
    """``diagnostics`` are exactly the errors the header of ``case`` (copied into ``folder``)
    expects: each at its file, line, column and key path, each message with its prefix."""
    reported = [
        (
            Path(d.file).resolve().relative_to(folder.resolve()).as_posix(),
            d.line,
            d.column,
            d.key_path,
            f"{d.message}; {d.hint}" if d.hint else d.message,
        )
        for d in diagnostics
    ]
    expected = [
        (m[1] or case.name, int(m[2]), int(m[3]), m[4], m[5].replace("{session_dir}", str(folder)))
        for m in map(_EXPECT.match, case.read_text().splitlines())
        if m
    ]
    assert expected, f"{case.name} has no '# expect:' lines"
    for file, line, column, key_path, message in expected:
        assert any(
            (file, line, column, key_path) == found[:4] and found[4].startswith(message)
            for found in reported
        ), f"expected {file} {line}:{column} {key_path}: {message}\nreported: {reported}"
    assert len(reported) == len(expected), reported

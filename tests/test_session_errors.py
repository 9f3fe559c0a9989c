"""Every invalid session in tests/sessions/invalid fails with exactly the errors its header
names: line, column, key path and message (``# expect: LINE:COL PATH: message-prefix``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from render.errors import SessionError
from render.session import load_session

CASES = sorted((Path(__file__).parent / "sessions" / "invalid").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (\d+):(\d+) (\S*): (.*)$")


def expectations(case: Path, session_dir: Path) -> list[tuple[int, int, str, str]]:
    found = []
    for line in case.read_text().splitlines():
        if match := _EXPECT.match(line):
            message = match[4].replace("{session_dir}", str(session_dir))
            found.append((int(match[1]), int(match[2]), match[3], message))
    assert found, f"{case.name} has no '# expect:' lines"
    return found


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_invalid_session_reports_each_error_at_its_place(case: Path, session_dir: Path) -> None:
    session_file = session_dir / case.name
    shutil.copy(case, session_file)
    with pytest.raises(SessionError) as raised:
        load_session(session_file)
    reported = [
        (d.line, d.column, d.key_path, f"{d.message}; {d.hint}" if d.hint else d.message)
        for d in raised.value.diagnostics
    ]
    expected = expectations(case, session_dir)
    for line, column, key_path, message in expected:
        assert any(
            (line, column, key_path) == (r_line, r_column, r_path) and r_message.startswith(message)
            for r_line, r_column, r_path, r_message in reported
        ), f"expected {line}:{column} {key_path}: {message}\nreported: {reported}"
    assert len(reported) == len(expected), reported

"""Every invalid session in tests/sessions/invalid fails with exactly the errors its header
names: line, column, key path and message (``# expect: LINE:COL PATH: message-prefix``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from render.errors import SessionError
from render.session import load_session
from tests.diagnostics import assert_reported

CASES = sorted((Path(__file__).parent / "sessions" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_invalid_session_reports_each_error_at_its_place(case: Path, session_dir: Path) -> None:
    session_file = session_dir / case.name
    shutil.copy(case, session_file)
    with pytest.raises(SessionError) as raised:
        load_session(session_file)
    assert_reported(raised.value.diagnostics, case, session_dir)


@pytest.mark.parametrize("depth", [2000, 20000])
def test_deep_nesting_is_one_error_with_either_parser(depth: int) -> None:
    """libyaml composes any depth and the walk over its nodes recurses; the pure-Python
    parser recurses itself. Either way a too-deep document is one error, not a traceback."""
    from render.session.yaml_source import parse_yaml

    with pytest.raises(SessionError, match="nested too deeply"):
        parse_yaml("a: " + "[" * depth + "]" * depth, "deep.yaml")

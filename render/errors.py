"""The exceptions a user can cause, and how they map to exit codes.

Every mistake in the user's input (session, stems, command line) raises a ``RenderError``;
the command line prints its message and exits with its code, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_INPUT_ERROR = 1
EXIT_USAGE_ERROR = 2
EXIT_QC_FAILURE = 3
EXIT_VERIFY_MISMATCH = 4


@dataclass(frozen=True)
class Diagnostic:
    """One problem in an input file, located at a line and column (both 1-based).

    ``key_path`` is the dotted path of the offending key (``tracks.kick.inserts[1].eq``);
    ``line`` is None for problems that have no place in a file (a command-line option).
    """

    file: str
    line: int | None
    column: int | None
    key_path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        text = (
            f"{where}: {self.key_path}: {self.message}"
            if self.key_path
            else f"{where}: {self.message}"
        )
        return f"{text}; {self.hint}" if self.hint else text


class RenderError(Exception):
    """Root of every error caused by the user's input; carries its exit code."""

    exit_code = EXIT_INPUT_ERROR


class SessionError(RenderError):
    """A session file that cannot be rendered; holds every problem found, in file order."""

    def __init__(self, diagnostics: list[Diagnostic], subject: str = "session") -> None:
        self.diagnostics = sorted(diagnostics, key=_file_order)
        self.subject = subject
        count = len(self.diagnostics)
        errors = f"{count} error{'s' if count != 1 else ''}"
        summary = f"{errors} in the {subject}; nothing was rendered."
        super().__init__("\n".join([*map(str, self.diagnostics), summary]))

    def __reduce__(self) -> tuple[type, tuple[list[Diagnostic], str]]:
        """Rebuilt from its diagnostics, so it crosses from a worker process intact."""
        return (type(self), (self.diagnostics, self.subject))


class AudioInputError(RenderError):
    """A stem that cannot be read or used (missing, truncated, NaN samples, ...)."""


class OutputError(RenderError):
    """An output that cannot be written (unwritable folder, full disk, ...)."""


class UsageError(RenderError):
    """A command line that does not make sense."""

    exit_code = EXIT_USAGE_ERROR


def _file_order(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.file, diagnostic.line or 0, diagnostic.column or 0, diagnostic.message)

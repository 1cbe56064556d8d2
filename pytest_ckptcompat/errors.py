"""Every exception pytest-ckptcompat raises on purpose, under one base class.

Each says what is wrong in one line; the ones about a file name it first
(`path: problem`), which is what the CLI prints before exiting 2.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """`text` with control characters (newlines, escapes) written as Python escapes.

    Names in messages often come from the file being read (member names, globals); a
    newline or terminal escape there must not split or repaint the one line we print.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class CkptCompatError(Exception):
    """Base class of every error pytest-ckptcompat raises on purpose."""


class FileProblem(CkptCompatError):
    """A file (or path) that cannot be used; `str()` is `path: problem`, one line."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(one_line(f"{path}: {problem}"))
        self.path = path
        self.problem = problem


class UnreadableCheckpointError(FileProblem):
    """A checkpoint file cannot be read or understood."""


class PickleFormatError(CkptCompatError, ValueError):
    """The bytes are not a well-formed pickle (the message gives the byte offset).

    `partial` holds what the pickle did before the bad byte (a
    `scan.machine.PickleFacts`, or None): a real unpickler runs all of that
    before it fails, so a call to `os.system` followed by garbage is still a
    call to `os.system`.
    """

    def __init__(self, message: str, *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class SafeGlobalError(CkptCompatError, ValueError):
    """An allowlist entry (`module.name`) is malformed or names nothing here."""


class GoldenError(CkptCompatError):
    """A golden that cannot be trusted or read (its outcome is `error`)."""


class LintFileError(FileProblem):
    """A Python file `ckptcompat lint` cannot read or parse."""


class LintConfigError(CkptCompatError):
    """`[tool.ckptcompat.lint]` or a `--select` / `--ignore` value is malformed (named in it)."""


class MatrixError(CkptCompatError):
    """The matrix file is malformed; the message names the file and the key."""


class ReportError(CkptCompatError):
    """A cell report, matrix document or baseline cannot be used; the message names the file."""

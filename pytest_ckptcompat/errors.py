"""The exceptions the package raises; each says what is wrong in one line."""

from __future__ import annotations


class CkptCompatError(Exception):
    """Base class of every error pytest-ckptcompat raises on purpose."""


class PickleFormatError(CkptCompatError, ValueError):
    """The bytes are not a well-formed pickle (the message gives the byte offset).

    `partial` holds what the pickle did before the bad byte (a
    `pickle_vm.PickleFacts`, or None): a real unpickler runs all of that
    before it fails, so a call to `os.system` followed by garbage is still a
    call to `os.system`.
    """

    def __init__(self, message: str, *, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class UnreadableCheckpointError(CkptCompatError):
    """A checkpoint file cannot be read or understood.

    `str()` is one line naming the file and the problem, ready for a CLI.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class SafeGlobalError(CkptCompatError, ValueError):
    """An allowlist entry (`module.name`) is malformed or names nothing here."""

"""What a scan concludes about one pickle under one torch: requirements, obstacles, verdict."""

from __future__ import annotations

from dataclasses import dataclass

from ..vocab import Kind, Status, is_allowed


@dataclass(frozen=True)
class Requirement:
    """A name the reader's unpickler must allow, and whether it does."""

    name: str  # as written in the pickle (GLOBAL) or the type BUILD/NEWOBJ checks
    kind: Kind
    status: Status
    dangerous: bool
    count: int
    fixable: bool = True  # False: no allowlist entry helps on this torch
    note: str = ""
    # What torch looks up: `name` after its python-2 mapping (`__builtin__.set` -> `builtins.set`).
    key: str = ""

    @property
    def lookup(self) -> str:
        """The name an allowlist entry must use."""
        return self.key or self.name

    @property
    def allowed(self) -> bool:
        """The reader lets it through (by default or by the user's allowlist)."""
        return is_allowed(self.status)


@dataclass(frozen=True)
class Obstacle:
    """A reason the file will not load that is not a missing allowlist entry."""

    code: str  # e.g. "unsupported-opcode", "setitem-target", "format"
    message: str


@dataclass(frozen=True)
class Verdict:
    """Whether a pickle loads under one torch with one allowlist, and why not."""

    requirements: tuple[Requirement, ...]
    obstacles: tuple[Obstacle, ...]

    @property
    def loadable(self) -> bool:
        """True when torch.load(weights_only=True) would succeed."""
        return not self.obstacles and all(r.allowed for r in self.requirements)

    @property
    def troubles(self) -> list[Requirement]:
        """The requirements that stop the load (blocked or missing), in pickle order."""
        return [r for r in self.requirements if not r.allowed]

    @property
    def blocked(self) -> list[str]:
        """Names (as torch looks them up) that stop the load, in pickle order."""
        return [r.lookup for r in self.troubles]

    @property
    def dangerous(self) -> bool:
        """True when the pickle names a global that can run code."""
        return any(r.dangerous for r in self.requirements)

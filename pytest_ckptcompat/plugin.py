"""The pytest plugin (entry point `pytest11: ckptcompat`): options, ini keys, marker, fixture.

Importing this module must stay cheap: no torch, no numpy. Everything heavy
is imported inside the fixture, so a test session that never asks for
`ckpt_compat` pays nothing (`python -X importtime -c "import pytest_ckptcompat.plugin"`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .fixture import CkptCompat

MARKER = "ckpt_compat"
SAFE_GLOBALS_INI = "ckpt_compat_safe_globals"
SAFE_GLOBALS_HELP = (
    "globals your code allowlists for torch.load(weights_only=True), one `module.name` per "
    "line (e.g. argparse.Namespace); list both numpy.core.* and numpy._core.* spellings to "
    "accept files written under numpy 1 and 2"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register `--ckpt-compat` and the `ckpt_compat_*` ini keys."""
    group = parser.getgroup("ckptcompat", "checkpoint serialization compatibility")
    group.addoption(
        "--ckpt-compat",
        action="store_true",
        default=False,
        dest="ckpt_compat",
        help="compatibility mode: show the torch/numpy environment tag in the header "
        "(ckpt_compat.roundtrip works with or without it)",
    )
    parser.addini(SAFE_GLOBALS_INI, SAFE_GLOBALS_HELP, type="linelist", default=[])


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker with its full signature (the suite runs with --strict-markers)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(safe_globals=[...], expect_blocked=[...]): per-test allowlist of "
        "`module.name` globals for ckpt_compat, and globals that must stay blocked "
        "(strict, like a strict xfail: the test fails once they load).",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    """Under --ckpt-compat, the environment tag this run reads and writes as."""
    if not config.getoption("ckpt_compat"):
        return None
    from .env import environment

    env = environment()
    return f"ckpt-compat: {env['tag']} (torch {env['torch']}, numpy {env['numpy']})"


@pytest.fixture
def ckpt_compat(request: pytest.FixtureRequest) -> CkptCompat:
    """Save and reload objects the way your checkpoints are loaded: `torch.load(weights_only=True)`.

    `ckpt_compat.roundtrip(obj, safe_globals=())` saves `obj` with
    `torch.save`, loads it back with `weights_only=True` (allowlisting the
    ini key `ckpt_compat_safe_globals`, the `@pytest.mark.ckpt_compat`
    marker's `safe_globals` and the call's own), checks the result equals
    `obj` and returns it. When it does not load, the test fails listing every
    blocked global, where it sits in `obj` and the fix; when it loads but
    differs, the failure names each differing path and both values.
    """
    from .fixture import CkptCompat

    return CkptCompat(request)

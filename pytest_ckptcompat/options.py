"""The names users type: options, ini keys, the marker, and their help texts.

One place for each, so the plugin, the fixture and the `ckptcompat` command
(which reads the same ini keys outside pytest) cannot drift apart.
"""

from __future__ import annotations

from typing import Final

MARKER: Final = "ckpt_compat"
MARKER_HELP: Final = (
    f"{MARKER}(safe_globals=[...], expect_blocked=[...]): per-test allowlist of "
    "`module.name` globals for ckpt_compat, and globals that must stay blocked "
    "(strict, like a strict xfail: the test fails once they load)."
)

SAFE_GLOBALS_INI: Final = "ckpt_compat_safe_globals"
SAFE_GLOBALS_HELP: Final = (
    "globals your code allowlists for torch.load(weights_only=True), one `module.name` per "
    "line (e.g. argparse.Namespace); list both numpy.core.* and numpy._core.* spellings to "
    "accept files written under numpy 1 and 2"
)
DIR_INI: Final = "ckpt_compat_dir"
AUDIT_IGNORE_INI: Final = "ckpt_compat_audit_ignore"
GOLDEN_FOLDER: Final = "ckpt_goldens"  # default: beside each test module

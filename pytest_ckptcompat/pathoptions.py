"""`--ckpt-compat-dir DIR` / `--ckpt-compat-report FILE`: never let pytest misread the value.

pytest looks for its configuration file before it loads installed plugins
(`Config.parse`: `determine_setup`, then `load_setuptools_entrypoints`). At
that moment it does not know these options, so in the space form
(`--ckpt-compat-dir /elsewhere/goldens`) it takes the value for a test path,
and an existing path outside the project makes it search for the ini file
there: it finds none (or another project's), and the project's
`ckpt_compat_safe_globals`, markers, `addopts`... are silently gone. The
`--opt=value` form is one argument pytest sets aside as an option.

A plugin cannot run before that search, so the misreading cannot be undone
afterwards; what it can do is notice it. `check_spaced_path_options` asks
pytest's own `determine_setup` where the configuration would be without those
values, and when that differs from what this run uses, stops the run with one
usage error that gives the `=` spelling. When the value changed nothing (a
path inside the project, a report file that does not exist yet), the run goes on.
"""

from __future__ import annotations

import inspect
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

#: The plugin's options that take a path, as pytest's first parse cannot know them.
PATH_OPTIONS = ("--ckpt-compat-dir", "--ckpt-compat-report")


def spaced_values(args: list[str]) -> list[tuple[str, str]]:
    """Each (option, value) written as two arguments, in the order given."""
    found = []
    for i, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        if arg in PATH_OPTIONS:
            found.append((arg, args[i + 1]))
    return found


def _first_parse_args(config: pytest.Config) -> list[str]:
    """The arguments pytest searched its configuration with: PYTEST_ADDOPTS, then the command."""
    env = os.environ.get("PYTEST_ADDOPTS", "")
    return [*shlex.split(env), *map(str, config.invocation_params.args)]


def _without(args: list[str], pairs: list[tuple[str, str]]) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in PATH_OPTIONS and i + 1 < len(args) and (arg, args[i + 1]) in pairs:
            skip = True
            continue
        out.append(arg)
    return out


def _setup_without(config: pytest.Config, args: list[str]) -> tuple[Path, Path | None]:
    """(rootdir, inifile) pytest's own `determine_setup` gives for `args`."""
    from _pytest.config.findpaths import determine_setup

    ns: Any = config._parser.parse_known_args(args)
    offered = {
        "inifile": ns.inifilename,
        "override_ini": ns.override_ini,
        "args": ns.file_or_dir,
        "rootdir_cmd_arg": ns.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    params = inspect.signature(determine_setup).parameters
    rootdir, inipath, *_ = determine_setup(**{k: v for k, v in offered.items() if k in params})
    return Path(rootdir), Path(inipath) if inipath else None


def check_spaced_path_options(config: pytest.Config) -> None:
    """Stop the run when a spaced path option's value moved pytest's configuration file."""
    args = _first_parse_args(config)
    pairs = spaced_values(args)
    if not pairs:
        return
    used = (config.rootpath, config.inipath)
    try:
        expected: tuple[Path, Path | None] | None = _setup_without(config, _without(args, pairs))
    except Exception:  # pytest's internals moved: judge by what pytest's search looks at
        expected = None
    (option, value), *_ = pairs
    if expected is None:
        # pytest searches from each argument that exists (a file: its folder).
        if not any(Path(v).exists() for _, v in pairs):
            return
        what = "may have read its configuration from there"
    elif expected == used:
        return
    elif expected[1] != config.inipath:
        found = str(config.inipath) if config.inipath else "no configuration file"
        what = f"so read {found} instead of {expected[1] or 'none'}"
    else:
        what = f"so took {config.rootpath} for the rootdir instead of {expected[0]}"
    raise pytest.UsageError(
        f"{option} {value}: pytest takes a separate value for a test path before plugins "
        f"load, and {what}: write {option}={value}"
    )

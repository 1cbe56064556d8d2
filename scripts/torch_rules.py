"""Generate the table of every torch release's `weights_only` rules.

    python scripts/torch_rules.py                  # every release not in the table yet
    python scripts/torch_rules.py --only 2.5.1     # just these (comma-separated)
    python scripts/torch_rules.py --refresh        # probe again what the table holds
    python scripts/torch_rules.py --doc            # only rewrite docs/torch-rules.md

For each torch release on the package index (1.13.0 up; each minor's last
patch first, then the other patches) this creates a throwaway uv venv with
that torch and a numpy it supports (numpy<2 for torch<2.3), runs
`scripts/torch_rules_probe.py` inside it with this checkout on PYTHONPATH,
and stores what the probe read and measured in
`pytest_ckptcompat/scan/data/torch_rules.json`. The venv and the dedicated
uv cache are deleted after every release, so the disk holds one torch at a
time (a CUDA build with its nvidia-* wheels: 3 to 7 GB).

A patch release whose rules equal those of its minor's last patch is stored
as an alias of it (`same_as`); one that differs keeps its own entry. A
release that cannot be installed here is stored as unavailable, with why.

One progress line per release goes to stdout (version, seconds, peak disk,
what changed against the previous release); everything else (uv's output,
the probe's stderr) goes to the log file. The table is rewritten after each
release, so an interrupted run resumes where it stopped. Never hand-edit the
table: rerun this script.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "pytest_ckptcompat" / "scan" / "data" / "torch_rules.json"
DOC = ROOT / "docs" / "torch-rules.md"
PROBE = Path(__file__).resolve().with_name("torch_rules_probe.py")
COMMAND = "python scripts/torch_rules.py"
TABLE_FORMAT = 1
FIRST = (1, 13)  # the first torch with `weights_only`

Version = tuple[int, ...]


def parse(version: str) -> Version:
    """`(2, 5, 1)` for `2.5.1` (local labels like `+cpu` dropped)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def index_versions() -> list[str]:
    """The torch releases on the package index, from 1.13 on (one `pip index` look-up)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"Available versions: (.*)", out)
    if not match:
        raise SystemExit(f"cannot read torch's versions from pip index:\n{out}")
    found = {v.strip() for v in match.group(1).split(",")}
    return sorted((v for v in found if "+" not in v and parse(v)[:2] >= FIRST), key=parse)


def plan(versions: list[str]) -> list[str]:
    """Each minor's last patch first (oldest minor first), then the other patches."""
    last: dict[Version, str] = {}
    for v in versions:
        last[parse(v)[:2]] = v  # sorted ascending: the last one wins
    lasts = [last[m] for m in sorted(last)]
    return lasts + [v for v in versions if v not in lasts]


def numpy_spec(version: str) -> str:
    """A numpy this torch runs with: torch < 2.3 was built against numpy 1.x."""
    return "numpy<2" if parse(version)[:2] < (2, 3) else "numpy"


# --- running one release -----------------------------------------------------


def disk_usage(*paths: Path) -> int:
    """Bytes under `paths`, each inode once (uv hardlinks the venv to its cache)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for top in paths:
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def run_logged(cmd: list[str], log: TextIO, env: dict[str, str] | None = None) -> int:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    log.write(f"-> exit {proc.returncode}\n")
    log.flush()
    return proc.returncode


def probe_release(
    version: str, workdir: Path, cache: Path, python: str, log: TextIO
) -> tuple[dict[str, Any], int]:
    """Install `version` in a throwaway venv, probe it, delete it: (entry, peak bytes)."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    venv = workdir / f"venv-{version}"
    raw = workdir / "raw" / f"{version}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TORCH_", "PYTHONPATH"))},
        "UV_CACHE_DIR": str(cache),
        "UV_PYTHON_DOWNLOADS": "never",
        "VIRTUAL_ENV": str(venv),
    }
    peak = 0
    try:
        shutil.rmtree(venv, ignore_errors=True)
        if run_logged([uv, "venv", "-q", "-p", python, str(venv)], log, env):
            return {"status": "unavailable", "reason": "uv venv failed (see the log)"}, peak
        spec = [f"torch=={version}", numpy_spec(version)]
        if run_logged([uv, "pip", "install", *spec], log, env):
            return unavailable(version, log), disk_usage(venv, cache)
        peak = disk_usage(venv, cache)
        probe_env = {**env, "PYTHONPATH": str(ROOT)}
        code = run_logged([str(venv / "bin" / "python"), str(PROBE), str(raw)], log, probe_env)
        if not raw.exists():
            return {"status": "probe-failed", "reason": f"probe exit {code}, no output"}, peak
        result: dict[str, Any] = json.loads(raw.read_text())
        if result.get("failures"):
            log.write(json.dumps(result["failures"], indent=1) + "\n")
        return {"status": "ok", **result}, peak
    finally:
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


def unavailable(version: str, log: TextIO) -> dict[str, Any]:
    """Why uv could not install it, from the end of the log."""
    log.flush()
    reason = "uv pip install failed"
    try:
        tail = Path(log.name).read_text(errors="replace").splitlines()[-15:]
        lines = [line.strip() for line in tail if line.strip() and not line.startswith(("$", "->"))]
        if lines:
            reason = f"uv pip install failed: {' '.join(lines)[-300:]}"
    except OSError:
        pass
    return {"status": "unavailable", "reason": reason}


# --- the table -----------------------------------------------------------------

# What two releases are compared on (the rest, like timings, describes the run).
COMPARED = ("rules", "api", "default_weights_only", "behaviours", "opcodes_measured")


def comparable(entry: dict[str, Any]) -> dict[str, Any]:
    """The parts of an entry two releases are compared on.

    torch < 2.3 is probed with numpy 1.x, later ones with numpy 2, whose
    pickles say `numpy._core`: the spelling is not torch's change.
    """
    out = {key: entry.get(key) for key in COMPARED}
    out["rules"] = {k: v for k, v in (entry.get("rules") or {}).items() if k != "version"}
    default = entry.get("default_weights_only") or {}
    # What happened, not the wording of the refusal (the behaviours track wordings).
    out["default_weights_only"] = {k: default.get(k) for k in ("weights_only", "warnings")}
    out["behaviours"] = {
        case: {k: v.replace("numpy._core", "numpy.core") if isinstance(v, str) else v
               for k, v in result.items()}
        for case, result in (entry.get("behaviours") or {}).items()
    }  # fmt: skip
    return out


def load_table() -> dict[str, Any]:
    if TABLE.exists():
        table: dict[str, Any] = json.loads(TABLE.read_text())
        return table
    return {"releases": {}}


def save_table(table: dict[str, Any]) -> None:
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    ordered = dict(sorted(table["releases"].items(), key=lambda item: parse(item[0])))
    out = {
        "generated": f"by {COMMAND}; never edit by hand, rerun it (see docs/torch-rules.md)",
        "format": TABLE_FORMAT,
        "releases": ordered,
    }
    tmp = TABLE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    tmp.replace(TABLE)


def resolve(table: dict[str, Any], version: str) -> dict[str, Any] | None:
    entry: dict[str, Any] | None = table["releases"].get(version)
    if entry and "same_as" in entry:
        entry = table["releases"].get(entry["same_as"])
    return entry


def fold_patches(table: dict[str, Any]) -> None:
    """A patch release equal to its minor's last patch becomes an alias of it."""
    releases: dict[str, Any] = table["releases"]
    probed = [v for v, e in releases.items() if e.get("status") == "ok" or "same_as" in e]
    last: dict[Version, str] = {}
    for v in sorted(probed, key=parse):
        last[parse(v)[:2]] = v
    for v in probed:
        head = last[parse(v)[:2]]
        entry = releases[v]
        if v == head or "same_as" in entry or releases[head].get("status") != "ok":
            continue
        if comparable(entry) == comparable(releases[head]):
            releases[v] = {
                "same_as": head,
                "sources_identical": entry.get("sources") == releases[head].get("sources"),
            }


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What changed from one release's entry to the next, one line per change."""
    if old is None:
        return ["(first release in the table)"]
    a, b = comparable(old), comparable(new)
    out: list[str] = []
    for field in sorted(set(a["rules"]) | set(b["rules"])):
        before, after = a["rules"].get(field), b["rules"].get(field)
        if before == after:
            continue
        if field in ("name_mapping", "import_mapping"):
            out.append(f"{field}: {mapping_change(before, after)}")
        elif isinstance(before, list) and isinstance(after, list):
            old_set = {json.dumps(x) if not isinstance(x, str | int) else x for x in before}
            new_set = {json.dumps(x) if not isinstance(x, str | int) else x for x in after}
            added = sorted(new_set - old_set, key=str)
            removed = sorted(old_set - new_set, key=str)
            if field == "supported_opcodes":
                added = [opname(int(x)) for x in added]
                removed = [opname(int(x)) for x in removed]
            if added:
                out.append(f"{field}: + {', '.join(map(str, added))}")
            if removed:
                out.append(f"{field}: - {', '.join(map(str, removed))}")
        else:
            out.append(f"{field}: {short(before)} -> {short(after)}")
    for section in ("api", "default_weights_only"):
        sa, sb = a[section] or {}, b[section] or {}
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                out.append(f"{section}.{key}: {short(sa.get(key))} -> {short(sb.get(key))}")
    ba, bb = a["behaviours"] or {}, b["behaviours"] or {}
    raw_a, raw_b = old.get("behaviours") or {}, new.get("behaviours") or {}
    for key in sorted(set(ba) | set(bb)):
        if ba.get(key) == bb.get(key):
            continue
        before, after = raw_a.get(key), raw_b.get(key)  # as measured, for the text
        if before and after and not before.get("ok") and not after.get("ok"):
            out.append(f"{key}: still fails, now with {describe(after)}")
        else:
            out.append(f"{key}: {describe(before)} -> {describe(after)}")
    oa, ob = set(a["opcodes_measured"] or ()), set(b["opcodes_measured"] or ())
    if oa != ob:
        plus = ", ".join(sorted(ob - oa))
        minus = ", ".join(sorted(oa - ob))
        out.append(f"opcodes_measured: + {plus or '-'}; - {minus or '-'}")
    return out


def mapping_change(before: Any, after: Any) -> str:
    """`name_mapping`/`import_mapping` (lists of pairs or dicts): the count and a few keys."""

    def items(value: Any) -> set[str]:
        if isinstance(value, dict):
            return {f"{k} -> {v}" for k, v in value.items()}
        return {f"{'.'.join(k)} -> {'.'.join(v)}" for k, v in value or []}

    old, new = items(before), items(after)
    added, removed = sorted(new - old), sorted(old - new)
    parts = []
    if added:
        parts.append(f"+ {len(added)} ({', '.join(added[:3])}{', ...' if len(added) > 3 else ''})")
    if removed:
        parts.append(
            f"- {len(removed)} ({', '.join(removed[:3])}{', ...' if len(removed) > 3 else ''})"
        )
    return "; ".join(parts) or "reordered"


def opname(code: int) -> str:
    import pickletools

    names = {ord(op.code): op.name for op in pickletools.opcodes}
    return names.get(code, str(code))


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(result: dict[str, Any] | None) -> str:
    if result is None:
        return "(not measured)"
    if result.get("ok"):
        return f"loads ({result.get('type')})"
    if "jit_save" in result:
        return f"jit.save failed: {result['jit_save'].get('error')}"
    return short(f"{result.get('exc')}: {result.get('error')}", 200)


# --- the doc -------------------------------------------------------------------

#: The probe's cases (`behaviours`), for the doc. `ckptprobe_types` is a module
#: of benign classes the probe writes; "allowlisted" means `add_safe_globals`.
CASES = {
    "py2_set_protocol_N": "`__builtin__.set` via GLOBAL + REDUCE in a protocol N pickle "
    "(0: no PROTO opcode); `_allowlisted` with `set` allowlisted: it loads only if torch "
    "mapped the python-2 name",
    "builtins_set": "`builtins.set([1])` via GLOBAL + REDUCE",
    "bytes_value": "`_codecs.encode('a', 'latin1')`, how protocol 2 writes `bytes`",
    "user_global": "an allowlisted function called via REDUCE",
    "unknown_global": "the same function, not allowlisted",
    "tuple_form": "a global named `ckptprobe_fake.Thing`, allowlisted as "
    '`(make_dict, "ckptprobe_fake.Thing")`',
    "qualname_dotted / qualname_short": "the nested class `Outer.Inner` allowlisted, "
    "named `ckptprobe_types.Outer.Inner` / `ckptprobe_types.Inner` in the pickle",
    "build_plain_dict": "BUILD on a plain dict",
    "build_default_allowed": "BUILD on a `collections.Counter` (default-allowed from 2.4)",
    "build_user_allowlisted": "BUILD on an instance of an allowlisted class",
    "build_reduced_type_unlisted": "BUILD on an instance returned by an allowlisted function "
    "whose class is not allowlisted (the numpy dtype case)",
    "newobj_default_allowed / newobj_user_allowlisted": "NEWOBJ of `collections.OrderedDict` "
    "/ of an allowlisted class",
    "setitem_*": "SETITEM on an `OrderedDict`, a `Counter`, an allowlisted dict subclass, "
    "an allowlisted plain object",
    "append_user_list_subclass / appends_…": "APPEND / APPENDS to an allowlisted list subclass",
    "blocklisted_module": "`os.getcwd` via GLOBAL + REDUCE; `_allowlisted` with it allowlisted",
    "persistent_id_not_storage": "a BINPERSID whose id is not a storage tuple",
    "numpy_*": "a float64 array / scalar pickled by the numpy of that venv (numpy 1.26 below "
    "torch 2.3, numpy 2 from 2.3), without and with the allowlists DESIGN.md describes",
    "layout_*": "the torch.save zip re-zipped: as saved, members at the root, a member outside "
    "the folder, a README first, no `version` record, only `.data/version`, `DATA.PKL`",
    "legacy_format": "`torch.save(..., _use_new_zipfile_serialization=False)`",
    "torchscript": "a `torch.jit.save`d scripted `nn.Linear`",
    "plain_pickle_file": "a bare pickle file (not a torch.save file)",
}  # fmt: skip


def write_doc(table: dict[str, Any]) -> None:
    releases: dict[str, Any] = table["releases"]
    lines = [
        "# torch's `weights_only` rules, release by release",
        "",
        "Generated from `pytest_ckptcompat/scan/data/torch_rules.json` by",
        f"`{COMMAND} --doc`: do not edit by hand. Each entry was read from, and",
        "measured on, the real torch wheel from the package index (Linux x86_64, CPython",
        "3.11) by `scripts/torch_rules_probe.py`: the default allowlist, the module",
        "blocklist, the opcodes, the python-2 name mapping as `TorchRules.from_installed()`",
        "reads them, and behaviours measured by loading small crafted files with",
        "`torch.load(weights_only=True)`.",
        "",
        "## Regenerating",
        "",
        "```",
        f"{COMMAND}                # probe releases not in the table yet (resumable)",
        f"{COMMAND} --refresh      # probe everything again (after changing the probe",
        "                                          #   or TorchRules.from_installed)",
        f"{COMMAND} --only 2.6.0   # one release",
        f"{COMMAND} --doc          # rewrite this page from the table",
        "```",
        "",
        "Each release is installed with uv into a throwaway venv (and a dedicated uv",
        "cache), probed, and deleted, so the disk holds one torch at a time. A test",
        "(`tests/scan/test_torch_table.py`) checks that the table's entry for every torch",
        "the test suite installs equals what `TorchRules.from_installed()` reads there.",
        "",
        "## Releases in the table",
        "",
        "| release | entry |",
        "|---|---|",
    ]
    for version, entry in releases.items():
        if "same_as" in entry:
            note = "" if entry.get("sources_identical") else " (its serialization sources differ)"
            lines.append(f"| {version} | same rules and behaviours as {entry['same_as']}{note} |")
        elif entry.get("status") == "ok":
            lines.append(f"| {version} | probed (numpy {entry.get('numpy_version')}) |")
        else:
            lines.append(f"| {version} | {entry.get('status')}: {entry.get('reason')} |")
    lines += ["", "## Changes, release by release", ""]
    previous: dict[str, Any] | None = None
    previous_name = ""
    for version, entry in releases.items():
        if entry.get("status") != "ok":
            continue
        found = changes(previous, entry)
        heading = f"### {version}" + (f" (against {previous_name})" if previous_name else "")
        lines += [heading, ""]
        lines += [f"- {md(line)}" for line in found] or ["- no change"]
        lines.append("")
        previous, previous_name = entry, version
    lines += summary_section(releases)
    lines += ["## What each measured case loads", ""]
    lines += [f"- `{case}`: {text}" for case, text in CASES.items()]
    lines.append("")
    lines += numpy_section()
    DOC.write_text("\n".join(lines).rstrip() + "\n")


def md(text: str) -> str:
    """Markdown-safe: `<class ...>` would be read as an HTML tag, `|` as a table cell."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def summary_section(releases: dict[str, Any]) -> list[str]:
    """A table of the behaviours that matter most, one column per probed release."""
    probed = [(v, e) for v, e in releases.items() if e.get("status") == "ok"]
    if not probed:
        return []
    rows: list[tuple[str, Any]] = [
        ("`weights_only` default", lambda e: e["default_weights_only"].get("weights_only")),
        ("`add_safe_globals`", lambda e: e["api"].get("add_safe_globals")),
        ("`safe_globals` context", lambda e: e["api"].get("safe_globals")),
        (
            "`get_unsafe_globals_in_checkpoint`",
            lambda e: e["api"].get("get_unsafe_globals_in_checkpoint"),
        ),
        ('`(obj, "name")` form', lambda e: ok(e, "tuple_form")),
        ("qualname keys", lambda e: ok(e, "qualname_dotted")),
        (
            "`__builtin__.set`, protocol 2, allowlisted",
            lambda e: ok(e, "py2_set_protocol_2_allowlisted"),
        ),
        (
            "`__builtin__.set`, protocol 4, allowlisted",
            lambda e: ok(e, "py2_set_protocol_4_allowlisted"),
        ),
        ("`builtins.set` by default", lambda e: ok(e, "builtins_set")),
        ("bytes by default", lambda e: ok(e, "bytes_value")),
        ("BUILD of a default-allowed type", lambda e: ok(e, "build_default_allowed")),
        ("NEWOBJ of a default-allowed type", lambda e: ok(e, "newobj_default_allowed")),
        ("SETITEM on an allowlisted dict subclass", lambda e: ok(e, "setitem_user_dict_subclass")),
        ("APPEND to an allowlisted list subclass", lambda e: ok(e, "append_user_list_subclass")),
        ("TorchScript archive", lambda e: ok(e, "torchscript")),
        ("root-level zip members", lambda e: ok(e, "layout_root_members")),
        ("member outside the folder", lambda e: ok(e, "layout_member_outside_folder")),
        ("no version record", lambda e: ok(e, "layout_no_version")),
        ("default allowlist size", lambda e: len(e["rules"]["default_allowed"])),
        ("opcodes", lambda e: len(e["rules"]["supported_opcodes"])),
    ]
    out = ["## At a glance", "", "| | " + " | ".join(v for v, _ in probed) + " |"]
    out.append("|---" * (len(probed) + 1) + "|")
    for label, get in rows:
        cells = []
        for _v, e in probed:
            try:
                value = get(e)
            except (KeyError, TypeError):
                value = None
            cells.append(
                {True: "yes", False: "no", None: "?"}.get(value, str(value))
                if not isinstance(value, int) or isinstance(value, bool)
                else str(value)
            )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*out, ""]


def numpy_section() -> list[str]:
    """Which numpy names exist per numpy release, from `numpy_names.json`."""
    path = TABLE.with_name("numpy_names.json")
    if not path.exists():
        return []
    releases = {
        v: e for v, e in json.loads(path.read_text())["releases"].items() if e.get("status") == "ok"
    }
    if not releases:
        return []
    versions = list(releases)
    out = [
        "## numpy: which names exist where",
        "",
        "From `pytest_ckptcompat/scan/data/numpy_names.json` (`python scripts/numpy_names.py`):",
        "whether unpickling finds each name under that numpy (`missing` otherwise), and the",
        "class torch's BUILD check wants allowlisted for a float64 array or dtype.",
        "",
        "| name | " + " | ".join(versions) + " |",
        "|---" * (len(versions) + 1) + "|",
    ]
    names = sorted({n for e in releases.values() for n in e["names"]})
    for name in names:
        cells = ["yes" if releases[v]["names"].get(name) else "**no**" for v in versions]
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    cells = [f"`{releases[v]['dtype_classes']['float64']}`" for v in versions]
    out.append("| float64 dtype class | " + " | ".join(cells) + " |")
    cells = [", ".join(f"`{g}`" for g in releases[v]["written"]["ndarray"]) for v in versions]
    out.append("| an ndarray pickle names | " + " | ".join(cells) + " |")
    return [*out, ""]


def ok(entry: dict[str, Any], case: str) -> bool | None:
    result = entry["behaviours"].get(case)
    return None if result is None else bool(result.get("ok"))


# --- main ----------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated releases to probe (default: every one)")
    parser.add_argument(
        "--refresh", action="store_true", help="probe releases already in the table"
    )
    parser.add_argument("--doc", action="store_true", help="only rewrite docs/torch-rules.md")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "torch-rules")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="uv cache (default: WORKDIR/uv-cache)"
    )
    parser.add_argument("--log", type=Path, default=None, help="default: WORKDIR/torch_rules.log")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    args = parser.parse_args(list(argv) if argv is not None else None)

    table = load_table()
    if args.doc:
        write_doc(table)
        print(f"wrote {DOC.relative_to(ROOT)}")
        return 0
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    cache: Path = args.cache_dir or workdir / "uv-cache"
    log_path: Path = args.log or workdir / "torch_rules.log"
    versions = args.only.split(",") if args.only else plan(index_versions())
    todo = [v for v in versions if args.refresh or v not in table["releases"]]
    print(f"{len(todo)} release(s) to probe: {', '.join(todo) or '-'}; log: {log_path}", flush=True)
    started, peak_all = time.monotonic(), 0
    with open(log_path, "a") as log:
        log.write(f"\n=== {datetime.datetime.now().isoformat()} {' '.join(sys.argv)}\n")
        for version in todo:
            t0 = time.monotonic()
            log.write(f"\n--- torch {version}\n")
            entry, peak = probe_release(version, workdir, cache, args.python, log)
            peak_all = max(peak_all, peak)
            seconds = time.monotonic() - t0
            table["releases"][version] = entry
            previous = previous_probed(table, version)
            found = (
                changes(previous[1] if previous else None, entry)
                if entry.get("status") == "ok"
                else []
            )
            fold_patches(table)
            save_table(table)
            against = f"vs {previous[0]}" if previous else ""
            status = entry.get("status")
            what = "; ".join(found) if status == "ok" else entry.get("reason", "")
            if status == "ok" and entry.get("failures"):
                what = f"PROBE FAILURES {sorted(entry['failures'])}; " + what
            print(
                f"{version:8} {seconds:6.0f} s {peak / 1e9:5.1f} GB {status} {against}: "
                f"{short_line(what or 'no change')}",
                flush=True,
            )
            log.write(f"changes {against}: {json.dumps(found, indent=1)}\n")
    write_doc(load_table())
    print(
        f"done in {time.monotonic() - started:.0f} s, peak disk {peak_all / 1e9:.1f} GB; "
        f"wrote {TABLE.relative_to(ROOT)} and {DOC.relative_to(ROOT)}",
        flush=True,
    )
    return 0


def previous_probed(table: dict[str, Any], version: str) -> tuple[str, dict[str, Any]] | None:
    """The closest older release in the table that was probed (aliases resolved)."""
    older = [v for v in table["releases"] if parse(v) < parse(version)]
    for v in sorted(older, key=parse, reverse=True):
        entry = resolve(table, v)
        if entry and entry.get("status") == "ok":
            return v, entry
    return None


def short_line(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    tempfile.tempdir = None
    sys.exit(main())

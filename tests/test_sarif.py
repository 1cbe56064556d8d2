"""`ckptcompat lint --format sarif` and `ckptcompat scan --format sarif`: SARIF 2.1.0 that
GitHub code scanning accepts.

Each log is validated twice, with the real tools: against the SARIF 2.1.0 JSON
schema (the copy Microsoft's SARIF Multitool ships, with the `jsonschema`
package), and by the Multitool itself with its SARIF and GitHub ingestion rules
(`validate --rule-kind Sarif;Gh`: the GH rules are what GitHub Advanced Security
requires of an upload). scripts/test installs the Multitool under .tools/ from
npm; without it these tests fail, never skip.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import pytest
from run_cli import ckptcompat

from pytest_ckptcompat.sarif import LINT_HELP_ANCHOR, SCAN_HELP_ANCHOR

ROOT = Path(__file__).resolve().parent.parent
MULTITOOL_PACKAGE = "@microsoft/sarif-multitool-linux@5.7.0"
MULTITOOL_DIR = ROOT / ".tools" / "node_modules" / "@microsoft" / "sarif-multitool-linux"
NPM_INSTALL = f"npm install --no-save --prefix .tools {MULTITOOL_PACKAGE}"
FINDING = re.compile(r"^(?P<file>.+)\((\d+),(\d+)\): (?P<level>error|warning|note) (?P<rule>\w+): ")


def _multitool() -> Path:
    exe = MULTITOOL_DIR / "Sarif.Multitool"
    if not exe.is_file():
        pytest.fail(
            f"the SARIF Multitool validates the SARIF logs: {NPM_INSTALL} (scripts/test does)",
            pytrace=False,
        )
    return exe


def validate(log: dict, tmp_path: Path, name: str) -> None:
    """The schema, then SARIF's and GitHub's rules: no error, no warning."""
    import jsonschema

    schema = json.loads((MULTITOOL_DIR / "sarif-2.1.0.json").read_text(encoding="utf-8"))
    _multitool()
    jsonschema.validate(log, schema, cls=jsonschema.Draft202012Validator)
    path = tmp_path / f"{name}.sarif"
    path.write_text(json.dumps(log, indent=2), encoding="utf-8")
    proc = subprocess.run(
        [str(_multitool()), "validate", "--rule-kind", "Sarif;Gh", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Analysis completed successfully" in proc.stdout, proc.stdout
    problems = [line for line in proc.stdout.splitlines() if FINDING.match(line)]
    assert problems == []


def test_the_validator_catches_what_github_refuses(tmp_path):
    """The check itself: a log missing what GitHub requires does not pass."""
    log = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "x", "rules": [{"id": "A1"}]}},
                "results": [
                    {
                        "ruleId": "A1",
                        "message": {"text": "t"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "a.py"},
                                    "region": {"startLine": 1},
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    }
    with pytest.raises(AssertionError, match="GH2012"):  # a rule without its descriptions
        validate(log, tmp_path, "bad")


def test_lint_sarif(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "io.py").write_text(
        "import io\nimport torch\nfrom functools import partial\n\n"
        "state = torch.load(path)\n"
        "trusted = torch.load(path, weights_only=False)\n"
        "maybe = torch.load(path, weights_only=flag)\n"
        "custom = torch.load(path, pickle_module=dill, weights_only=True)\n"
        "loader = partial(torch.load)\n\n"
        "def clone(m):\n    with io.BytesIO() as b:\n        torch.save(m, b)\n"
        "        b.seek(0)\n        return torch.load(b)\n"
    )
    (tmp_path / "broken.py").write_text("import torch\ntorch.load(\n")
    proc = ckptcompat("lint", "--format", "sarif", ".", cwd=tmp_path)
    assert proc.returncode == 2  # broken.py; the findings are in the log all the same
    log = json.loads(proc.stdout)
    validate(log, tmp_path, "lint")

    (run,) = log["runs"]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["CKC001", "CKC002", "CKC003", "CKC004", "CKC005"]
    got = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    ]
    assert got == [
        ("CKC001", "error", "pkg/io.py", 5),
        ("CKC002", "error", "pkg/io.py", 6),
        ("CKC003", "warning", "pkg/io.py", 7),
        ("CKC004", "error", "pkg/io.py", 8),
        ("CKC001", "error", "pkg/io.py", 9),
        ("CKC005", "warning", "pkg/io.py", 15),
    ]
    first = run["results"][0]
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 5,
        "startColumn": 9,
        "endLine": 5,
        "endColumn": 25,
    }
    assert first["ruleIndex"] == 0
    assert first["message"]["text"].startswith("weights_only omitted in torch.load(path): ")
    assert len({r["partialFingerprints"]["ckptcompatLint/v1"] for r in run["results"]}) == 6
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["message"]["text"].startswith("broken.py: cannot parse (line 2: ")
    # GitHub shows security-severity as the alert's severity: the security rules have one.
    severity = {
        r["id"]: r["properties"].get("security-severity") for r in run["tool"]["driver"]["rules"]
    }
    assert severity == {
        "CKC001": "7.5",
        "CKC002": "9.3",
        "CKC003": "7.5",
        "CKC004": "9.3",
        "CKC005": None,
    }


def test_a_clean_tree_is_an_empty_successful_log(tmp_path):
    (tmp_path / "ok.py").write_text("import torch\ntorch.load(p, weights_only=True)\n")
    proc = ckptcompat("lint", "--format", "sarif", ".", cwd=tmp_path)
    assert proc.returncode == 0
    log = json.loads(proc.stdout)
    validate(log, tmp_path, "clean")
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True


@pytest.fixture
def checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    import collections

    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.zeros(2)}, tmp_path / "ns.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights.pt")
    torch.save({"d": collections.defaultdict(list)}, tmp_path / "dd.pt")
    # A pickle that runs a shell command when unpickled (never unpickled here).
    (tmp_path / "evil.pt").write_bytes(
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85R."
    )
    (tmp_path / "empty.pt").write_bytes(b"")
    return tmp_path


def test_scan_sarif_one_result_per_blocked_or_dangerous_global(checkpoints):
    files = ["ns.pt", "weights.pt", "dd.pt", "evil.pt", "empty.pt"]
    proc = ckptcompat("scan", "--format", "sarif", *files, cwd=checkpoints)
    assert proc.returncode == 2, proc.stderr  # empty.pt cannot be read
    log = json.loads(proc.stdout)
    validate(log, checkpoints, "scan")

    (run,) = log["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [
        "CKS001",
        "CKS002",
        "CKS003",
        "CKS004",
    ]
    got = {}
    for r in run["results"]:
        (location,) = r["locations"]
        physical = location["physicalLocation"]
        assert physical["region"] == {"startLine": 1}
        got.setdefault(physical["artifactLocation"]["uri"], []).append(
            (r["ruleId"], r["message"]["text"])
        )
    assert set(got) == {"ns.pt", "dd.pt", "evil.pt"}  # weights.pt loads: nothing to say
    (ns,) = got["ns.pt"]
    assert ns[0] == "CKS001"
    assert ns[1].startswith("ns.pt: argparse.Namespace: blocked under torch ")
    assert got["evil.pt"][0][0] == "CKS003"
    assert got["evil.pt"][0][1].startswith("evil.pt: posix.system: can run code when unpickled")
    dd = dict(got["dd.pt"])
    assert "CKS001" in dd
    # defaultdict's items: no allowlist entry helps on torch >= 2.10, and the log says so.
    if any("sets items" in text for code, text in got["dd.pt"] if code == "CKS004"):
        assert "allowlisting does not help" in dd["CKS004"]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "empty.pt"
    fingerprints = [r["partialFingerprints"]["ckptcompatScan/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)


def test_scan_sarif_paths_outside_the_folder_are_file_uris(checkpoints, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    proc = ckptcompat("scan", "--format", "sarif", checkpoints / "ns.pt", cwd=elsewhere)
    assert proc.returncode == 1
    log = json.loads(proc.stdout)
    validate(log, elsewhere, "outside")
    (result,) = log["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": (checkpoints / "ns.pt").resolve().as_uri()}


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_the_rules_help_links_point_at_readme_sections():
    anchors = _anchors((ROOT / "README.md").read_text(encoding="utf-8"))
    assert LINT_HELP_ANCHOR in anchors
    assert SCAN_HELP_ANCHOR in anchors

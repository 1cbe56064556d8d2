"""Packaging promises: cheap import, version, entry points."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest_ckptcompat
from pytest_ckptcompat.urls import BLOB, REPOSITORY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_plugin_imports_neither_torch_nor_numpy():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_ckptcompat.plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "pytest_ckptcompat.plugin" in modules
    assert not {m for m in modules if m.split(".")[0] in ("torch", "numpy")}


def test_version_matches_metadata():
    assert pytest_ckptcompat.__version__ == metadata.version("pytest-ckptcompat")


def test_entry_points():
    eps = metadata.entry_points()
    assert any(ep.value == "pytest_ckptcompat.plugin" for ep in eps.select(group="pytest11"))
    assert any(ep.name == "ckptcompat" for ep in eps.select(group="console_scripts"))


def _links(markdown: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", markdown)


def test_project_urls_and_readme_links_work_on_the_package_index_page():
    """PyPI renders README without the repository: every link must be absolute."""
    root = ROOT
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(u.startswith(REPOSITORY) for u in urls.values())
    readme = (root / "README.md").read_text(encoding="utf-8")
    links = _links(readme)
    assert links
    for link in links:
        assert re.match(r"https?://", link), f"relative link in README: {link}"
        if link.startswith(BLOB + "/"):
            path, _, _anchor = link[len(BLOB) + 1 :].partition("#")
            assert (root / path).is_file(), link


def test_the_built_wheel_carries_the_urls(tmp_path):
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    root = ROOT
    subprocess.run(
        [uv, "build", "-q", "--wheel", "-o", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    assert "Project-URL: Homepage, https://github.com/pytest-ckptcompat/pytest-ckptcompat" in text
    assert "Project-URL: Changelog, " in text
    # The long description is README itself, absolute links and all.
    assert "](docs/" not in text

"""Where the project lives on the web, in one place.

pyproject.toml's `[project.urls]` and README's absolute links (which must work
on the package index page, where relative links do not) use the same base;
tests/test_packaging.py checks they agree with `REPOSITORY`.
"""

from __future__ import annotations

from typing import Final

REPOSITORY: Final = "https://github.com/pytest-ckptcompat/pytest-ckptcompat"
HOMEPAGE: Final = REPOSITORY
#: Links into the repository's files (README, docs/...) on the default branch.
BLOB: Final = f"{REPOSITORY}/blob/main"
README: Final = f"{BLOB}/README.md"

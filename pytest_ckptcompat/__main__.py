"""`python -m pytest_ckptcompat`: the `ckptcompat` command."""

from .cli import main

raise SystemExit(main())

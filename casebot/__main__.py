"""`python -m casebot`: the same entry point as the `casebot` console script."""

from casebot.cli import main

raise SystemExit(main())

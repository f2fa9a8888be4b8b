"""`python -m casebot`: the same entry point as the `casebot` console script.
Must not do anything else.
"""

from casebot.cli import main

raise SystemExit(main())

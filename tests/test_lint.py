"""The test command also runs the linters: `ruff check` and `mypy --strict` must be clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    paths = [p for p in ("casebot", "tests", "bench") if (ROOT / p).is_dir()]
    res = subprocess.run([sys.executable, "-m", "ruff", "check", *paths], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_is_clean() -> None:
    # pyproject's [tool.mypy] sets strict = true and the files (casebot, tests).
    res = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr

"""The layer rule of docs/ARCHITECTURE.md, checked by import-linter (see pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import PROJECT

pytest.importorskip("dagster")  # the contracts name miniscope_assets, which needs Dagster
pytest.importorskip("importlinter")
ROOT = PROJECT


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 kept, 0 broken" in done.stdout

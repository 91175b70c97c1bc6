"""Running the real `adacode` entry point in a subprocess, and where the committed fixtures live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def run_adacode(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `adacode` entry point in a subprocess (python -m, same interpreter)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "adacode_cli", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, check=False,
    )

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


def torch_blocked(folder: Path) -> dict[str, str]:
    """An environment in which `import torch` fails (a fake package first on PYTHONPATH): what
    a command does before it imports torch runs, anything after it fails loudly."""
    blocker = folder / "torch"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch must not be imported')\n")
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}

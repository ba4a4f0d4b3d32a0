"""`python -m bench.write_path get N [--bare]` sends bench (b)'s reads to the hub or to the bare
baseline in-process, so both can be counted in instructions per request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("bare", [False, True])
def test_reads_go_to_the_hub_or_to_the_bare_app(bare: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.write_path", "get", "40", *(["--bare"] if bare else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"get 40 ({'bare' if bare else 'hub'}): statuses {{200: 40}}")

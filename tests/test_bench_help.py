"""The bench entry points docs/performance.md cites answer --help and refuse a bad argument
with a usage line, as any command does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "module",
    [
        "bench.run",
        "bench.upsert_parts",
        "bench.soak",
        "bench.retention",
        "bench.write_path",
        "bench.query_path",
    ],
)
def test_help_describes_the_command(module: str) -> None:
    """`python -m bench.retention --help` was int('--help'): a ValueError traceback."""
    done = _bench(module, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout


def test_retention_refuses_a_count_that_is_none() -> None:
    done = _bench("bench.retention", "lots")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "usage: python -m bench.retention" in done.stderr

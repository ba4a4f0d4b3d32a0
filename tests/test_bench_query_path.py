"""`python -m bench.query_path build DB N` then `run DB REQUESTS` sends bench (e)'s four
queries to the hub in-process over the bench city, so each can be counted in instructions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.run import SELECTIVE, UNSELECTIVE, expected_matches

ROOT = Path(__file__).resolve().parent.parent


def _bench(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.query_path", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_four_queries_run_over_a_built_city(tmp_path: Path) -> None:
    """One request each, for the first type: the counts are those of the city's data."""
    db = tmp_path / "city.db"
    built = _bench("build", str(db), "500")
    assert built.returncode == 0, built.stdout + built.stderr
    assert _bench("build", str(db), "500").returncode == 2, "an existing file is kept"
    done = _bench("run", str(db), "1")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "selective",
        "unselective",
        "selective, count=true",
        "unselective, count=true",
    ]
    want = expected_matches(500)
    assert f"count {want[SELECTIVE]}," in lines[2]
    assert f"count {want[UNSELECTIVE]}," in lines[3]
    assert "count" not in lines[0] and "count" not in lines[1]

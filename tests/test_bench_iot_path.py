"""`python -m bench.iot_path N --digest` feeds bench (g)'s device messages to the agent
in-process and prints what was stored, so two versions can be counted in instructions per
message and shown to store the same."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_is_stored_and_digested() -> None:
    """Its messages were dated 2027-01-15, past the agent's bound on readings ahead of the
    clock (decision 080): every one was refused and the run waited for ever."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.iot_path", "60", "--batch", "20", "--digest"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("iot 60 (batches of 20): "), done.stdout
    found = re.search(
        r"^digest [0-9a-f]{64} \((\d+) entities, (\d+) history rows\)$", done.stdout, re.M
    )
    assert found, done.stdout
    # the 1,000 provisioned devices' entities, and a history row per message
    assert (int(found[1]), int(found[2])) == (1000, 60), found[0]

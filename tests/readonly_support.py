"""Run `cityhub` with one folder on a read-only file system, as a backup disk remounted
read-only after I/O errors is: the folder is bind-mounted read-only over itself in a private
mount namespace (`unshare`), so nothing outside that one command sees the mount."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# $1 is the folder; the rest is the command. 97: the mount itself failed (no namespaces here)
_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 97; shift; exec "$@"'


def cityhub_read_only(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`cityhub argv` while folder is read-only; skipped where user namespaces are not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare (util-linux): cannot mount a read-only folder")
    command = [unshare, "-rm", "sh", "-c", _MOUNT, "sh", str(folder)]
    done = subprocess.run(
        [*command, sys.executable, "-m", "cityhub.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode == 97 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a read-only folder here: {done.stderr.strip()}")
    return done

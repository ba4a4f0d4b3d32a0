"""Ctrl-C while a command starts (imports take seconds on a loaded machine) is exit 130 with
nothing on stderr, not a 20-line KeyboardInterrupt traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cityhub import cli
from conftest import free_port

# SIGINT delivered by the process to itself as serve imports uvicorn: the moment an operator's
# Ctrl-C most often hit, made exact. Python's own Ctrl-C handler is put back first, as a
# terminal has it: a shell without job control starts background commands with SIGINT
# ignored, and under such a `make test &` the signal would otherwise never arrive
INTERRUPTED_IMPORT = """
import builtins, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import cityhub.cli
real = builtins.__import__
def interrupted(name, *args, **kwargs):
    if name == "uvicorn":
        os.kill(os.getpid(), signal.SIGINT)
    return real(name, *args, **kwargs)
builtins.__import__ = interrupted
sys.exit(cityhub.cli.main(sys.argv[1:]))
"""


def test_ctrl_c_while_serve_imports_is_exit_130_quietly(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    argv = ["serve", "--port", str(free_port()), "--db", str(db)]
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_IMPORT, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (130, ""), done.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    "argv",
    [["serve", "--db", "hub.db"], ["demo", "--db", "demo.db"], ["backup", "x.bk", "--db", "h"]],
)
def test_ctrl_c_before_a_command_runs_is_exit_130(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "load_settings", interrupted)
    monkeypatch.setattr(cli, "_db_or_setting", interrupted)
    assert cli.main(argv) == 130
    assert capsys.readouterr() == ("", "")
    assert list(tmp_path.iterdir()) == []


def test_the_entry_point_imports_only_the_standard_library() -> None:
    """What it imports before main() runs is outside main's reach: it must stay small."""
    probe = (
        "import sys; before = set(sys.modules); import cityhub.cli; "
        "print(*sorted(set(sys.modules) - before))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stdout.split()
    assert "cityhub.cli" in loaded
    outside = {
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names
        and name not in ("cityhub", "cityhub.cli")
    }
    assert outside == set()

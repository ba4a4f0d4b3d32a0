"""`cityhub import --help` names every exit code a scheduler or script may meet."""

from __future__ import annotations

import pytest

from cityhub.cli import main


def test_the_help_names_each_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0: all stored" in text
    assert "1: some rows rejected (the rest stored)" in text
    assert (
        "2: bad arguments, a file that cannot be read, or a database or hub that cannot be used"
        in text
    )
    assert "130: stopped by Ctrl-C or SIGTERM" in text

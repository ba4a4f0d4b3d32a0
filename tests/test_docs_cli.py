"""Every `cityhub` subcommand and flag is in the README, and each flag's help says the default
it falls back to: for a flag that stands for a setting, the setting's default and variable."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityhub.cli import main, parser
from cityhub.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(
    p: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every leaf command, by its words after `cityhub`, with its parser."""
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, p
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


def _flags(p: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    return (a for a in p._actions if a.option_strings and a.dest not in ("help", "version"))


def test_every_command_and_flag_is_in_the_readme() -> None:
    for path, p in _commands(parser()):
        words = r"\b.*?\b".join(map(re.escape, path))
        assert re.search(rf"cityhub\b.*?\b{words}\b", README), f"cityhub {' '.join(path)}"
        for action in _flags(p):
            for flag in action.option_strings:
                assert re.search(rf"`[^`]*{re.escape(flag)}\b", README), (path, flag)


def test_a_flag_with_a_default_says_it() -> None:
    for path, p in _commands(parser()):
        for action in _flags(p):
            if action.default in (None, False) or action.required:
                continue
            assert "default" in (action.help or ""), (path, action.option_strings)
            if isinstance(action.default, int | str) and action.default != "":
                assert str(action.default) in (action.help or ""), (path, action.option_strings)


def test_a_flag_of_a_setting_says_the_setting_s_default_and_variable() -> None:
    """serve --mqtt said neither, so `off` and CITYHUB_MQTT were found only in the README."""
    for path, p in _commands(parser()):
        for action in _flags(p):
            if action.dest not in Settings.model_fields or action.default is not None:
                continue  # demo's --db has a default of its own, never CITYHUB_DB
            default = Settings.model_fields[action.dest].get_default()
            help_text = " ".join((action.help or "").split())
            assert f"default {default}" in help_text, (path, action.option_strings, help_text)
            if path[0] in ("serve", "demo"):
                assert f"CITYHUB_{action.dest.upper()}" in help_text, (path, help_text)


def test_import_help_gives_the_exit_codes_the_readme_gives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It said 2 was "bad arguments or file": a hub or database out of reach is 2 too, and
    Ctrl-C 130, as the README's list of exit codes says."""
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "database or hub that cannot be used" in text and "130" in text, text
    assert "a database or hub that cannot be" in README and "130 for Ctrl-C" in README

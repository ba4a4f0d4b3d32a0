"""The README's first section is the two commands a newcomer runs, and every `cityhub` command
line it shows is one the command line accepts as written: parsed here, so a renamed or dropped
flag fails at once (what they do against a running hub is the other tests' business)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cityhub.cli import parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_first_section_is_make_demo_and_make_test() -> None:
    first = README.split("\n## ", 2)[1]
    block = re.search(r"```sh\n(.*?)```", first, re.S)
    assert block, "the first section has no sh block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def _as_run(line: str) -> str:
    """A usage line as one command: each [--optional part] kept, the first of each a|b
    alternative taken."""
    line = re.sub(r"\[(-[^\]]*)\]", r"\1", line)
    return re.sub(r"(\S+?)\\?\|\S+", r"\1", line)


def _example_lines() -> list[str]:
    """`cityhub ...` lines of the sh blocks and the command cells of the README's tables."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("cityhub ") and "..." not in line:
                lines.append(line)
    cells = re.findall(r"^\| `(cityhub [^`]*)` \|", README, re.M)
    # a cell with a [placeholder] (`[options]`) is a usage summary, not a command to run
    lines += [c for c in cells if "..." not in c and not re.search(r"\[[^-]", c)]
    return lines


@pytest.mark.parametrize("line", _example_lines())
def test_every_cityhub_line_of_the_readme_parses(line: str) -> None:
    words = shlex.split(_as_run(line).replace("$KEY", "key"))[1:]
    try:
        parser().parse_args(words)
    except SystemExit as exc:  # argparse's way to refuse, and to end after --version
        assert exc.code == 0, f"{line!r} does not parse"

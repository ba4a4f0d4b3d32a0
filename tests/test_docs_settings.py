"""The README's settings table is what an operator configures the hub from: each row's default
is the code's, its bounds are the ones the code enforces, and every CITYHUB_* name the code
reads is a setting or one of the few other names the README lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cityhub.cli import OTHER_VARIABLES
from cityhub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ROW = re.compile(r"^\| `(CITYHUB_[A-Z0-9_]+)` \| ([^|]*) \|(.*)$", re.M)


def _rows() -> dict[str, tuple[str, str]]:
    """Settings table rows: variable -> (default cell, description cell)."""
    return {m[1]: (m[2].strip(), m[3]) for m in ROW.finditer(README)}


def _documented_default(cell: str) -> object:
    """A default cell as a value: `x` is read as JSON where it parses, else as text."""
    if cell in ("(unset)", "(empty)"):
        return None if cell == "(unset)" else ""
    text = cell.strip("`")
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_a_settings_row_gives_the_code_s_default(name: str) -> None:
    variable = f"CITYHUB_{name.upper()}"
    rows = _rows()
    assert variable in rows, f"{variable} has no row in README's settings table"
    code = Settings.model_fields[name].get_default(call_default_factory=True)
    assert _documented_default(rows[variable][0]) == code, (variable, rows[variable][0], code)


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_a_settings_row_names_the_bounds_the_code_enforces(name: str) -> None:
    """A bound is written plainly (1000000) or with thousands commas (1,000,000)."""
    row = _rows()[f"CITYHUB_{name.upper()}"][1].replace(",", "")
    for constraint in Settings.model_fields[name].metadata:
        for kind in ("ge", "gt", "le", "lt"):
            bound = getattr(constraint, kind, None)
            if bound is None:
                continue
            text = str(int(bound)) if float(bound).is_integer() else str(bound)
            said = re.search(rf"(?<![\d.]){re.escape(text)}(?!\d)", row)
            if kind == "le" and bound == 1024**3:
                said = said or re.search(r"\b1 GiB\b", row)
            assert said, f"CITYHUB_{name.upper()}: its row does not say {kind} {text}"


def test_every_row_of_the_table_is_a_setting_or_a_listed_variable() -> None:
    known = {f"CITYHUB_{n.upper()}" for n in Settings.model_fields} | OTHER_VARIABLES
    assert set(_rows()) <= known, set(_rows()) - known


def test_every_cityhub_variable_the_code_reads_is_known_and_documented() -> None:
    """A name read from the environment outside Settings must be in OTHER_VARIABLES, or
    `cityhub serve` refuses it as a typo, and in the README, which lists them."""
    known = {f"CITYHUB_{n.upper()}" for n in Settings.model_fields} | OTHER_VARIABLES
    read = re.compile(r"""(?:environ\.get|getenv|environ\[|setenv)\(?\s*["'](CITYHUB_[A-Z0-9_]+)""")
    names: set[str] = set()
    for folder in ("src", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(read.findall(path.read_text(encoding="utf-8")))
    unknown = {n for n in names - known if n not in TYPOS}
    assert not unknown, f"read by the code but neither a setting nor in OTHER_VARIABLES: {unknown}"
    for name in OTHER_VARIABLES:
        assert f"`{name}`" in README, f"{name} is not in the README"


# names the tests set on purpose to see the hub refuse them as unknown
TYPOS = {"CITYHUB_HISTORY_DAY", "CITYHUB_BOGUS", "CITYHUB_CITYHUB_PORT"}

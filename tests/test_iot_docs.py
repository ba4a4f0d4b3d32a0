"""The README's /iot/v1 table names every route the agent serves, with its methods: an
integrator reads the API from that table, and rows that fell out of it were not found."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from cityhub.ingest.agent.api import routes

README = Path(__file__).resolve().parent.parent / "README.md"
HEAD = "| path | methods | holds |"


def _table() -> dict[str, str]:
    """The rows of the /iot/v1 table, path -> methods column: its contiguous `|` lines."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(HEAD)
    rows: dict[str, str] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    return rows


def test_every_iot_route_is_a_row_of_the_readme_table() -> None:
    rows = _table()
    for route in routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{\w+\}", "{id}", route.path)
        assert path in rows, f"{path} is not in the README's /iot/v1 table"
        for method in route.methods or ():
            if method != "HEAD":
                assert method in rows[path], f"{method} {path} is not in the README's table"

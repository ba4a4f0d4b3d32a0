"""A decision record cited by number (`decision 074`, `decisions 017 and 040`,
`docs/decisions/080`) in the README, the docs or the code is a file of docs/decisions/, so a
reader sent there for the why finds it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = ROOT / "docs" / "decisions"
CITE = re.compile(
    r"(?i)\bdecisions?(?:/|\s+)((?:\d{3,4})(?:(?:,\s*|\s+and\s+)\d{3,4})*)"
    r"|docs/decisions/(\d{3,4})(-[\w-]+\.md)?"
)


def _sources() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return docs + [p for d in ("src", "bench") for p in sorted((ROOT / d).rglob("*.py"))]


def _records() -> dict[str, str]:
    """Number as written in file names (three digits) -> file name."""
    return {p.name.split("-")[0]: p.name for p in DECISIONS.glob("*.md")}


def test_every_cited_decision_record_exists() -> None:
    records = _records()
    missing = []
    for path in _sources():
        text = " ".join(path.read_text(encoding="utf-8").split())
        for numbers, number, slug in CITE.findall(text):
            for n in re.findall(r"\d{3,4}", numbers or number):
                if n not in records:
                    missing.append(f"{path.relative_to(ROOT)}: decision {n}")
                elif slug and records[n] != f"{n}{slug}":
                    missing.append(f"{path.relative_to(ROOT)}: docs/decisions/{n}{slug}")
    assert not missing, missing


def test_the_pattern_reads_each_form_of_citation() -> None:
    found = [
        m
        for g in CITE.findall("decisions 017 and 040; decision 098, docs/decisions/012")
        for m in g
    ]
    assert re.findall(r"\d{3,4}", " ".join(found)) == ["017", "040", "098", "012"]

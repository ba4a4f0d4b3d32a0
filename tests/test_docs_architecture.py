"""docs/architecture.md's module tables are the map a newcomer reads the code by: each module
under src/cityhub/ is named where its package's modules are, and each file it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "cityhub"
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

# packages described in a section of their own, by its heading
SECTIONS = {
    "notify": "notify/",
    "ingest/importers": "ingest/importers",
    "ingest/agent": "ingest/agent",
    "store/sqlite": "The SQLite store",
}


def _section(title: str) -> str:
    found = re.search(rf"(?ms)^## {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC)
    assert found, f"architecture.md has no section {title!r}"
    return found.group(1)


def _in_modules_table(module: str) -> bool:
    """A row's first cell names it as a path, as a name after a path of its folder
    (`api/entities.py`, `temporal.py`), or by its folder (`ngsild/query/`)."""
    folder = module.rpartition("/")[0]
    for row in _section("Modules").splitlines():
        if not row.startswith("| `"):
            continue
        current = ""
        for name in re.findall(r"`([^`]+)`", row.split("|")[1]):
            if "/" in name:
                current = name.rpartition("/")[0]
                if name == module or (name.endswith("/") and module.startswith(name)):
                    return True
            elif name == Path(module).name and current == folder:
                return True
    return False


def _named(module: str) -> bool:
    folder, _, name = module.rpartition("/")
    if _in_modules_table(module):
        return True
    if folder in SECTIONS:
        text = _section(SECTIONS[folder])
        stem = name.removesuffix(".py")
        return f"`{name}`" in text or f"{module}`" in text or f"`{stem}." in text
    return False


def test_every_module_is_named_in_the_architecture() -> None:
    modules = [
        p.relative_to(SRC).as_posix() for p in sorted(SRC.rglob("*.py")) if p.name != "__init__.py"
    ]
    missing = [m for m in modules if not _named(m)]
    assert not missing, f"modules docs/architecture.md does not name: {missing}"


def test_every_file_the_architecture_cites_exists() -> None:
    cited = set(re.findall(r"`([\w/.]+\.py)(?:::\w+)?`", DOC))
    files = [p.as_posix() for d in ("src", "tests", "bench") for p in (ROOT / d).rglob("*.py")]
    gone = [c for c in cited if not any(f.endswith("/" + c) for f in files)]
    assert not gone, f"docs/architecture.md cites files that do not exist: {gone}"


def _defines(name: str, text: str) -> bool:
    """A def, class, module constant or attribute of that name in the text."""
    return bool(
        re.search(
            rf"(?m)^\s*(?:async\s+)?(?:def|class)\s+{name}\b|^\s*(?:self\.)?{name}\s*[:=]"
            rf"|\bself\.{name}\s*[:=]",
            text,
        )
    )


def test_every_function_and_class_member_the_architecture_cites_exists() -> None:
    """`file.py::name` is defined in that file, and `Class.member` on a class of the code."""
    texts = {p.relative_to(SRC).as_posix(): p.read_text() for p in SRC.rglob("*.py")}
    code = "\n".join(texts.values())
    classes = set(re.findall(r"(?m)^\s*class (\w+)", code))
    gone = [
        f"{path}::{name}"
        for path, name in re.findall(r"`([\w/]+\.py)::(\w+)", DOC)
        if not any(_defines(name, t) for f, t in texts.items() if f.endswith(path))
    ]
    gone += [
        f"{cls}.{name}"
        for cls, name in re.findall(r"`([A-Z]\w*)\.(\w+)(?:\([^`]*\))?`", DOC)
        if cls in classes and not _defines(name, code)
    ]
    assert not gone, f"docs/architecture.md cites names the code no longer has: {gone}"

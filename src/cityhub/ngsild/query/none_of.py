"""A long q's `a!="x1";a!="x2";...` tested as one set lookup per entity (decision 057,
addendum): the evaluator took each term in turn, 1,000 of them over a type of 20,000 entities
29 s of CPU, about the query deadline.

Term `a!=x` holds when some value the path reaches has no element equal to x; the AND of
such terms holds when the path reaches a value and no term is met by every value. Only plain string and
number values are taken: their equality is Python's (1 == 1.0, a string to a string), as
the evaluator's `_order` has it; every other term stays as it was. A term's value may be a
list (a string is one against a VocabProperty's term and its IRIs, decision 055): the term
fails when every value the path reaches has an element in its list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cityhub.ngsild.query.ast import AttrPath, Compare, Range, ValueList

Key = tuple[str, Any]  # ("string", text) or ("number", int or float)
FEWEST = 8  # terms on one path before they are tested together: below, as they were


@dataclass(frozen=True, slots=True)
class NoneOf:
    """The AND of `path != values` terms, each value a plain string or number or a list of
    them: `terms_of` gives, for each such literal, the terms (numbered) it is a value of."""

    path: AttrPath
    terms_of: dict[Key, frozenset[int]] = field(hash=False, compare=False)

    def holds(self, found: list[tuple[Any, bool]]) -> bool:
        """Whether every term holds on the targets the path reaches (Relationship ones too:
        `!=` compares them as `==` does): no term has a value in every target."""
        failing: set[int] | None = None  # terms every target so far has a value of
        empty: frozenset[int] = frozenset()
        for value, _rel in found:
            mine: set[int] = set()
            for key in _elements(value):
                mine.update(self.terms_of.get(key, empty))
            failing = mine if failing is None else failing & mine
            if not failing:
                return True
        return failing is not None and not failing


def _elements(value: Any) -> set[Key]:
    """The string and number elements of a target (a list: its items; `@value`s unwrapped)."""
    out: set[Key] = set()
    for t in value if isinstance(value, list) else (value,):
        if isinstance(t, dict) and "@value" in t:
            t = t["@value"]
        if isinstance(t, str):
            out.add(("string", t))
        elif isinstance(t, int | float) and not isinstance(t, bool):
            out.add(("number", t))
    return out


def _keys(node: Any) -> tuple[Key, ...] | None:
    """The literals of a `!=` term on plain strings or numbers (one, or a list), else None."""
    if not isinstance(node, Compare) or node.op != "!=" or isinstance(node.value, Range):
        return None
    values = node.value.values if isinstance(node.value, ValueList) else (node.value,)
    keys: list[Key] = []
    for value in values:
        if value.kind == "string" and isinstance(value.value, str):
            keys.append(("string", value.value))
        elif value.kind == "number" and isinstance(value.value, int | float):
            keys.append(("number", value.value))
        else:
            return None
    return tuple(keys)


def grouped(items: Iterable[Any]) -> list[Any]:
    """The items of an AND with its plain `!=` terms on one path, FEWEST or more, as one
    NoneOf in place of the first; the others as they were."""
    items = list(items)
    by_path: dict[AttrPath, list[tuple[int, tuple[Key, ...]]]] = {}
    for i, item in enumerate(items):
        keys = _keys(item)
        if keys is not None:
            by_path.setdefault(item.path, []).append((i, keys))
    out: list[Any] = list(items)
    for path, terms in by_path.items():
        if len(terms) < FEWEST:
            continue
        terms_of: dict[Key, set[int]] = {}
        for n, (i, keys) in enumerate(terms):
            for key in keys:
                terms_of.setdefault(key, set()).add(n)
            out[i] = None
        out[terms[0][0]] = NoneOf(path, {k: frozenset(v) for k, v in terms_of.items()})
    return [item for item in out if item is not None]

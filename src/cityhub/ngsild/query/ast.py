"""Backend-neutral query trees, so every store compiles the same parsed request."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, overload

ValueKind = Literal["number", "string", "bool", "null", "datetime", "date", "time"]
CompareOp = Literal["==", "!=", ">", ">=", "<", "<=", "~=", "!~="]
COMPARE_OPS: tuple[str, ...] = ("==", "!=", ">", ">=", "<", "<=", "~=", "!~=")
TEMPORAL_KINDS = frozenset({"datetime", "date", "time"})


@dataclass(frozen=True, slots=True)
class AttrPath:
    """Where a q term looks: attribute, then sub-attributes, then keys inside a JSON value."""

    attr: str
    sub: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Value:
    """A typed literal; temporal kinds carry `norm` so backends compare instants, not text.

    norm: datetime -> YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC), date -> YYYY-MM-DD,
    time -> HH:MM:SS.ffffffZ (UTC); None for the other kinds.
    """

    kind: ValueKind
    value: object
    norm: str | None = None


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive `low..high`; both ends have the same kind."""

    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class ValueList:
    """`v1,v2,...`: equal to any of them."""

    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """`path op value`; Range and ValueList only appear with == and !=, regexes are strings."""

    path: AttrPath
    op: CompareOp
    value: Value | Range | ValueList


@dataclass(frozen=True, slots=True)
class Exists:
    """A bare attribute path: the target element exists."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    """All items hold (`;`)."""

    items: tuple[QNode, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """Any item holds (`|`)."""

    items: tuple[QNode, ...]


QNode: TypeAlias = Compare | Exists | And | Or


@dataclass(frozen=True, slots=True)
class TypeName:
    """One entity type name (as written, or expanded by map_names)."""

    name: str


@dataclass(frozen=True, slots=True)
class TypeAnd:
    """The entity has all these types (`;`)."""

    items: tuple[TypeNode, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    """The entity has any of these types (`,` or `|`)."""

    items: tuple[TypeNode, ...]


TypeNode: TypeAlias = TypeName | TypeAnd | TypeOr


@dataclass(frozen=True, slots=True)
class ScopePattern:
    """A scope path such as `/Madrid/+/Parks/#` (`+` one level, trailing `#` any descendants)."""

    path: str

    @property
    def levels(self) -> tuple[str, ...]:
        """The path split into levels; `/#` gives ("#",)."""
        return tuple(self.path.split("/")[1:])


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    """The entity's scopes match all patterns (`;`)."""

    items: tuple[ScopeNode, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    """The entity's scopes match any pattern (`,` or `|`)."""

    items: tuple[ScopeNode, ...]


ScopeNode: TypeAlias = ScopePattern | ScopeAnd | ScopeOr


# Terms one q, type or scopeQ expression may hold: each becomes a condition (and SQL
# parameters) of its own, and a statement takes at most 32,766 parameters.
MAX_TERMS = 1000


def leaves(node: Any) -> int:
    """How many terms a q, type or scope tree holds."""
    items = getattr(node, "items", None)
    return 1 if items is None else sum(leaves(i) for i in items)


def _map_path(path: AttrPath, fn: Callable[[str], str]) -> AttrPath:
    """Expand the attribute and sub-attribute names, never the JSON keys."""
    return AttrPath(fn(path.attr), tuple(fn(s) for s in path.sub), path.keys)


@overload
def map_names(node: QNode, fn: Callable[[str], str]) -> QNode: ...
@overload
def map_names(node: TypeNode, fn: Callable[[str], str]) -> TypeNode: ...
def map_names(node: QNode | TypeNode, fn: Callable[[str], str]) -> QNode | TypeNode:
    """A copy of a q or type tree with every name passed through fn (e.g. term -> IRI)."""
    match node:
        case Compare(path, op, value):
            return Compare(_map_path(path, fn), op, value)
        case Exists(path):
            return Exists(_map_path(path, fn))
        case And(items):
            return And(tuple(map_names(i, fn) for i in items))
        case Or(items):
            return Or(tuple(map_names(i, fn) for i in items))
        case TypeName(name):
            return TypeName(fn(name))
        case TypeAnd(items):
            return TypeAnd(tuple(map_names(i, fn) for i in items))
        case TypeOr(items):
            return TypeOr(tuple(map_names(i, fn) for i in items))
    raise TypeError(f"not a q or type node: {node!r}")


_TERM = re.compile(r"^[^\s\"<>{}|\\^`]+$")


def expand_q(node: QNode, expand: Callable[[str], str]) -> QNode:
    """A q tree with its names expanded, in which `==` and `!=` on a string also compare the
    string expanded as a vocabulary term: a VocabProperty stores its terms expanded (`ok` as
    `<@vocab>ok`), so `q=category=="ok"` must find it (ETSI GS CIM 009 4.9)."""
    return _vocab_forms(map_names(node, expand), expand)


def _vocab_forms(node: QNode, expand: Callable[[str], str]) -> QNode:
    match node:
        case Compare(path, op, Value() | ValueList() as value) if op in ("==", "!="):
            given = value.values if isinstance(value, ValueList) else (value,)
            forms: list[Value] = []
            for v in given:
                forms.append(v)
                if v.kind == "string" and isinstance(v.value, str) and _TERM.match(v.value):
                    iri = expand(v.value)
                    if iri != v.value:
                        forms.append(Value("string", iri))
            if len(forms) == len(given):
                return node
            return Compare(path, op, ValueList(tuple(dict.fromkeys(forms))))
        case And(items):
            return And(tuple(_vocab_forms(i, expand) for i in items))
        case Or(items):
            return Or(tuple(_vocab_forms(i, expand) for i in items))
    return node

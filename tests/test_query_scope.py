"""scopeQ parsing: paths, `+` one level, trailing `#` any descendants, `;` AND, `,`/`|` OR."""

from __future__ import annotations

import contextlib
import random

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.ast import ScopeAnd, ScopeOr, ScopePattern
from cityhub.ngsild.query.scope import parse_scope

P = ScopePattern


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Madrid", P("/Madrid")),
        ("/Madrid/Gardens", P("/Madrid/Gardens")),
        ("/Madrid/#", P("/Madrid/#")),
        ("/#", P("/#")),
        ("/+/Gardens", P("/+/Gardens")),
        ("/Madrid/+/#", P("/Madrid/+/#")),
        ("/A,/B", ScopeOr((P("/A"), P("/B")))),
        ("/A|/B", ScopeOr((P("/A"), P("/B")))),
        ("/A;/B", ScopeAnd((P("/A"), P("/B")))),
        ("/A;/B,/C", ScopeOr((ScopeAnd((P("/A"), P("/B"))), P("/C")))),
        ("(/A,/B);/C", ScopeAnd((ScopeOr((P("/A"), P("/B"))), P("/C")))),
        ("/Zaragoza/Parque_1/zona-2", P("/Zaragoza/Parque_1/zona-2")),
    ],
)
def test_parse_scope(text: str, expected: object) -> None:
    assert parse_scope(text) == expected


def test_levels() -> None:
    assert P("/Madrid/+/#").levels == ("Madrid", "+", "#")
    assert P("/#").levels == ("#",)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Madrid",
        "/",
        "//",
        "/a/",
        "/a//b",
        "/a/#/b",
        "/#/#",
        "/a#",
        "/a+",
        "/a,",
        "(/a",
        "/a b",
        "/a;",
        "#",
        "+",
        '/a"b',
        "/a=b",
    ],
)
def test_malformed_scope(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_scope(text)


def test_fuzz_scope() -> None:
    rnd = random.Random(11)
    pieces = ["/", "a", "Madrid", "#", "+", ",", "|", ";", "(", ")", " ", "\\", "é"]
    for _ in range(200):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        with contextlib.suppress(BadRequestData):
            parse_scope(text)

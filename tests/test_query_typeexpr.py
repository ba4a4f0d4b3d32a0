"""Entity type selections: `,`/`|` OR, `;` AND (binding tighter), parentheses, IRIs as names."""

from __future__ import annotations

import contextlib
import random

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.ast import TypeAnd, TypeName, TypeOr
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types

A, B, C = TypeName("A"), TypeName("B"), TypeName("C")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A", A),
        ("A,B", TypeOr((A, B))),
        ("A|B", TypeOr((A, B))),
        ("A;B", TypeAnd((A, B))),
        ("A;B|C", TypeOr((TypeAnd((A, B)), C))),
        ("A|B;C", TypeOr((A, TypeAnd((B, C))))),
        ("(A;B)|C", TypeOr((TypeAnd((A, B)), C))),
        ("A;(B,C)", TypeAnd((A, TypeOr((B, C))))),
        ("((A))", A),
        (" A , B ", TypeOr((A, B))),
        ("ex:Building", TypeName("ex:Building")),
        (
            "https://ex.org/Building,urn:type:x",
            TypeOr((TypeName("https://ex.org/Building"), TypeName("urn:type:x"))),
        ),
        ("https://ex.org/a#Thing", TypeName("https://ex.org/a#Thing")),
    ],
)
def test_parse_types(text: str, expected: object) -> None:
    assert parse_types(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        ",",
        "A,",
        ",A",
        "A;;B",
        "A||B",
        "(A",
        "A)",
        "()",
        "A B",
        "(A)B",
        'A"',
        "A<B",
        "a=b",
        "(" * 40 + "A" + ")" * 40,
    ],
)
def test_malformed_types(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_types(text)


def test_fuzz_types() -> None:
    rnd = random.Random(7)
    pieces = ["A", "ex:B", "https://x.org/C", ",", "|", ";", "(", ")", " ", '"', "<", "=", "\x00"]
    for _ in range(200):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        with contextlib.suppress(BadRequestData):
            parse_types(text)


def test_a_long_selection_is_refused_at_its_first_term_past_the_bound() -> None:
    """The 1,001st term stops the reading: a syntax error after it is never reached (a
    300,000-term selection was tokenized and parsed whole, 0.5 s of CPU, before the count)."""
    with pytest.raises(BadRequestData, match=r"more than 1,000 terms"):
        parse_types(",".join(f"T{i}" for i in range(1001)) + ",(")
    with pytest.raises(BadRequestData, match=r"more than 1,000 terms"):
        parse_scope(",".join(f"/s{i}" for i in range(1001)) + ",(")
    parse_types(",".join(f"T{i}" for i in range(1000)))  # the bound itself is taken


def test_an_error_quotes_only_the_start_of_a_long_selection() -> None:
    text = "(" + "|".join(f"T{i}" for i in range(999)) + "|(" + "x" * 100_000
    with pytest.raises(BadRequestData) as caught:
        parse_types(text)
    assert len(caught.value.detail) < 600


def test_a_bad_type_selection_kept_parsed_is_refused_every_time() -> None:
    """Short selections are kept parsed; a refused one is not kept, and is refused again."""
    for _ in range(2):
        with pytest.raises(BadRequestData):
            parse_types("A;(B")
    assert parse_types("A;B") is parse_types("A;B")
    long = ",".join(f"T{i}" for i in range(400))  # past what is kept: parsed each time
    assert parse_types(long) == parse_types(long)

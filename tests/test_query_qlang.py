"""The q parser accepts the clause 4.9 grammar and answers every malformed string with 400."""

from __future__ import annotations

import random

import pytest

from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.query.ast import (
    And,
    AttrPath,
    Compare,
    Exists,
    Or,
    Range,
    TypeAnd,
    TypeName,
    TypeOr,
    Value,
    ValueList,
    map_names,
)
from cityhub.ngsild.query.qlang import norm_date, norm_datetime, norm_time, parse_q


def cmp(attr: str, op: str, value: object, **path: tuple[str, ...]) -> Compare:
    v = value if isinstance(value, Value | Range | ValueList) else Value("number", value)
    return Compare(AttrPath(attr, **path), op, v)  # type: ignore[arg-type]


def s(text: str) -> Value:
    return Value("string", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("temperature", Exists(AttrPath("temperature"))),
        ("temperature==20", cmp("temperature", "==", 20)),
        ("temperature==-20.5", cmp("temperature", "==", -20.5)),
        ("t>=1e3", cmp("t", ">=", 1000.0)),
        ("t<0", cmp("t", "<", 0)),
        ("t<=3", cmp("t", "<=", 3)),
        ("t>3", cmp("t", ">", 3)),
        ('brandName!="Mercedes"', cmp("brandName", "!=", s("Mercedes"))),
        ('isParked=="urn:ngsi-ld:Park:1"', cmp("isParked", "==", s("urn:ngsi-ld:Park:1"))),
        ("isParked==urn:ngsi-ld:Park:1", cmp("isParked", "==", s("urn:ngsi-ld:Park:1"))),
        ("flag==true", cmp("flag", "==", Value("bool", True))),
        ("flag!=false", cmp("flag", "!=", Value("bool", False))),
        ("x==null", cmp("x", "==", Value("null", None))),
        ('name=="a;b|(c)"', cmp("name", "==", s("a;b|(c)"))),
        (r'name=="say \"hi\" \\ \u00e9"', cmp("name", "==", s('say "hi" \\ é'))),
        ('name==""', cmp("name", "==", s(""))),
        ("ngsi-ld:foo_bar-baz==1", cmp("ngsi-ld:foo_bar-baz", "==", 1)),
        ("temperatura_ñ==1", cmp("temperatura_ñ", "==", 1)),
    ],
)
def test_single_terms(text: str, expected: object) -> None:
    assert parse_q(text) == expected


def test_paths() -> None:
    assert parse_q("temperature.observedAt").path == AttrPath("temperature", ("observedAt",))  # type: ignore[union-attr]
    assert parse_q("a.b.c==1") == cmp("a", "==", 1, sub=("b", "c"))
    assert parse_q('address[city]=="Berlin"') == cmp("address", "==", s("Berlin"), keys=("city",))
    assert parse_q("sensor.rawdata[airquality.particulate]==40") == cmp(
        "sensor", "==", 40, sub=("rawdata",), keys=("airquality", "particulate")
    )
    assert parse_q("cfg[a][b]==1") == cmp("cfg", "==", 1, keys=("a", "b"))
    assert parse_q("name[*]").path == AttrPath("name", (), ("*",))  # type: ignore[union-attr]
    assert parse_q("id==urn:x:1") == cmp("id", "==", s("urn:x:1"))


def test_temporal_values_are_typed_and_normalised() -> None:
    q = parse_q("t.observedAt>=2017-12-24T12:00:00Z")
    assert q == cmp(
        "t",
        ">=",
        Value("datetime", "2017-12-24T12:00:00Z", "2017-12-24T12:00:00.000000Z"),
        sub=("observedAt",),
    )
    q = parse_q("t<2017-12-24T12:00:00.123+02:00")
    assert isinstance(q, Compare) and isinstance(q.value, Value)
    assert q.value.norm == "2017-12-24T10:00:00.123000Z"
    assert parse_q("d==2018-08-07") == cmp("d", "==", Value("date", "2018-08-07", "2018-08-07"))
    assert parse_q("h<12:00:00Z") == cmp("h", "<", Value("time", "12:00:00Z", "12:00:00.000000Z"))
    quoted = parse_q('t>"2017-12-24T12:00:00Z"')
    assert isinstance(quoted, Compare) and quoted.value == s("2017-12-24T12:00:00Z")


def test_a_comma_after_a_time_separates_list_items() -> None:
    """Only '.' starts a fraction in a q literal (4.6.3); a comma is the ValueList separator
    (4.9): `10:00:00,12:00:00` was a 400 and `10:00:00,5` the single Time 10:00:00.5."""

    def t(text: str) -> Value:
        return Value("time", text, f"{text}.000000Z")

    assert parse_q("t==10:00:00,12:00:00") == cmp(
        "t", "==", ValueList((t("10:00:00"), t("12:00:00")))
    )
    assert parse_q("t==10:00:00,5") == cmp(
        "t", "==", ValueList((t("10:00:00"), Value("number", 5)))
    )
    days = parse_q("t!=2024-01-01T10:00:00,2024-01-02T10:00:00")
    assert isinstance(days, Compare) and isinstance(days.value, ValueList)
    assert [v.norm for v in days.value.values] == [
        "2024-01-01T10:00:00.000000Z",
        "2024-01-02T10:00:00.000000Z",
    ]
    assert parse_q("t==10:00:00.5") == cmp(
        "t", "==", Value("time", "10:00:00.5", "10:00:00.500000Z")
    )
    # a stored value may still be written with ISO 8601's comma: it is read as that time
    assert norm_time("10:00:00,5") == "10:00:00.500000Z"


def test_norm_helpers() -> None:
    assert norm_datetime("2024-01-01T00:00:00Z") == "2024-01-01T00:00:00.000000Z"
    assert norm_datetime("2024-01-01T01:30:00.1234567+01:30") == "2024-01-01T00:00:00.123456Z"
    assert norm_datetime("2024-01-01T00:00") == "2024-01-01T00:00:00.000000Z"
    assert norm_datetime("2024-02-30T00:00:00Z") is None
    assert norm_datetime("hello") is None
    assert norm_date("2024-02-29") == "2024-02-29"
    assert norm_date("2023-02-29") is None
    assert norm_time("23:30:00-01:00") == "00:30:00.000000Z"
    assert norm_time("25:00:00") is None


def test_lists_and_ranges() -> None:
    assert parse_q('color=="black","red"') == cmp("color", "==", ValueList((s("black"), s("red"))))
    assert parse_q("ref!=urn:a,urn:b") == cmp("ref", "!=", ValueList((s("urn:a"), s("urn:b"))))
    assert parse_q("n==1,2,3") == cmp(
        "n", "==", ValueList(tuple(Value("number", i) for i in (1, 2, 3)))
    )
    assert parse_q("temperature==10..20") == cmp(
        "temperature", "==", Range(Value("number", 10), Value("number", 20))
    )
    assert parse_q("t==1.5..2.5") == cmp(
        "t", "==", Range(Value("number", 1.5), Value("number", 2.5))
    )
    r = parse_q("t!=2018-01-01T00:00:00Z..2019-01-01T00:00:00Z")
    assert isinstance(r, Compare) and isinstance(r.value, Range)
    assert r.value.low.kind == r.value.high.kind == "datetime"
    assert parse_q('s=="a".."b"') == cmp("s", "==", Range(s("a"), s("b")))


def test_bare_terms_only_where_allowed() -> None:
    """A bare term is a string value of == and != on the attributes `bare` names (the
    expandValues parameter); anywhere else it is a 400, as the grammar has no such value."""

    def gender(attr: str) -> bool:
        return attr == "gender"

    assert parse_q("gender==Male", gender) == cmp("gender", "==", s("Male"))
    assert parse_q("gender==Male", gender) == parse_q('gender=="Male"')
    assert parse_q("gender!=Male,x-y;age>3", gender) == And(
        (cmp("gender", "!=", ValueList((s("Male"), s("x-y")))), cmp("age", ">", 3))
    )
    assert parse_q("gender.by==A|gender[k]==B", gender) == Or(
        (cmp("gender", "==", s("A"), sub=("by",)), cmp("gender", "==", s("B"), keys=("k",)))
    )
    assert parse_q("gender==true", gender) == cmp("gender", "==", Value("bool", True))
    for text in ("gender==Male", "gender!=Male", 'gender=="a",Male'):
        with pytest.raises(BadRequestData, match="bare term 'Male'"):
            parse_q(text)
    for text in ("age==Male", "gender>Male", "gender==Male..Z", "gender==Male@x", "gender==M e"):
        with pytest.raises(BadRequestData):
            parse_q(text, gender)


def test_regex_terms() -> None:
    assert parse_q('name~="^Hall.*"') == cmp("name", "~=", s("^Hall.*"))
    assert parse_q('name!~="a|b"') == cmp("name", "!~=", s("a|b"))
    assert parse_q("name~=(?i)hal+") == cmp("name", "~=", s("(?i)hal+"))
    # A bare pattern ends at ; or | outside its own groups (quote it to use top-level |).
    assert parse_q("name~=(a|b)c;x==1") == And((cmp("name", "~=", s("(a|b)c")), cmp("x", "==", 1)))
    assert parse_q("name~=[;|]x|y") == Or((cmp("name", "~=", s("[;|]x")), Exists(AttrPath("y"))))


def test_precedence_and_grouping() -> None:
    a, b, c = (cmp(n, "==", 1) for n in "abc")
    assert parse_q("a==1;b==1|c==1") == Or((And((a, b)), c))
    assert parse_q("a==1|b==1;c==1") == Or((a, And((b, c))))
    assert parse_q("a==1;(b==1|c==1)") == And((a, Or((b, c))))
    assert parse_q("((a==1))") == a
    assert parse_q("a==1;b==1;c==1") == And((a, b, c))
    assert parse_q("(a==1;b==1);c==1") == And((a, b, c))
    assert parse_q('((speed>50|rpm>3000);brandName=="Mercedes")') == And(
        (Or((cmp("speed", ">", 50), cmp("rpm", ">", 3000))), cmp("brandName", "==", s("Mercedes")))
    )


def test_whitespace_is_tolerated() -> None:
    assert parse_q(" a == 1 ; ( b > 2 | c ) ") == parse_q("a==1;(b>2|c)")
    assert parse_q('n == "x y"') == cmp("n", "==", s("x y"))


def test_map_names_expands_attrs_and_subs_not_keys() -> None:
    node = parse_q("a.b[k.l]==1;(c|d.observedAt>2020-01-01T00:00:00Z)")

    def fn(name: str) -> str:
        return "https://ex.org/" + name

    mapped = map_names(node, fn)
    assert isinstance(mapped, And)
    first = mapped.items[0]
    assert isinstance(first, Compare)
    assert first.path == AttrPath("https://ex.org/a", ("https://ex.org/b",), ("k", "l"))
    second = mapped.items[1]
    assert isinstance(second, Or)
    assert second.items[0] == Exists(AttrPath("https://ex.org/c"))
    types = map_names(TypeOr((TypeName("A"), TypeAnd((TypeName("B"), TypeName("C"))))), fn)
    assert types == TypeOr(
        (
            TypeName("https://ex.org/A"),
            TypeAnd((TypeName("https://ex.org/B"), TypeName("https://ex.org/C"))),
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "==1",
        "a==",
        "a=1",
        "a===1",
        "a=>1",
        "a!1",
        "a~1",
        "a==1;",
        ";a==1",
        "a==1||b==1",
        "(a==1",
        "a==1)",
        "()",
        "a==1 b==2",
        "a b",
        'a=="unterminated',
        'a=="bad \\x escape"',
        "a==abc",
        "a==12abc",
        "a==1..",
        "a==1..2..3",
        "a==1..true",
        'a==1.."x"',
        "a>true",
        "a<null",
        "a>urn:x:y",
        "a==1,",
        "a==,1",
        "a==2018-13-01",
        "a==2018-02-30T00:00:00Z",
        "a==25:00:00",
        "a==1e999",
        "a~=",
        'a~=""',
        "a~=(unclosed",
        'a~="[z-a]"',
        "a[]==1",
        "a[b==1",
        "a[b..c]==1",
        "a[b].c==1",
        "a..b",
        "1a==1",
        ".a==1",
        "a.==1",
        "a.b.==1",
        "a==+1",
        "a=='single'",
        "(" * 40 + "a" + ")" * 40,
    ],
)
def test_malformed_is_bad_request(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text)


_ZERO = "quote a code as a string"
_DIGITS = "its digits must be 0-9"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("postcode==08001", _ZERO),
        ("a==-012", _ZERO),
        ("a==00", _ZERO),
        ("a==007.5", _ZERO),
        ("a==1,07", _ZERO),
        ("a==07..9", _ZERO),
        ("a>01e3", _ZERO),
        ("a==\uff12\uff10", _DIGITS),
        ("a==\u0662\u0660", _DIGITS),
        ("a==20..\uff13\uff10", _DIGITS),
        ("t>\uff12\uff10\uff12\uff14-01-01T00:00:00Z", _DIGITS),
        ("d==\uff12\uff10\uff12\uff14-01-01", _DIGITS),
        ("t==\uff11\uff10:00:00", _DIGITS),
    ],
)
def test_numbers_and_dates_are_written_as_the_grammar_writes_them(text: str, said: str) -> None:
    """4.9: a Number is RFC 8259's (no leading zero, digits 0-9), a date 4.6.3's: a code
    written unquoted is refused, naming the quoted form, not compared as another number."""
    with pytest.raises(BadRequestData) as err:
        parse_q(text)
    assert said in err.value.detail


def test_a_stored_q_keeps_the_literals_it_was_accepted_with() -> None:
    """A subscription's q stored before the check is read again as it was (parse_q's
    bounded=False), so it still compiles and notifies."""
    assert parse_q("postcode==08001", bounded=False) == cmp("postcode", "==", 8001)
    assert parse_q("a==\uff12\uff10", bounded=False) == cmp("a", "==", 20)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("a==0", 0),
        ("a==-0", 0),
        ("a==0.5", 0.5),
        ("a==-0.25", -0.25),
        ("a==0e3", 0.0),
        ("a==10", 10),
    ],
)
def test_zero_itself_still_starts_a_number(text: str, number: float) -> None:
    assert parse_q(text) == cmp("a", "==", number)


def test_deep_but_allowed_nesting() -> None:
    assert parse_q("(" * 30 + "a" + ")" * 30) == Exists(AttrPath("a"))


def test_non_string_input_is_bad_request() -> None:
    with pytest.raises(BadRequestData):
        parse_q(None)  # type: ignore[arg-type]


_ALPHABET = [
    *list("abzAZ09_-:.;|(),\"'\\[]{}=!<>~*#+/ \t"),
    "==",
    "!=",
    "..",
    "~=",
    "!~=",
    "2018-08-07T12:00:00Z",
    "12:00:00",
    "true",
    "null",
    "urn:x",
    "é",
    "\x00",
    "1e999",
    "(?",
]
_SEEDS = [
    "temperature==20",
    "a.b[c.d]==10..20",
    '((speed>50|rpm>3000);brandName=="Mercedes")',
    "name~=(?i)h[a|]ll",
    "x==urn:a,urn:b",
    "t.observedAt>=2017-12-24T12:00:00+01:00",
]


def _garbage(rnd: random.Random) -> str:
    if rnd.random() < 0.5:
        return "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 30)))
    chars = list(rnd.choice(_SEEDS))
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randrange(len(chars) + 1)
        if rnd.random() < 0.5 and chars:
            del chars[min(at, len(chars) - 1)]
        else:
            chars.insert(at, rnd.choice(_ALPHABET))
    return "".join(chars)


def test_fuzz_only_bad_request_or_success() -> None:
    rnd = random.Random(4242)
    outcomes = {"ok": 0, "bad": 0}
    for _ in range(300):
        text = _garbage(rnd)
        try:
            parse_q(text)
            outcomes["ok"] += 1
        except BadRequestData:
            outcomes["bad"] += 1
    assert outcomes["ok"] > 0 and outcomes["bad"] > 0


def test_an_offset_whose_plus_became_a_space_says_to_encode_it() -> None:
    # what reaches the parser after URL decoding of ?q=dt<2024-05-15T10:00:00+02:00
    with pytest.raises(BadRequestData, match="%2B02:00"):
        parse_q("dt<2024-05-15T10:00:00 02:00")
    with pytest.raises(BadRequestData) as other:
        parse_q("a==1 2")
    assert "%2B" not in str(other.value)
    encoded = parse_q("dt<2024-05-15T10:00:00+02:00")
    assert isinstance(encoded, Compare) and isinstance(encoded.value, Value)
    assert encoded.value.norm == "2024-05-15T08:00:00.000000Z"


def test_a_long_q_is_refused_at_its_first_term_past_the_bound() -> None:
    """The 1,001st term stops the parser: what follows is neither read nor compiled (a
    5.5 MB q was parsed whole, 8.6 s of CPU, before the count refused it)."""
    with pytest.raises(BadRequestData, match=r"more than 1,000 terms"):
        parse_q("p==1;" * 1000 + "p==1;p==(")  # the syntax error lies past the bound


def test_patterns_past_the_term_bound_are_not_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each `~=` term compiles an RE2 program; those past the bound cost nothing."""
    from cityhub.ngsild.query import qlang

    compiled: list[str] = []
    real = qlang.bounded_pattern

    def counting(pattern: str) -> object:
        compiled.append(pattern)
        return real(pattern)

    monkeypatch.setattr(qlang, "bounded_pattern", counting)
    with pytest.raises(BadRequestData, match=r"more than 1,000 terms"):
        parse_q(";".join(f'p~="a{i}"' for i in range(5000)))
    assert len(compiled) == 1000


def test_an_error_quotes_only_the_start_of_a_long_q() -> None:
    """A malformed q of 100,000 characters is not echoed whole in the 400's detail."""
    text = "p==" + "1" * 100_000 + "x"
    with pytest.raises(BadRequestData) as caught:
        parse_q(text)
    assert len(caught.value.detail) < 600
    assert f"({len(text):,} characters)" in caught.value.detail

"""Parser for the NGSI-LD query language (`q`, ETSI GS CIM 009 clause 4.9) into ast nodes."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import NoReturn

from cityhub.jsonints import INT_MAX, INT_MIN
from cityhub.ngsild.errors import EXCERPT, BadRequestData, excerpt, shown
from cityhub.ngsild.query.ast import (
    MAX_TERMS,
    And,
    AttrPath,
    Compare,
    CompareOp,
    Exists,
    Or,
    QNode,
    Range,
    Value,
    ValueKind,
    ValueList,
)
from cityhub.ngsild.query.pattern import Pattern, PatternError, bounded_pattern, compile_pattern

MAX_DEPTH = 32
_OFFSET = r"(?P<off>[Zz]|[+-]\d{2}(?::?\d{2})?)"


def _datetime_re(separators: str) -> re.Pattern[str]:
    """A DateTime whose seconds' fraction follows one of `separators`."""
    fraction = rf"(?:[{separators}](?P<frac>\d+))"
    return re.compile(
        r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt](?P<h>\d{2}):(?P<mi>\d{2})"
        rf"(?::(?P<s>\d{{2}}){fraction}?)?{_OFFSET}?"
    )


def _time_re(separators: str) -> re.Pattern[str]:
    """A Time whose seconds' fraction follows one of `separators`."""
    fraction = rf"(?:[{separators}](?P<frac>\d+))"
    return re.compile(rf"(?P<h>\d{{2}}):(?P<mi>\d{{2}}):(?P<s>\d{{2}}){fraction}?{_OFFSET}?")


# Stored values: ISO 8601 also writes the fraction after a comma.
_DATETIME_RE = _datetime_re(".,")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_RE = _time_re(".,")
_PAST_INTEGERS = (
    "number out of range: an integer is kept exactly from -2^63 to 2^63-1 (a larger one is "
    "refused on write); write a larger number with a decimal point or an exponent"
)
_NUMBER_RE = re.compile(r"-?\d+(?P<real>(?:\.\d+)?(?:[eE][+-]?\d+)?)")
_KEYWORD_RE = re.compile(r"(true|false|null)(?![\w:.\-])")
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s;|(),\"<>\\]*")
_NAME_RE = re.compile(r"[^\W\d][\w\-]*(?::[\w\-]+)?")
# Longest first, so `!~=` is not read as `!=`... and `>=` not as `>`.
_OPERATORS: tuple[CompareOp, ...] = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_TOKEN_END = frozenset(";|),")


def _offset(text: str | None) -> timezone | None:
    """The tzinfo of a `Z`/`+hh:mm` suffix; None when there is none (taken as UTC)."""
    if not text or text in "Zz":
        return UTC if text else None
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def _micros(frac: str | None) -> int:
    """Microseconds from a fraction of any length (extra digits are truncated)."""
    return int((frac or "")[:6].ljust(6, "0"))


def norm_datetime(text: str) -> str | None:
    """A DateTime in storage form (UTC, microseconds, `Z`), or None if it is not one."""
    m = _DATETIME_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    try:
        tz = _offset(m["off"]) or UTC
        value = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"]),
            int(m["mi"]),
            int(m["s"] or 0),
            _micros(m["frac"]),
            tzinfo=tz,
        )
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError):
        return None


def norm_date(text: str) -> str | None:
    """A Date as YYYY-MM-DD, or None if it is not one."""
    if not isinstance(text, str) or not _DATE_RE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def norm_time(text: str) -> str | None:
    """A Time shifted to UTC as HH:MM:SS.ffffffZ, or None if it is not one."""
    m = _TIME_RE.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    try:
        tz = _offset(m["off"]) or UTC
        anchor = datetime(2000, 1, 3, int(m["h"]), int(m["mi"]), int(m["s"]), _micros(m["frac"]))
        return anchor.replace(tzinfo=tz).astimezone(UTC).strftime("%H:%M:%S.%fZ")
    except (ValueError, OverflowError):
        return None


# q literals: only '.' starts a fraction (4.6.3); a comma separates the items of a ValueList
# (4.9), so `t==10:00:00,12:00:00` is two Times, not 10:00:00 and a refused rest, and
# `t==10:00:00,5` no longer reads as 10:00:00.5
_TEMPORAL: tuple[tuple[ValueKind, re.Pattern[str], Callable[[str], str | None]], ...] = (
    ("datetime", _datetime_re("."), norm_datetime),
    ("date", _DATE_RE, norm_date),
    ("time", _time_re("."), norm_time),
)


def compile_regex(pattern: str, *, bounded: bool = True) -> Pattern:
    """Compile a q or idPattern regular expression; a bad one is the client's error. Without
    `bounded`, for what the hub stored before MAX_PROGRAM: only its syntax is checked."""
    try:
        return bounded_pattern(pattern) if bounded else compile_pattern(pattern)
    except PatternError as exc:
        shown = pattern if len(pattern) <= EXCERPT else f"{pattern[:EXCERPT]}..."
        raise BadRequestData(f'invalid regular expression "{shown}": {exc}') from None


# A time followed by a space and an offset: a '+' the URL query decoding turned into a space.
_DECODED_PLUS = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? \d{2}(?::?\d{2})?")
_PLUS_HINT = (
    " (a '+' in a URL query string means a space: write a time offset such as +02:00 as %2B02:00)"
)


class _Parser:
    """Recursive descent over one q string; AND binds tighter than OR."""

    def __init__(
        self, text: str, bare: Callable[[str], bool], bounded: bool, what: str = "q"
    ) -> None:
        self.s = text
        self.what = what  # the member or parameter the text came in (q, csf), for errors
        self.i = 0
        self.depth = 0
        self.bare = bare  # the attributes whose == and != values may be bare terms
        # a client's new q (True) or a stored one, read again as it was accepted: only a new
        # one has its patterns bounded and its literals held to the grammar (_strict_literal)
        self.bounded = bounded
        self.terms = 0  # counted as read: past MAX_TERMS the rest is not parsed (nor compiled)

    def fail(self, what: str) -> NoReturn:
        hint = _PLUS_HINT if _DECODED_PLUS.search(self.s) else ""
        where = f"at position {self.i} in {excerpt(self.s)}{hint}"
        raise BadRequestData(f"invalid {self.what}: {what} {where}")

    def peek(self) -> str:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1
        return self.s[self.i : self.i + 1]

    def ends_token(self, pos: int) -> bool:
        """Whether a value token may stop at pos (so `12abc` is not read as 12)."""
        if pos >= len(self.s):
            return True
        return self.s[pos] in _TOKEN_END or self.s[pos].isspace() or self.s.startswith("..", pos)

    def query(self) -> QNode:
        items = [self.conjunction()]
        while self.peek() == "|":
            self.i += 1
            items.append(self.conjunction())
        flat = [x for item in items for x in (item.items if isinstance(item, Or) else (item,))]
        return flat[0] if len(flat) == 1 else Or(tuple(flat))

    def conjunction(self) -> QNode:
        items = [self.primary()]
        while self.peek() == ";":
            self.i += 1
            items.append(self.primary())
        flat = [x for item in items for x in (item.items if isinstance(item, And) else (item,))]
        return flat[0] if len(flat) == 1 else And(tuple(flat))

    def primary(self) -> QNode:
        if self.peek() != "(":
            return self.term()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"parentheses nested deeper than {MAX_DEPTH}")
        self.i += 1
        node = self.query()
        if self.peek() != ")":
            self.fail("expected ')'")
        self.i += 1
        self.depth -= 1
        return node

    def name(self) -> str:
        self.peek()
        m = _NAME_RE.match(self.s, self.i)
        if m is None:
            self.fail("expected an attribute name")
        self.i = m.end()
        return m.group()

    def path(self) -> AttrPath:
        attr = self.name()
        sub: list[str] = []
        while self.peek() == "." and not self.s.startswith("..", self.i):
            self.i += 1
            sub.append(self.name())
        keys: list[str] = []
        while self.peek() == "[":
            end = self.s.find("]", self.i + 1)
            if end < 0:
                self.fail("unclosed '['")
            body = self.s[self.i + 1 : end]
            parts = [part.strip() for part in body.split(".")]
            if "[" in body or not all(parts):
                self.fail(f"invalid trailing path [{body}]")
            keys.extend(parts)
            self.i = end + 1
        if self.peek() in (".", "["):
            self.fail("unexpected character after trailing path")
        return AttrPath(attr, tuple(sub), tuple(keys))

    def operator(self) -> CompareOp | None:
        if self.peek() not in ("=", "!", "<", ">", "~"):
            return None
        for op in _OPERATORS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                return op
        self.fail("unknown operator")

    def term(self) -> QNode:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise BadRequestData(f"invalid {self.what}: more than {MAX_TERMS:,} terms")
        path = self.path()
        op = self.operator()
        if op is None:
            return Exists(path)
        if op in ("~=", "!~="):
            return Compare(path, op, self.regex())
        term = op in ("==", "!=") and self.bare(path.attr)
        first = self.value(allow_uri=op in ("==", "!="), allow_term=term)
        if op not in ("==", "!="):
            if first.kind in ("bool", "null"):
                self.fail(f"{op} needs a number, string, DateTime, Date or Time")
            return Compare(path, op, first)
        if self.peek() == ",":
            values = [first]
            while self.peek() == ",":
                self.i += 1
                values.append(self.value(allow_uri=True, allow_term=term))
            return Compare(path, op, ValueList(tuple(values)))
        if self.s.startswith("..", self.i):
            self.i += 2
            high = self.value(allow_uri=False)
            if first.kind != high.kind or first.kind in ("bool", "null"):
                self.fail("range ends must be comparable values of the same kind")
            return Compare(path, op, Range(first, high))
        return Compare(path, op, first)

    def quoted(self) -> str:
        """A JSON string starting at the current `"`."""
        j = self.i + 1
        while j < len(self.s) and self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        if j >= len(self.s):
            self.fail("unterminated string")
        raw = self.s[self.i : j + 1]
        try:
            text = _decode_json_string(raw)
        except ValueError:
            self.fail("invalid escape in string")
        self.i = j + 1
        return text

    def regex(self) -> Value:
        """A quoted pattern, or a bare one up to a `;`/`|`/`)` outside its own groups."""
        if self.peek() == '"':
            pattern = self.quoted()
        else:
            start, j, depth, in_class = self.i, self.i, 0, False
            while j < len(self.s):
                c = self.s[j]
                if c == "\\":
                    j += 2
                    continue
                if in_class:
                    in_class = c != "]"
                elif c == "[":
                    in_class = True
                elif c == "(":
                    depth += 1
                elif c == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif c in ";|" and depth == 0:
                    break
                j += 1
            pattern = self.s[start:j].strip()
            self.i = min(j, len(self.s))
        if not pattern:
            self.fail("empty regular expression")
        compile_regex(pattern, bounded=self.bounded)
        return Value("string", pattern)

    def _strict_literal(self, text: str, kind: str) -> None:
        """A new q's number, DateTime, Date or Time as the grammar writes it (4.9: RFC 8259's
        number, 4.6.3's dates): digits 0-9 only (`\\d` and int() took full-width and
        Arabic-Indic digits), and no leading zero (`postcode==08001` was the number 8001, so a
        code stored as the text "08001", as `cityhub import csv` keeps it, silently matched
        nothing)."""
        if not self.bounded:
            return
        if not text.isascii():
            self.fail(f"{excerpt(text)} is no {kind}: its digits must be 0-9")
        digits = text.lstrip("-")
        if kind == "number" and len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
            self.fail(
                f"{excerpt(text)} is no number: a number does not start with 0 (RFC 8259); "
                + (f'quote a code as a string, "{text}"' if len(text) <= EXCERPT else "quote it")
            )

    def value(self, allow_uri: bool, allow_term: bool = False) -> Value:
        """A literal; with allow_term, also a bare term (`gender==Male&expandValues=gender`,
        clause 4.9 example 12), read as the string it names."""
        c = self.peek()
        if c == '"':
            return Value("string", self.quoted())
        for kind, regex, norm in _TEMPORAL:
            m = regex.match(self.s, self.i)
            if m and self.ends_token(m.end()):
                self._strict_literal(m.group(), kind)
                normed = norm(m.group())
                if normed is None:
                    self.fail(f"invalid {kind} {excerpt(m.group())}")
                self.i = m.end()
                return Value(kind, m.group(), normed)
        m = _NUMBER_RE.match(self.s, self.i)
        if m and self.ends_token(m.end()):
            self._strict_literal(m.group(), "number")
            if (
                not m["real"] and len(m.group().lstrip("-").lstrip("0")) > 19
            ):  # int() of 5,000 digits
                self.fail(_PAST_INTEGERS)
            number: int | float = float(m.group()) if m["real"] else int(m.group())
            if isinstance(number, int) and not INT_MIN <= number <= INT_MAX:
                self.fail(_PAST_INTEGERS)  # no value stored can equal it (jsonints)
            if isinstance(number, float) and not math.isfinite(number):
                self.fail("number out of range")
            self.i = m.end()
            return Value("number", number)
        m = _KEYWORD_RE.match(self.s, self.i)
        if m:
            self.i = m.end()
            word = m.group()
            return Value("null", None) if word == "null" else Value("bool", word == "true")
        m = _URI_RE.match(self.s, self.i) if allow_uri else None
        if m and self.ends_token(m.end()):
            self.i = m.end()
            return Value("string", m.group())
        m = _NAME_RE.match(self.s, self.i) if allow_uri else None
        if m and self.ends_token(m.end()):
            if allow_term:
                self.i = m.end()
                return Value("string", m.group())
            self.fail(  # (expandValues is a parameter of entity and temporal queries only)
                f"expected a value, not the bare term {excerpt(m.group())}: quote it as a string, or "
                "name the attribute in expandValues"
            )
        self.fail('expected a value (number, "string", true/false, DateTime, Date, Time)')


def _decode_json_string(raw: str) -> str:
    """Decode a double-quoted JSON string literal; ValueError when it is not one."""
    try:
        text = json.loads(raw, strict=False)
    except (ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(text, str):
        raise ValueError("not a string")
    return text


def parse_path(text: str, what: str) -> AttrPath:
    """An attribute path alone, as q writes it (attr, attr.sub.sub, attr[key.key]): orderBy's
    (4.23.3). Anything after the path is a 400, as `address[city]` read as a name was a 200."""
    parser = _Parser(text, lambda attr: False, True)
    try:
        path = parser.path()
        if parser.peek():
            parser.fail(f"unexpected {shown(parser.peek())}")
    except BadRequestData as exc:
        raise BadRequestData(f"invalid {what} {excerpt(text)}: {exc.detail}") from None
    return path


def parse_q(
    text: str,
    bare: Callable[[str], bool] = lambda attr: False,
    *,
    bounded: bool = True,
    what: str = "q",
) -> QNode:
    """Parse a q expression (already URL-decoded); BadRequestData when it is malformed.

    `bare(attr)`: whether `==`/`!=` on the attribute (as written) take a bare term as a string
    value, as expandValues allows. `bounded`: refuse patterns over MAX_PROGRAM (a stored q,
    read again, is taken as it was accepted). `what`: the member it came in, as errors name
    it (csf has q's grammar)."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequestData(f"invalid {what}: empty expression")
    parser = _Parser(text, bare, bounded, what)
    node = parser.query()
    if parser.peek():
        parser.fail(f"unexpected {shown(parser.peek())}")
    return node  # at most MAX_TERMS terms: the parser counts them as it reads (_Parser.term)

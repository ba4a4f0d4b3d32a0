"""A JSON file's top-level object read a block at a time: its members, and the items of one
array member as raw bytes each, so a file of any size is read in bounded memory.

Only where values begin and end is worked out here (strings skipped whole, brackets
counted); each value is then parsed by orjson on its own, so what is valid is orjson's rule,
as when the file was parsed whole.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from cityhub.jsonints import huge_integer

BLOCK = 1 << 20  # bytes read at a time
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
# Everything up to the next bracket (or, at depth 0, comma) that is not inside a string: it
# stops at a structural byte, at the quote of a string the buffer ends inside, or at the end.
_RUN_TOP = re.compile(rb'(?:[^"\[\]{},]++|' + _STRING + rb")*+", re.S)
_RUN_INSIDE = re.compile(rb'(?:[^"\[\]{}]++|' + _STRING + rb")*+", re.S)
_STRING_AT = re.compile(_STRING, re.S)
_BLANK = re.compile(rb"[ \t\r\n]*+")


def _nested(levels: int) -> bytes:
    """A pattern for a bracketed value nested at most `levels` deep (which bracket closes
    which is orjson's to check when it parses the value)."""
    inner = rb'[^"\[\]{}]++|' + _STRING
    if levels > 1:
        inner += rb"|" + _nested(levels - 1)
    return rb"[\[{](?:" + inner + rb")*+[\]}]"


# A whole value in one match, when it nests at most 8 deep and the buffer holds it: a feature
# is then found without a Python step per bracket (else, or at the buffer's end, bracket by
# bracket).
_VALUE = re.compile(_nested(8) + rb"|" + _STRING + rb'|[^"\[\]{},]++', re.S)


class Malformed(ValueError):
    """Not valid JSON: orjson's reason or the splitter's, and the byte offset it is at."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class NotAnObject(ValueError):
    """The document is not a JSON object."""


@dataclass
class Item:
    """One item of the array: its raw JSON, or None when larger than the bound (skipped)."""

    index: int  # in its array (a name given twice: the last array counts, as orjson has it)
    offset: int
    raw: bytes | None


@dataclass
class Members:
    """The top-level members other than the streamed array, parsed (those over the bound
    are left out and counted), and where the array starts, if it is one."""

    values: dict[str, Any] = field(default_factory=dict)
    oversized: int = 0
    array_at: int | None = None  # the offset of the last such member's "[" (orjson: last wins)
    huge: tuple[str, str] | None = None  # (path, text) of an integer past 64 bits (jsonints)


class _Window:
    """The file's bytes from `base` on; positions are offsets in the file."""

    def __init__(self, stream: IO[bytes], base: int = 0) -> None:
        self.stream = stream
        self.buf = b""
        self.base = base

    def at(self, pos: int) -> int:
        """The byte at pos (-1 at the end of the file), reading as needed."""
        while pos - self.base >= len(self.buf):
            if not self.more(pos):
                return -1
        return self.buf[pos - self.base]

    def more(self, keep: int) -> bool:
        """Drop what is before offset keep and read a block; False at the end of the file."""
        block = self.stream.read(BLOCK)
        cut = keep - self.base
        if cut > 0:
            self.buf, self.base = self.buf[cut:], keep
        if not block:
            return False
        self.buf += block
        return True

    def blank(self, pos: int) -> int:
        """The offset of the first byte from pos that is not JSON whitespace."""
        while True:
            m = _BLANK.match(self.buf, pos - self.base)
            assert m is not None  # matches the empty string
            pos = self.base + m.end()
            if m.end() < len(self.buf) or not self.more(pos):
                return pos

    def string_end(self, pos: int) -> int:
        """The offset just past the string that starts at pos."""
        while (m := _STRING_AT.match(self.buf, pos - self.base)) is None:
            if not self.more(pos):
                raise Malformed("a string is never closed (the file ends inside it)", pos)
        return self.base + m.end()

    def value_end(self, start: int, limit: int) -> tuple[int, bool]:
        """The offset of the `,` `]` or `}` that ends the value starting at start, and
        whether the value is at most limit bytes long (a longer one is read past, not held)."""
        depth = 0
        i = start - self.base
        whole = _VALUE.match(self.buf, i)
        if whole is not None and whole.end() < len(self.buf):
            i = whole.end()  # what follows is looked at as below: the end, or not JSON
        held = True
        while True:
            run = (_RUN_TOP if depth == 0 else _RUN_INSIDE).match(self.buf, i)
            assert run is not None  # matches the empty string
            k = run.end()
            if k == len(self.buf) or self.buf[k] == 0x22:  # read more, look again from k
                if held and self.base + k - start > limit:
                    held = False  # from here on, only its end is looked for
                resume = self.base + k
                what = "a string" if k < len(self.buf) else "a value"
                if not self.more(start if held else resume):
                    raise Malformed(f"{what} is never closed (the file ends inside it)", resume)
                i = resume - self.base
                continue
            c = self.buf[k]
            if c == 0x5B or c == 0x7B:  # [ {
                depth += 1
            elif depth and c != 0x2C:  # ] } closing a nested value
                depth -= 1
            else:  # , ] or } at depth 0
                end = self.base + k
                return end, held and end - start <= limit
            i = k + 1

    def slice(self, start: int, end: int) -> bytes:
        """Bytes from start to end (both held)."""
        return self.buf[start - self.base : end - self.base]


def parse(raw: bytes, offset: int) -> Any:
    """orjson's value of raw, which starts at offset in the file."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Malformed(exc.msg, offset + exc.pos) from None


def _expect(w: _Window, pos: int, chars: bytes, what: str) -> int:
    """The byte at pos, which must be one of chars."""
    c = w.at(pos)
    if c < 0 or c not in chars:
        found = "the end of the file" if c < 0 else repr(chr(c))
        raise Malformed(f"expected {what}, found {found}", pos)
    return c


def members(stream: IO[bytes], array: str, limit: int) -> Generator[Item | Members, None, None]:
    """Every item of the top-level object's `array` member (each a JSON array member found,
    in file order), then the other members; Malformed where the file is not valid JSON,
    NotAnObject when it is not an object. Values over limit bytes are not held."""
    w = _Window(stream)
    found = Members()
    # a UTF-8 byte-order mark, which Windows tools write and RFC 8259 lets a parser ignore
    while len(w.buf) < 3 and w.more(0):  # keeps what it has read
        pass
    start = 3 if w.buf.startswith(b"\xef\xbb\xbf") else 0
    pos = w.blank(start)
    if w.at(pos) != ord("{"):
        raise NotAnObject
    pos = w.blank(pos + 1)
    if w.at(pos) == ord("}"):
        pos += 1
    else:
        while True:
            _expect(w, pos, b'"', "a member name")
            end = w.string_end(pos)
            key = parse(w.slice(pos, end), pos)
            pos = w.blank(end)
            _expect(w, pos, b":", "':' after a member name")
            pos = w.blank(pos + 1)
            if key == array and w.at(pos) == ord("["):
                found.array_at = pos
                pos = yield from _items(w, pos + 1, limit)
            else:
                found.array_at = None if key == array else found.array_at
                end, held = w.value_end(pos, limit)
                if held:
                    raw = w.slice(pos, end)
                    found.values[key] = parse(raw, pos)
                    found.huge = found.huge or huge_integer(raw, key)
                else:
                    found.values.pop(key, None)
                    found.oversized += 1
                pos = end
            pos = w.blank(pos)
            if _expect(w, pos, b",}", "',' or '}' after a member") == ord("}"):
                pos += 1
                break
            pos = w.blank(pos + 1)
    pos = w.blank(pos)
    if w.at(pos) >= 0:
        raise Malformed("data after the end of the document", pos)
    yield found


def items(stream: IO[bytes], start: int, limit: int) -> Iterator[Item]:
    """The items of the array whose "[" is at offset start (Members.array_at)."""
    stream.seek(start)
    w = _Window(stream, start)
    _expect(w, start, b"[", "'['")
    yield from _items(w, start + 1, limit)


def _items(w: _Window, pos: int, limit: int) -> Generator[Item, None, int]:
    """The items of an array whose "[" is just before pos; returns the offset past its "]"."""
    pos = w.blank(pos)
    if w.at(pos) == ord("]"):
        return pos + 1
    index = 0
    while True:
        end, held = w.value_end(pos, limit)
        if held:
            raw = w.slice(pos, end)
            if not raw.strip(b" \t\r\n"):
                raise Malformed("expected a value", pos)
            yield Item(index, pos, raw)
        else:
            yield Item(index, pos, None)
        index += 1
        if _expect(w, end, b",]", "',' or ']' after an item") == ord("]"):
            return end + 1
        pos = w.blank(end + 1)

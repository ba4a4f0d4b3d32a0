"""UTF-8 text lines for the csv module, decoded one line at a time so errors name their line."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from typing import IO

from cityhub.ingest.importers.records import ImportFailed

BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HIGH = re.compile(rb"[\x80-\xff]+")
LEGACY = {"cp949": "Korean", "cp1252": "Western European Windows"}
# A physical line longer than this is rejected as a row without being held: 32 cells at
# the csv module's 131,072-character limit; no table of rows needs longer lines.
MAX_LINE_BYTES = 4 * 1024 * 1024


def _bounded(raw: IO[bytes]) -> Iterator[bytes]:
    """Physical lines of at most MAX_LINE_BYTES: a longer one is skipped a block at a time
    and stands as a line whose one cell is over the csv cell limit, so the reader rejects
    that row (a file with one 1 GiB line was read whole, then refused)."""
    while line := raw.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            del line
            while (rest := raw.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield b"x" * (csv.field_size_limit() + 1) + b"\n"
            continue
        yield line


def utf8_lines(
    raw: IO[bytes], name: str, encoding: str = "utf-8", *, flag: bool = True
) -> Iterator[str]:
    """Decode each line (line endings kept, as csv wants); a leading UTF-8 BOM is dropped.

    `encoding` names another codec whose newline is the byte 0x0A (check_encoding), such as
    cp949 or euc-kr, which Korean public-data portals still publish. Bytes the codec cannot
    read raise ImportFailed naming the file, the physical line and the way out: `flag`, the
    command has --encoding (`import gtfs` has not: GTFS is UTF-8). A line is read at most
    MAX_LINE_BYTES at a time (_bounded), so memory stays bounded whatever the file holds.
    """
    for number, line in enumerate(_bounded(raw), 1):
        if number == 1:
            line = line.removeprefix(BOM)
        try:
            yield line.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ImportFailed(
                f"{name} line {number}: {_unreadable(line, number, encoding, exc, flag)}"
            ) from exc


def _unreadable(
    line: bytes, number: int, encoding: str, exc: UnicodeDecodeError, flag: bool
) -> str:
    """Why a line cannot be read, and what to do: the encoding the bytes look like."""
    if encoding != "utf-8":
        return f"not {encoding} text ({exc.reason})"
    if (number == 1 and line.startswith(UTF16_BOMS)) or b"\x00" in line:
        return (
            'UTF-16 text (Excel\'s "Unicode Text"), which is not read line by line: save it as '
            'UTF-8 (Excel: "CSV UTF-8"), or convert it (iconv -f utf-16 -t utf-8)'
        )
    guess = looks_like(line)
    if flag:
        return (
            f"not UTF-8 text ({exc.reason}); it looks like {guess} ({LEGACY[guess]}): try "
            f"--encoding {guess}, or save it as UTF-8"
        )
    return (
        f"not UTF-8 text ({exc.reason}); it looks like {guess} ({LEGACY[guess]}), and GTFS "
        f"tables are UTF-8: convert it (iconv -f {guess} -t utf-8)"
    )


def looks_like(line: bytes) -> str:
    """The likelier of the two legacy encodings cities' files come in: Korean (cp949) writes
    each character outside ASCII as two bytes of 0x81 or more, Western Windows (cp1252) as
    one byte between ASCII ones, so odd runs of such bytes are cp1252's."""
    runs = _HIGH.findall(line)
    return "cp949" if runs and all(len(run) % 2 == 0 for run in runs) else "cp1252"


def check_encoding(name: str) -> str:
    """The codec's canonical name; ImportFailed for an unknown one, or one that does not
    write a newline as the byte 0x0A (UTF-16, UTF-32): the file is read line by line."""
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise ImportFailed(f"--encoding: unknown text encoding {name!r}") from None
    if "\n".encode(codec.name) != b"\n":
        raise ImportFailed(f"--encoding: {name} is not read line by line; convert to UTF-8")
    return codec.name


def count_lines(f: IO[bytes]) -> int:
    """Lines in a binary stream (a last line without a newline counts): sizes progress bars."""
    lines = 0
    last = b"\n"
    while block := f.read(1 << 20):
        lines += block.count(b"\n")
        last = block[-1:]
    return lines + (last != b"\n")

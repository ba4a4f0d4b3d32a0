"""CSV rows with the line each starts on, read strictly: a malformed row is reported where it
is and reading goes on, so one broken line never runs silently into its neighbours.

Shared by `import csv` and the GTFS tables (gtfsfeed.py): both read text lines from
textfile.utf8_lines and map the csv module's errors here, once.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cityhub.ingest.importers.textfile import MAX_LINE_BYTES
from cityhub.ngsild.errors import BadRequestData


@dataclass(frozen=True, slots=True)
class BadLine:
    """A row the csv module could not read: why, in the words of the person who wrote the
    file, how many physical lines it stands for, and the cells its first line reads as when
    read leniently (enough to tell which GTFS shape a broken point belonged to)."""

    error: BadRequestData
    rows: int
    first: list[str]


class _Lines:
    """The lines fed to the reader, the current row's kept until the next row starts."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self.first = ""  # the first physical line of the row being read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if not self.first:
            self.first = line
        return line


def read_rows(
    lines: Iterable[str], delimiter: str = ","
) -> Iterator[tuple[int, list[str] | BadLine]]:
    """(line the row starts on, its cells or a BadLine) for every row, the header included.

    Strict: text after a closing quote and a quote never closed are errors, not cells run
    together; a cell over the csv module's limit (or a line textfile skipped as too long)
    rejects its row alone.
    """
    source = _Lines(lines)
    reader = csv.reader(source, delimiter=delimiter, strict=True)
    line = 1
    while True:
        source.first = ""
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader resumes on the next line
            last = max(reader.line_num, line)
            error, rows = malformed(exc, line, last)
            yield line, BadLine(error, rows, _lenient(source.first, delimiter))
        else:
            yield line, row
        line = reader.line_num + 1


def _lenient(text: str, delimiter: str) -> list[str]:
    """A line's cells as the csv module reads them when not strict ([] when it cannot)."""
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:  # a cell over the limit
        return []


def malformed(exc: csv.Error, first: int, last: int) -> tuple[BadRequestData, int]:
    """What a csv.Error on lines first..last means to the person who wrote the file, and how
    many rows it cost: a cell that ran on swallowed every line up to last, each one a row."""
    text = str(exc)
    swallowed = last - first + 1
    if text.startswith("unexpected end of data"):
        return BadRequestData(
            f"a quoted cell opened on line {first} is never closed: lines {first}-{last} "
            "(the end of the file) were read as this one row and are rejected with it"
        ), swallowed
    if text.startswith("field larger than field limit"):
        limit = f"a cell is longer than {csv.field_size_limit():,} characters"
        if last == first:
            return BadRequestData(f"{limit} (or the line than {MAX_LINE_BYTES:,} bytes)"), 1
        return BadRequestData(
            f"{limit}: a quoted cell opened on line {first} ran on to line {last} (a quote "
            f"never closed?); lines {first}-{last} are rejected with it and reading goes on "
            f"at line {last + 1}"
        ), swallowed
    if "expected after '\"'" in text:
        return BadRequestData(
            "text follows a quoted cell's closing quote: quote the whole cell and double "
            'the quotes inside it ("a ""b"" c")'
        ), 1
    return BadRequestData(f"not valid CSV: {text}"), 1

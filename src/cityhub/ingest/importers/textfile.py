"""UTF-8 text lines for the csv module, decoded one line at a time so errors name their line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from cityhub.ingest.importers.records import ImportFailed

BOM = b"\xef\xbb\xbf"


def utf8_lines(raw: Iterable[bytes], name: str) -> Iterator[str]:
    """Decode each line (line endings kept, as csv wants); a leading BOM is dropped.

    Bytes that are not UTF-8 raise ImportFailed naming the file and the physical line.
    """
    for number, line in enumerate(raw, 1):
        if number == 1:
            line = line.removeprefix(BOM)
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{name} line {number}: not UTF-8 text ({exc.reason})") from exc


def count_lines(f: IO[bytes]) -> int:
    """Lines in a binary stream (a last line without a newline counts): sizes progress bars."""
    lines = 0
    last = b"\n"
    while block := f.read(1 << 20):
        lines += block.count(b"\n")
        last = block[-1:]
    return lines + (last != b"\n")

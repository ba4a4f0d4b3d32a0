"""UTF-8 text lines for the csv module, decoded one line at a time so errors name their line."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from typing import IO

from cityhub.ingest.importers.records import ImportFailed

BOM = b"\xef\xbb\xbf"
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


def utf8_lines(raw: IO[bytes], name: str, encoding: str = "utf-8") -> Iterator[str]:
    """Decode each line (line endings kept, as csv wants); a leading UTF-8 BOM is dropped.

    `encoding` names another codec whose newline is the byte 0x0A (check_encoding), such as
    cp949 or euc-kr, which Korean public-data portals still publish. Bytes the codec cannot
    read raise ImportFailed naming the file and the physical line. A line is read at most
    MAX_LINE_BYTES at a time (_bounded), so memory stays bounded whatever the file holds.
    """
    for number, line in enumerate(_bounded(raw), 1):
        if number == 1:
            line = line.removeprefix(BOM)
        try:
            yield line.decode(encoding)
        except UnicodeDecodeError as exc:
            if encoding == "utf-8":
                what, hint = (
                    "UTF-8",
                    " (a Korean public-data file is often cp949: try --encoding cp949)",
                )
            else:
                what, hint = encoding, ""
            raise ImportFailed(
                f"{name} line {number}: not {what} text ({exc.reason}){hint}"
            ) from exc


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

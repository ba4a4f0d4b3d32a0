"""Read the tables of a GTFS feed, zipped or unpacked, as rows with their line numbers."""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cityhub.ingest.importers.csvrows import BadLine, read_rows
from cityhub.ingest.importers.records import ImportFailed
from cityhub.ingest.importers.textfile import count_lines, utf8_lines

REQUIRED = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
CALENDARS = ("calendar.txt", "calendar_dates.txt")  # a feed needs at least one of them


class Row(dict[str, str]):
    """A data row's non-blank cells, and the columns of its table: a blank cell (which may
    delete a stored value) is then told apart from a column the table does not have."""

    __slots__ = ("header",)

    def __init__(self, cells: dict[str, str], header: frozenset[str]) -> None:
        super().__init__(cells)
        self.header = header


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row the csv module could not read (why, and how many lines it took), with the cells
    of its first line read leniently: which shape a broken point was of."""

    bad: BadLine
    hint: Row


# A member inflating past BOMB_FLOOR bytes at more than BOMB_RATIO times its compressed size
# is refused unread: GTFS text compresses 5-20 times, a run of one byte about 1,000 times.
BOMB_FLOOR = 64 * 1024 * 1024
BOMB_RATIO = 200


class GtfsFeed:
    """The .txt tables of a feed; refuses a feed that lacks a required table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}  # table name -> zip member or file path
        if path.is_dir():
            self._members = {p.name: str(p) for p in sorted(path.glob("*.txt"))}
        else:
            try:
                self._zip = zipfile.ZipFile(path)
            except FileNotFoundError:
                raise ImportFailed(f"cannot read {path}: no such file or folder") from None
            except OSError as exc:
                raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from exc
            except zipfile.BadZipFile:
                raise ImportFailed(f"{path} is neither a zip file nor a folder") from None
            # Some feeds zip a folder: take each table from the shallowest place it appears.
            for name in sorted(self._zip.namelist(), key=lambda n: n.count("/")):
                table = name.rsplit("/", 1)[-1]
                if table.endswith(".txt") and not name.startswith("__MACOSX/"):
                    self._members.setdefault(table, name)
        missing = [t for t in REQUIRED if t not in self._members]
        if not any(t in self._members for t in CALENDARS):
            missing.append(" or ".join(CALENDARS))
        if missing:
            self.close()
            raise ImportFailed(f"{path} is not a complete GTFS feed: missing {', '.join(missing)}")

    def tables(self) -> list[str]:
        """Every table the feed holds."""
        return sorted(self._members)

    def close(self) -> None:
        """Release the zip file."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _open(self, table: str) -> IO[bytes]:
        """A binary stream of one table, from the zip or the folder."""
        member = self._members[table]
        if self._zip is not None:
            info = self._zip.getinfo(member)
            if info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * info.compress_size:
                raise ImportFailed(
                    f"{table} in {self.path} inflates {info.compress_size:,} bytes to "
                    f"{info.file_size:,}, more than {BOMB_RATIO} times: refused as a zip bomb"
                )
            return self._zip.open(member)  # reads at most file_size bytes
        return open(member, "rb")

    def count(self, table: str) -> int:
        """Data lines in a table (newlines minus the header): sizes the progress bar."""
        if table not in self._members:
            return 0
        with self._guard(table), self._open(table) as f:
            return max(count_lines(f) - 1, 0)

    def rows(
        self, table: str, required: tuple[str, ...] = ()
    ) -> Iterator[tuple[int, Row | BadRow]]:
        """(line number, row) for every data row; blank cells are left out of the row, and a
        row that is not valid CSV (a quote never closed, a cell over the csv limit) is a
        BadRow, so it is rejected where it is and its neighbours are read on their own.

        A table that lacks a required column, or cannot be read, raises ImportFailed.
        """
        if table not in self._members:
            return
        with self._guard(table), self._open(table) as raw:
            lines = read_rows(utf8_lines(raw, table, flag=False))
            _line, first = next(lines, (1, []))
            if isinstance(first, BadLine):
                raise ImportFailed(
                    f"{table} line 1 in {self.path}: cannot read the header: {first.error.detail}"
                )
            header = [h.strip() for h in first]
            absent = [c for c in required if c not in header]
            if absent:
                raise ImportFailed(f"{table} has no {', '.join(absent)} column")
            columns = frozenset(header)
            for line, cells in lines:
                if isinstance(cells, BadLine):
                    yield line, BadRow(cells, Row(_cells(header, cells.first), columns))
                    continue
                # a row without its trailing cells (some feeds leave empty ones out) does not
                # have those columns: blank ones would delete stored values (refresh.py)
                reached = columns if len(cells) >= len(header) else frozenset(header[: len(cells)])
                row = Row(_cells(header, cells), reached)
                if row:
                    yield line, row

    @contextlib.contextmanager
    def _guard(self, table: str) -> Iterator[None]:
        """Turn read errors inside one table into ImportFailed naming the table."""
        try:
            yield
        except (EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ImportFailed(f"cannot read {table} from {self.path}: damaged ({exc})") from exc
        except OSError as exc:
            raise ImportFailed(f"cannot read {table} from {self.path}: {exc}") from exc
        except NotImplementedError as exc:  # a compression method zipfile lacks
            raise ImportFailed(
                f"cannot read {table} from {self.path}: {exc}; re-zip it with deflate"
            ) from exc
        except RuntimeError as exc:  # zipfile's word for a member that needs a password
            raise ImportFailed(f"cannot read {table} from {self.path}: {exc}") from exc


def _cells(header: list[str], cells: list[str]) -> dict[str, str]:
    """A row's non-blank cells by column, stripped."""
    return {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()}

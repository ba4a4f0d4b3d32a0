"""What every importer yields: one record per source row, an entity or the reason there is none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cityhub.ngsild.errors import NgsiLdError

Entity = dict[str, Any]
# A row's observedAt (--observed-at), kept beside its attributes for the re-import planner
# (refresh.py): a row whose cells are all empty has no instance to carry it. No attribute can
# be named so (names starting with @ are refused); refresh.given() drops it before a write.
ROW_TIME = "@observedAt"


class ImportFailed(Exception):
    """The import cannot start or go on (bad file, unreachable hub): exit 2, one line.
    `again`: whether the same import run again can get past it (a hub lost or busy, not one
    that refuses what the file sends)."""

    def __init__(self, message: str, *, again: bool = True) -> None:
        super().__init__(message)
        self.again = again


@dataclass(slots=True)
class Record:
    """One row or feature: where it came from, so a rejection can point the user at it."""

    where: str  # "line 12", "features[3]", "stops.txt line 5"
    entity: Entity | None = None
    error: NgsiLdError | None = None  # set when the row could not become an entity
    eid: str = ""  # the id the row would have had, for the report
    rows: int = 1  # source lines a rejection stands for (a runaway cell swallows several)


class Source(Protocol):
    """A file read as records; estimate() sizes the progress bar before reading starts."""

    def estimate(self) -> int | None:
        """About how many records will come (None when unknown)."""
        ...

    def __iter__(self) -> Iterator[Record]:
        """The records, in file order."""
        ...

"""Many rows into one table with a few multi-row INSERTs instead of one statement per row.

`executemany` runs its statement once per row: each run resets the statement, hands the GIL
over and takes it back, and enters SQLite anew. A bulk create of 32 bench entities runs some
600 of them (index rows, history rows, ...): some 9 % of a create's instructions went on the
runs rather than on the rows (decision 066). `INSERT ... VALUES (...), (...), ...` inserts in
the same order, into the same rows, with the same values bound: one statement per CHUNK rows,
the rest in chunks of 16, 4 and 1, so each table needs at most four statement texts in the
connection's statement cache (Python's sqlite3 keeps 128 per connection; halving chunks,
seven texts a table, cost as many instructions).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

# Rows per statement: 64 x 9 history columns = 576 parameters, under the 999 of SQLite builds
# before 3.32. Per create of 32 bench entities at a time: 961k instructions with 16, 938k with
# 32, 923k with 64 and 128.
CHUNK = 64
STEP = 4  # each smaller chunk a STEP-th of the one before; CHUNK is a power of STEP


@functools.lru_cache(maxsize=256)
def _sql(head: str, width: int, count: int, tail: str) -> str:
    """`head` VALUES (?, ...) x count `tail`."""
    row = "(" + ", ".join("?" * width) + ")"
    return f"{head} VALUES {', '.join([row] * count)}{tail}"


def insert_rows(
    conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = ""
) -> None:
    """Run `head` VALUES ... `tail` (an INSERT, `tail` e.g. its ON CONFLICT clause) for every
    row, in order, each row's values bound as they are."""
    if len(rows) < 2:  # none, or one (a PATCH's history row): no chunks to cut
        if rows:
            conn.execute(_sql(head, len(rows[0]), 1, tail), rows[0])
        return
    width, size, start = len(rows[0]), CHUNK, 0
    while start < len(rows):
        runs = (len(rows) - start) // size
        if runs:
            end = start + runs * size
            flat = [list(chain.from_iterable(rows[i : i + size])) for i in range(start, end, size)]
            conn.executemany(_sql(head, width, size, tail), flat)
            start = end
        size //= STEP

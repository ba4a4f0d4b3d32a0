"""A period's aggregates as one SQL text that Python reads back to the very doubles SQLite
computed.

The range reads of aggregated periods pack each non-empty period into a text, so that a
series' 2,400 periods come back as one string (decision 069). `json_array` prints a double
with 15 significant digits, so a `max` of 0.30000000000000004 came back as 0.3 while the
whole-range read (a row) gave the stored double. Here each number is printed by
`printf('%!.17g')`, 17 digits, which any double needs to be read back exactly. SQLite 3.40's
printf is exact to 17 digits only below about 1e100 (measured on every binary exponent: of
1.68 M doubles, 2,334 read back to a neighbour, all past 1.03e102), so a period holding a
number of 1e90 or more in size is read again as a row (`temporal._exactly`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Below this size SQLite's printf('%!.17g') reads back to the same double (exact to ~1e100).
LARGE = 1e90
# Every number at least 1e17 in size is printed with an exponent, so a text without it holds
# none past LARGE (strings may hold it too: then the numbers are looked at).
EXPONENT = "e+"


def record_sql(exprs: Sequence[str], ordered: frozenset[str], nulls: bool) -> str:
    """SQL of one period's record `[i, *aggregates]` as JSON text: counts as integers,
    `ordered` (min/max of what is not a number: text or NULL) quoted, the other aggregates as
    17-digit numbers; `nulls` when those may be NULL (a numbers-only read proves they are not,
    or is discarded), which then print as null."""
    fmt = ["[%d"]
    args = ["i"]
    for e in exprs:
        if e.startswith("count("):
            fmt.append("%d")
            args.append(e)
        elif e in ordered:
            fmt.append("%s")
            args.append(f"json_quote({e})")
        elif nulls:
            fmt.append("%s")
            args.append(f"iif(({e}) IS NULL, 'null', printf('%!.17g', {e}))")
        else:
            fmt.append("%!.17g")
            args.append(e)
    return f"printf('{','.join(fmt)}]', {', '.join(args)})"


def large(rows: Sequence[Sequence[Any]], numbers: Sequence[int]) -> list[int]:
    """The period numbers of the records with a number at `numbers` of LARGE or more in size
    (or infinite), which printf may not have printed exactly: read them again as rows."""
    return [
        r[0]
        for r in rows
        if any(type(r[k]) is float and not -LARGE < r[k] < LARGE for k in numbers)
    ]


def replace(rows: list[Any], exact: Sequence[Sequence[Any]]) -> list[Any]:
    """The records with those read again replaced by their rows (same period number)."""
    again = {r[0]: r for r in exact}
    return [again.get(r[0], r) for r in rows] if again else rows

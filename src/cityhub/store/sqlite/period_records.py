"""The [value, startAt, endAt] records of aggregated periods, from the rows SQL aggregated.

An hourly series over 100 days is 2,400 periods of four methods: 9,600 records and 2,401
edges to print. Built one call per value (a float made whole, an edge printed through
strftime), that took about a sixth of the request (bench figure (f), decision 069); here the
edges of whole-second periods are printed in one pass (each day's prefix and each time of
day once), and the values are made whole inline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cityhub.ngsild.timeutil import END_OF_TIME, epoch_iso
from cityhub.store.base import Aggregation, Doc
from cityhub.store.sqlite import functions

# `num` is a REAL column: a whole result below 2**53 is exact, and is given as an integer
# (max of 5 was 5.0); above that, the stored double is all there is.
WHOLE_METHODS = frozenset({"sum", "min", "max", "sumsq"})
_EXACT = 2.0**53
_YEAR_1000 = datetime(1000, 1, 1, tzinfo=UTC).timestamp()
_DAY = 86400
_FEW = 8  # times of day below which a loop per time costs no more than one per day


def whole(value: Any) -> Any:
    """A whole float below 2^53 as an integer (max of 5 was 5.0)."""
    if type(value) is float and value.is_integer() and -_EXACT < value < _EXACT:
        return int(value)
    return value


def stamper() -> Callable[[float], str]:
    """epoch_iso() for the edges of one series' periods, each printed once (through strftime
    for a whole second in years 1000-9999, which strftime pads)."""
    edges: dict[float, str] = {}

    def stamp(t: float) -> str:
        text = edges.get(t)
        if text is None:
            if t == int(t) and _YEAR_1000 <= t < END_OF_TIME:
                text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
            else:
                text = epoch_iso(t)
            edges[t] = text
        return text

    return stamp


def _whole_seconds(times: range) -> list[str] | None:
    """epoch_iso() of whole seconds in ascending order, all in years 1000-9999 (else None):
    each day's prefix and each time of day printed once."""
    if not times or times[0] < _YEAR_1000 or times[-1] >= END_OF_TIME:
        return None
    step = times.step
    per_day = _DAY // step
    if _DAY % step == 0 and per_day >= _FEW and len(times) >= per_day:  # the same times each day
        return _daily(times)
    days: dict[int, str] = {}
    clocks: dict[int, str] = {}
    out = []
    for t in times:
        day, second = divmod(t, _DAY)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * _DAY))
        clock = clocks.get(second)
        if clock is None:
            clock = clocks[second] = time.strftime("%H:%M:%SZ", time.gmtime(second))
        out.append(prefix + clock)
    return out


def _daily(times: range) -> list[str]:
    """_whole_seconds() of times whose step divides a day: the times of day one day holds,
    printed once, after each day's prefix (a loop per day, not per time: PT1H's 2,401 edges
    were a tenth of the records' Python)."""
    step = times.step
    first_day, offset = divmod(times[0], _DAY)
    clocks = [time.strftime("%H:%M:%SZ", time.gmtime(s)) for s in range(offset % step, _DAY, step)]
    out: list[str] = []
    left = len(times)
    k = offset // step  # the first time's place among the day's
    day = first_day
    while left:
        prefix = time.strftime("%Y-%m-%dT", time.gmtime(day * _DAY))
        part = clocks[k : k + left]
        out += [prefix + c for c in part]
        left -= len(part)
        k = 0
        day += 1
    return out


def spans(
    rows: Sequence[Sequence[Any]], aggr: Aggregation, start: float, end: float
) -> list[tuple[str, str]]:
    """Each period's [startAt, endAt), shared by every method (rows start with the period's
    number)."""
    stamp = stamper()
    if aggr.whole:
        return [(stamp(start), stamp(end))] * len(rows)
    if aggr.months:
        return [(stamp(aggr.edge(start, r[0])), stamp(aggr.edge(start, r[0] + 1))) for r in rows]
    seconds = aggr.seconds
    if start.is_integer() and seconds.is_integer() and rows:
        first, step, k0 = int(start), int(seconds), rows[0][0]
        count = rows[-1][0] - k0 + 2  # edges from the first period's start to the last's end
        if count <= 2 * len(rows):  # whole seconds, the double arithmetic exact: each edge once
            times = range(first + k0 * step, first + (k0 + count) * step, step)
            texts = _whole_seconds(times) or [stamp(t) for t in times]
            return [(texts[r[0] - k0], texts[r[0] - k0 + 1]) for r in rows]
    los = [start + r[0] * seconds for r in rows]
    return [(stamp(lo), stamp(lo + seconds)) for lo in los]


def records(
    rows: Sequence[Sequence[Any]],
    columns: dict[str, tuple[int, int | None]],
    aggr: Aggregation,
    start: float,
    end: float,
) -> Doc:
    """{method: [[value, startAt, endAt], ...]}; `columns` gives each method's column in the
    rows and that of its min/max of what is not a number (None when not read); avg's are those
    of the sum and the count of the numbers."""
    periods = spans(rows, aggr, start, end)
    series: dict[str, list[list[Any]]] = {}
    for m in aggr.methods:
        i, j = columns[m]
        if m == "avg":  # a double over an integer, as SQLite divides them: the same double
            assert j is not None  # the count's column
            series[m] = [
                [r[i] / r[j] if r[j] else None, a, b]
                for r, (a, b) in zip(rows, periods, strict=True)
            ]
        elif j is not None:  # a period's numbers first, as a numbers-only series has them
            series[m] = [
                [whole(r[i]) if r[i] is not None else functions.ordered_value(r[j]), a, b]
                for r, (a, b) in zip(rows, periods, strict=True)
            ]
        elif m in WHOLE_METHODS:  # whole() inline: 7,200 calls were a tenth of the records
            exact = _EXACT
            series[m] = [
                [
                    int(v) if type(v) is float and v.is_integer() and -exact < v < exact else v,
                    a,
                    b,
                ]
                for v, (a, b) in zip([r[i] for r in rows], periods, strict=True)
            ]
        else:
            series[m] = [[r[i], a, b] for r, (a, b) in zip(rows, periods, strict=True)]
    return series

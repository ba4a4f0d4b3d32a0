"""Aggregated periods built faster (decision 069) give what they gave before: edges printed
as epoch_iso prints them, whole values as integers, avg to the bit of SQLite's avg(), and
the same periods whether a series is read in one string or period by period."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cityhub.ngsild.timeutil import END_OF_TIME, epoch_iso
from cityhub.store.base import Aggregation
from cityhub.store.sqlite import period_records, temporal
from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:T:records"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "t",
    [
        0.0,
        _epoch("2024-01-01T00:00:00"),
        _epoch("2024-02-29T23:59:59"),
        _epoch("1969-12-31T23:00:00"),  # before the epoch: a negative day
        _epoch("1000-01-01T00:00:00"),  # the first year strftime pads
        _epoch("0999-12-31T23:59:59"),  # before it: epoch_iso's own way
        _epoch("2024-01-01T00:00:00") + 0.5,
        _epoch("9999-12-31T23:59:59"),
        END_OF_TIME,
        END_OF_TIME + 1e6,
    ],
)
def test_an_edge_is_printed_as_epoch_iso_prints_it(t: float) -> None:
    stamp = period_records.stamper()
    assert stamp(t) == epoch_iso(t)
    assert stamp(t) == epoch_iso(t)  # printed once, then remembered


@pytest.mark.parametrize(
    "start",
    [
        _epoch("2024-02-27T00:00:00") + 7,  # whole seconds: each edge printed once
        _epoch("2024-02-27T00:00:00") + 0.25,  # a fraction: printed edge by edge
        _epoch("0999-12-30T00:00:00"),  # years strftime does not pad: epoch_iso's own way
        END_OF_TIME - 5 * 3600,  # periods past the end of time
    ],
)
@pytest.mark.parametrize("every", [1, 3])  # every period, or every third (sparse)
def test_hourly_edges_are_epoch_isos(start: float, every: int) -> None:
    aggr = Aggregation(methods=("sum",), seconds=3600.0)
    rows = [[i, 1] for i in range(0, 24 * 4, every)]
    spans = period_records.spans(rows, aggr, start, 0.0)
    assert spans == [
        (epoch_iso(start + i * 3600.0), epoch_iso(start + i * 3600.0 + 3600.0)) for i, _ in rows
    ]


@pytest.mark.parametrize("step", [1, 60, 900, 3600, 5400, 7200, 43200, 86400, 172800, 7])
@pytest.mark.parametrize("offset", [0, 7, 3599, 86399])
def test_whole_second_edges_are_epoch_isos(step: int, offset: int) -> None:
    """Edges whose step divides a day are printed a day at a time (PT1H over 100 days): the
    same texts as epoch_iso, from any time of day, over days, months and a leap day."""
    start = int(_epoch("2024-02-27T00:00:00")) + offset
    times = range(start, start + 3 * 86400 + 2 * step, step)
    if len(times) > 20_000:
        times = range(start, start + 20_000 * step, step)
    assert period_records._whole_seconds(times) == [epoch_iso(t) for t in times]


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (5.0, 5),
        (-0.0, 0),
        (2.5, 2.5),
        (2.0**53 - 1, 2**53 - 1),
        (2.0**53, 2.0**53),  # past exactness: the stored double
        (-(2.0**53), -(2.0**53)),
        (7, 7),
        (None, None),
    ],
)
def test_whole_values_become_integers_below_two_to_the_53(value: Any, want: Any) -> None:
    aggr = Aggregation(methods=("sum", "avg"), seconds=60.0)
    count = 0 if value is None else 1
    got = period_records.records(
        [[0, value, value, count]], {"sum": (1, None), "avg": (2, 3)}, aggr, 0.0, 60.0
    )
    assert got["sum"][0][0] == want and type(got["sum"][0][0]) is type(want)
    avg = got["avg"][0][0]  # avg is never made whole: sum over count, a double
    assert avg is None if value is None else (avg == value and type(avg) is float)
    assert period_records.whole(value) == want and type(period_records.whole(value)) is type(want)


def test_avg_is_sum_over_count_to_the_bit() -> None:
    """avg is read as sum and count (one aggregate step less per instance, one number less
    per period) and divided in Python: the same double as SQLite's avg(), over values of every
    size, with NULLs and in groups without a number."""
    rnd = random.Random(7)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE history (g INTEGER, num REAL)")
    choices: list[Any] = [None, 0.1, 5, 1e308, -1e308, 1e-300, 2.0**53 + 1]
    rows = [
        (rnd.randrange(400), rnd.choice([*choices, rnd.uniform(-1e9, 1e9), rnd.random()]))
        for _ in range(40_000)
    ]
    conn.executemany("INSERT INTO history VALUES (?, ?)", rows)
    conn.execute("INSERT INTO history VALUES (400, NULL)")
    total, count = temporal._METHOD_SQL["avg"]
    got = conn.execute(
        f"SELECT g, avg(h.num), {total}, {count} FROM history h GROUP BY g"
    ).fetchall()
    assert len(got) == 401
    aggr = Aggregation(methods=("avg",), seconds=60.0)
    have = period_records.records(
        [[g, s, n] for g, _, s, n in got], {"avg": (1, 2)}, aggr, 0.0, 60.0
    )["avg"]
    for (_, want, _, _), (value, _, _) in zip(got, have, strict=True):
        assert want == value or (want != want and value != value), (want, value)
        assert type(want) is type(value)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _aggregate(hub: SyncHub, **params: str) -> Any:
    query = {
        "options": "aggregatedValues",
        "aggrMethods": "avg,max,min,sum,totalCount",
        "timerel": "between",
        "timeAt": "2020-01-01T00:00:00Z",
        "endTimeAt": "2040-01-01T00:00:00Z",
        **params,
    }
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=query)
    assert resp.status_code in (200, 206), resp.text
    return resp.json()["p"]


@pytest.mark.parametrize("duration", ["PT1M", "P1M"])
def test_a_series_read_in_one_string_gives_the_periods_read_one_by_one(
    hub: SyncHub, duration: str
) -> None:
    """Up to a page of periods a series is read in one string; past it, period by period
    (to stop at the page): both give the same periods, in order, empty ones left out."""
    rnd = random.Random(3)
    month = duration == "P1M"
    insts = [
        {
            "type": "Property",
            "value": rnd.choice([rnd.uniform(-100, 100), rnd.randrange(10), 0.1 + 0.2]),
            "observedAt": f"{2020 + k // 12}-{k % 12 + 1:02d}-{1 + j:02d}T00:00:00Z"
            if month
            else f"2020-01-01T{k // 60:02d}:{k % 60:02d}:{10 * j + k % 7:02d}Z",
        }
        for k in range(200)
        if k % 5  # every fifth period empty
        for j in range(1 + k % 3)
    ]
    body = {"id": EID, "type": "T", "p": insts}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201
    service = hub.app.state.temporal
    whole = _aggregate(hub, aggrPeriodDuration=duration)
    assert len(whole["sum"]) == 160, len(whole["sum"])
    service.period_limit = 100  # fewer than the 200 periods: read one by one, cut at 100
    paged = _aggregate(hub, aggrPeriodDuration=duration)
    for method in ("avg", "max", "min", "sum", "totalCount"):
        assert paged[method] == whole[method][:100], method
    starts = [lo for _, lo, _ in whole["sum"]]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)

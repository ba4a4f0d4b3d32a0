"""aggregatedValues over calendar periods: aggrPeriodDuration with years or months follows the
calendar (P1M from 1 January ends on 1 February, then 1 March), anchored at the start, so a
period that starts on the 31st ends on the last day of a shorter month without drifting.

The rule (store/base.py, Aggregation): period k starts at the start moved by k * months (same
day and time of the month, clamped to the month's last day) plus k * the duration's exact part.
Both of the store's ways to aggregate are checked: one range read per period, and one GROUP BY
(used for times without an index, or for very many periods).
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cityhub.store.sqlite.temporal as sqlite_temporal
from conftest import BASE, SyncHub
from temporal_support import examples

# (months, exact seconds) of each duration the test asks for
DURATIONS = {
    "P1M": (1, 0),
    "P2M": (2, 0),
    "P3M": (3, 0),
    "P1Y": (12, 0),
    "P1Y2M": (14, 0),
    "P1MT12H": (1, 12 * 3600),
    "P1M1W": (1, 7 * 86400),
}
# starts on days that shorter months lack, one in a leap year
STARTS = [
    datetime(2024, 1, 31, tzinfo=UTC),
    datetime(2023, 3, 31, 12, 30, tzinfo=UTC),
    datetime(2025, 8, 29, 6, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
]
METHODS = ("totalCount", "sum", "min", "max")
ids = itertools.count()


def iso(t: datetime) -> str:
    return t.isoformat()[:19] + "Z"  # strftime would not pad a year before 1000


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def edge(start: datetime, k: int, months: int, seconds: int) -> datetime:
    """Where period k begins, as the rule states it."""
    month0 = start.month - 1 + k * months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day) + timedelta(seconds=k * seconds)


def expected(
    points: list[tuple[datetime, int]], start: datetime, months: int, seconds: int
) -> list[tuple[datetime, datetime, list[int]]]:
    """(period start, period end, values) of each non-empty period, walking the edges."""
    buckets: dict[int, list[int]] = {}
    for t, v in sorted(points):
        k = 0
        while edge(start, k + 1, months, seconds) <= t:
            k += 1
        buckets.setdefault(k, []).append(v)
    return [
        (edge(start, k, months, seconds), edge(start, k + 1, months, seconds), vs)
        for k, vs in sorted(buckets.items())
    ]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path_factory.mktemp("calendar") / "hub.db")
    yield h
    h.close()


def stored(hub: SyncHub, points: list[tuple[datetime, int]]) -> str:
    """A new temporal entity with one `power` instance per (time, value); its id, quoted."""
    eid = f"urn:ngsi-ld:Meter:cal-{next(ids)}"
    body = {
        "id": eid,
        "type": "Meter",
        "power": [{"type": "Property", "value": v, "observedAt": iso(t)} for t, v in points],
    }
    r = hub.request("POST", f"{BASE}/temporal/entities", json=body)
    assert r.status_code == 201, r.text
    return quote(eid, safe=":")


def aggregated(hub: SyncHub, eid: str, **params: str) -> Any:
    r = hub.request(
        "GET",
        f"{BASE}/temporal/entities/{eid}",
        params={"format": "aggregatedValues", "aggrMethods": ",".join(METHODS), **params},
    )
    assert r.status_code == 200, r.text
    return r.json().get("power")


hours = st.integers(0, 24 * 800)


@pytest.mark.parametrize("ranged", [True, False], ids=["range-reads", "group-by"])
@examples(120)
@given(
    offsets=st.lists(st.tuples(hours, st.integers(-50, 50)), min_size=1, max_size=30),
    start=st.sampled_from(STARTS),
    duration=st.sampled_from(list(DURATIONS)),
    after=st.none() | st.integers(-24 * 40, 24 * 400),
)
def test_calendar_periods_follow_the_rule(
    hub: SyncHub,
    ranged: bool,
    offsets: list[tuple[int, int]],
    start: datetime,
    duration: str,
    after: int | None,
) -> None:
    """Each period's bounds and aggregates match the rule, on either path."""
    points = list({start + timedelta(hours=h): v for h, v in offsets}.items())
    eid = stored(hub, points)
    months, seconds = DURATIONS[duration]
    params = {"aggrPeriodDuration": duration}
    anchor = min(t for t, _ in points)
    if after is not None:  # periods start at timeAt, and only instances from then count
        anchor = start + timedelta(hours=after)
        params.update(timerel="after", timeAt=iso(anchor))
        points = [(t, v) for t, v in points if t >= anchor]
    limit = sqlite_temporal._MAX_RANGED_PERIODS if ranged else 0
    few = 10**9 if ranged else 0  # range reads even when periods outnumber the instances
    with (
        mock.patch.object(sqlite_temporal, "_MAX_RANGED_PERIODS", limit),
        mock.patch.object(sqlite_temporal, "_FEW_PERIODS", few),
    ):
        got = aggregated(hub, eid, **params)
    want = expected(points, anchor, months, seconds)
    if not want:
        assert got is None, got
        return
    assert got is not None
    bounds = [(when(lo), when(hi)) for _, lo, hi in got["totalCount"]]
    assert bounds == [(lo, hi) for lo, hi, _ in want]
    assert [v for v, _, _ in got["totalCount"]] == [len(vs) for _, _, vs in want]
    assert [v for v, _, _ in got["sum"]] == [sum(vs) for _, _, vs in want]
    assert [v for v, _, _ in got["min"]] == [min(vs) for _, _, vs in want]
    assert [v for v, _, _ in got["max"]] == [max(vs) for _, _, vs in want]


def test_monthly_totals_of_a_quarter(hub: SyncHub) -> None:
    """P1M from 1 January: January, February and March, not 30-day slices."""
    days = ["01-15", "01-20", "01-31", "02-03", "02-20", "03-05", "03-31"]
    eid = stored(hub, [(datetime.fromisoformat(f"2026-{d}T00:00:00+00:00"), 1) for d in days])
    got = aggregated(
        hub, eid, aggrPeriodDuration="P1M", timerel="after", timeAt="2026-01-01T00:00:00Z"
    )
    assert got["totalCount"] == [
        [3, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"],
        [2, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"],
        [2, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"],
    ]


def test_periods_from_the_31st_keep_to_month_ends(hub: SyncHub) -> None:
    """Anchored at 31 January: 29 February (a leap year), 31 March, 30 April; never the 29th of
    every month after February."""
    times = ["2024-02-01", "2024-03-15", "2024-04-10", "2024-05-01"]
    eid = stored(hub, [(datetime.fromisoformat(f"{t}T00:00:00+00:00"), 1) for t in times])
    got = aggregated(
        hub, eid, aggrPeriodDuration="P1M", timerel="after", timeAt="2024-01-31T00:00:00Z"
    )
    assert [(lo, hi) for _, lo, hi in got["totalCount"]] == [
        ("2024-01-31T00:00:00Z", "2024-02-29T00:00:00Z"),
        ("2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z"),
        ("2024-03-31T00:00:00Z", "2024-04-30T00:00:00Z"),
        ("2024-04-30T00:00:00Z", "2024-05-31T00:00:00Z"),
    ]


def test_a_year_is_a_calendar_year(hub: SyncHub) -> None:
    """P1Y over a leap year ends on the same date a year later, not 365 days on."""
    times = ["2024-01-01", "2024-12-31", "2025-01-01"]
    eid = stored(hub, [(datetime.fromisoformat(f"{t}T00:00:00+00:00"), 1) for t in times])
    got = aggregated(hub, eid, aggrPeriodDuration="P1Y")
    assert got["totalCount"] == [
        [2, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"],
        [1, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"],
    ]


@pytest.mark.parametrize("duration", ["P0.5M", "P1.5Y", "P1Y0.5M"])
def test_fractional_months_are_refused(hub: SyncHub, duration: str) -> None:
    """A fraction of a month has no calendar meaning: 400, with what to give instead."""
    eid = stored(hub, [(STARTS[0], 1)])
    r = hub.request(
        "GET",
        f"{BASE}/temporal/entities/{eid}",
        params={"format": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": duration},
    )
    assert r.status_code == 400, r.text
    assert "whole numbers" in r.json()["detail"]


def test_a_zero_calendar_duration_is_the_whole_range(hub: SyncHub) -> None:
    """P0M, like PT0S, asks for one period over the whole range."""
    eid = stored(hub, [(STARTS[0], 1), (STARTS[0] + timedelta(days=400), 2)])
    got = aggregated(hub, eid, aggrPeriodDuration="P0M")
    [[total, lo, hi]] = got["sum"]
    assert (total, lo) == (3, iso(STARTS[0]))
    assert when(hi) == STARTS[0] + timedelta(days=400, microseconds=1), "just past the last one"


@pytest.mark.parametrize("duration", ["P1Y", "P1M", "PT1S", "P5000Y", "P1D"])
def test_periods_at_the_ends_of_time(hub: SyncHub, duration: str) -> None:
    """Instances in year 1 and in the last second of year 9999 are both counted, and every
    period bound is a DateTime with a four-digit year (one open to the end shows the last)."""
    first = datetime(1, 1, 1, tzinfo=UTC)
    last = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    eid = stored(hub, [(first, 1), (last, 2)])
    got = aggregated(hub, eid, aggrPeriodDuration=duration)
    assert sum(n for n, _, _ in got["totalCount"]) == 2, got
    assert sum(v for v, _, _ in got["sum"]) == 3, got
    for _, lo, hi in got["totalCount"]:
        for stamp in (lo, hi):
            assert len(stamp.split("-")[0]) == 4, stamp
            assert when(stamp) >= first
    assert got["totalCount"][0][1] == "0001-01-01T00:00:00Z"

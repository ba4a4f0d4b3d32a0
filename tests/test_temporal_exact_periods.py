"""Aggregated periods give the doubles SQLite computed, as the whole-range read does: packed
as 15-digit JSON, a max of 0.30000000000000004 came back as 0.3."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:T:exact"
# doubles that 15 digits do not give back, and some past 1e100, which SQLite's printf does
# not print exactly even with 17 digits
AWKWARD = [
    0.1,
    0.2,
    0.30000000000000004,
    2.0 / 3.0,
    1e-300 / 3,
    1.4523142177899403e308,
    -1.1545580616824966e232,
    1.0749032613197219e307,
    123456789.12345679,
]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _aggregate(hub: SyncHub, methods: str, lo: str, hi: str, **params: str) -> Any:
    query = {
        "options": "aggregatedValues",
        "aggrMethods": methods,
        "timerel": "between",
        "timeAt": lo,
        "endTimeAt": hi,
        **params,
    }
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=query)
    assert resp.status_code in (200, 206), resp.text
    return resp.json()["p"]


def _load(hub: SyncHub, values: list[Any], minutes: int) -> None:
    insts = [
        {
            "type": "Property",
            "value": v,
            "observedAt": f"2024-01-{1 + k * minutes // 1440:02d}T"
            f"{k * minutes // 60 % 24:02d}:{k * minutes % 60:02d}:00Z",
        }
        for k, v in enumerate(values)
    ]
    body = {"id": EID, "type": "T", "p": insts}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201


def _same(a: Any, b: Any) -> bool:
    """The same JSON value, NaN-free doubles compared to the bit (0.0 is not -0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b and type(a) is type(b))


@pytest.mark.parametrize(
    ("methods", "extra"),
    [
        ("avg,max,min,sum", []),  # numbers only: the trusting read
        ("avg,max,min,sum,sumsq,stddev,totalCount", []),  # counts: another read
        ("avg,max,min,sum", ["a string", "z,1]"]),  # not only numbers: nulls and strings
    ],
)
@pytest.mark.parametrize("duration", ["PT1H", "P1D"])
def test_each_period_is_the_whole_range_read_of_its_time(
    hub: SyncHub, methods: str, extra: list[Any], duration: str
) -> None:
    """Every value of every period is, to the bit, what the same request gives for that
    period's time alone (one period over the whole range is read as a row)."""
    rnd = random.Random(7)
    values: list[Any] = [rnd.choice(AWKWARD) * rnd.choice([1, 1, -1]) for _ in range(300)]
    values += [rnd.uniform(-1e3, 1e3) for _ in range(300)] + extra
    rnd.shuffle(values)
    _load(hub, values, 10)  # 10-minute readings: 100 hours, 4+ days
    periods = _aggregate(
        hub, methods, "2024-01-01T00:00:00Z", "2024-01-06T00:00:00Z", aggrPeriodDuration=duration
    )
    names = methods.split(",")
    assert len(periods["max"]) >= 5
    checked = 0
    for k, (_, lo, hi) in enumerate(periods["max"]):
        alone = _aggregate(hub, methods, lo, hi)
        for m in names:
            want, have = alone[m][0][0], periods[m][k][0]
            assert _same(want, have), (m, lo, want, have)
            checked += 1
    assert checked == len(names) * len(periods["max"])


def test_a_max_of_an_awkward_double_is_that_double(hub: SyncHub) -> None:
    """The case as a user meets it: 0.1 and 0.30000000000000004 in one hour."""
    _load(hub, [0.1, 0.30000000000000004, 1e308, 1.4523142177899403e308], 30)
    got = _aggregate(
        hub, "max,min", "2024-01-01T00:00:00Z", "2024-01-01T02:00:00Z", aggrPeriodDuration="PT1H"
    )
    assert [v for v, _, _ in got["max"]] == [0.30000000000000004, 1.4523142177899403e308]
    assert [v for v, _, _ in got["min"]] == [0.1, 1e308]


def test_periods_read_one_by_one_are_exact_too(hub: SyncHub) -> None:
    """Past a page of periods each is read on its own (to stop at the page): the same
    doubles."""
    rnd = random.Random(11)
    _load(hub, [rnd.choice(AWKWARD) for _ in range(600)], 10)
    whole = _aggregate(
        hub, "max,sum", "2024-01-01T00:00:00Z", "2024-01-06T00:00:00Z", aggrPeriodDuration="PT1H"
    )
    hub.app.state.temporal.period_limit = 40
    paged = _aggregate(
        hub, "max,sum", "2024-01-01T00:00:00Z", "2024-01-06T00:00:00Z", aggrPeriodDuration="PT1H"
    )
    assert len(paged["max"]) == 40
    for m in ("max", "sum"):
        assert all(_same(a[0], b[0]) for a, b in zip(paged[m], whole[m][:40], strict=True))
        for k, (v, lo, hi) in enumerate(paged[m][:8]):
            alone = _aggregate(hub, m, lo, hi)
            assert _same(alone[m][0][0], v), (m, k)


@pytest.mark.parametrize("duration", ["P1M", "P1W"])
def test_a_large_double_in_calendar_and_week_periods(hub: SyncHub, duration: str) -> None:
    """Periods whose edges come from Python (months) or SQL (weeks) read a period holding a
    double past 1e90 again as a row, by the same edges."""
    _load(hub, [0.1, 0.30000000000000004, 1.4523142177899403e308, -1.1545580616824966e232], 30)
    got = _aggregate(
        hub,
        "max,min,sum,avg",
        "2024-01-01T00:00:00Z",
        "2024-03-01T00:00:00Z",
        aggrPeriodDuration=duration,
    )
    assert [v for v, _, _ in got["max"]] == [1.4523142177899403e308]
    assert [v for v, _, _ in got["min"]] == [-1.1545580616824966e232]
    alone = _aggregate(hub, "sum,avg", got["max"][0][1], got["max"][0][2])
    assert _same(alone["sum"][0][0], got["sum"][0][0])
    assert _same(alone["avg"][0][0], got["avg"][0][0])

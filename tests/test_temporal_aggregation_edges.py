"""aggregatedValues at the edges: durations past the time axis, values past a double's
range or exactness, periods that must not depend on what else is asked, and lastN (a
prober's findings, 2026-12-07)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:T:edge"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _create(hub: SyncHub, **attrs: list[dict[str, Any]]) -> None:
    body = {"id": EID, "type": "T", **attrs}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201


def _aggregate(hub: SyncHub, methods: str, status: int = 200, **params: str) -> Any:
    params = {"options": "aggregatedValues", "aggrMethods": methods, **params}
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code == status, resp.text
    return resp.json()


def _at(minute: int, second: int = 0) -> str:
    return f"2024-01-01T00:{minute:02d}:{second:02d}Z"


@pytest.mark.parametrize(
    "duration", ["PT" + "9" * 400 + "S", "P" + "9" * 20 + "Y", "P" + "9" * 400 + "Y", "P20000Y"]
)
def test_a_period_longer_than_the_time_axis_is_a_400(hub: SyncHub, duration: str) -> None:
    """A run of digits parsed to inf: the period edges became NaN and the attribute silently
    vanished from a 200; a huge whole number of years was taken as it came."""
    _create(hub, p=[{"type": "Property", "value": 1, "observedAt": _at(0)}])
    body = _aggregate(hub, "totalCount", 400, aggrPeriodDuration=duration)
    assert "aggrPeriodDuration" in body["detail"] and len(body["detail"]) < 300, body


@pytest.mark.parametrize(
    "values", [[1e308, 1e308, -1e308], [1e200, -1e200], [1e308, -1e308, 5.0, 1e-300]]
)
def test_stddev_of_values_near_a_doubles_range(hub: SyncHub, values: list[float]) -> None:
    """Welford's squared distance overflowed: stddev was 0.0 or null."""
    _create(
        hub,
        p=[{"type": "Property", "value": v, "observedAt": _at(0, i)} for i, v in enumerate(values)],
    )
    got = _aggregate(hub, "stddev")["p"]["stddev"][0][0]
    assert got == pytest.approx(statistics.pstdev(values), rel=1e-9), got


def test_whole_results_are_integers(hub: SyncHub) -> None:
    """max of 5 was 5.0, sum of booleans 1.0: whole results below 2**53 are JSON integers
    (`num` is a REAL column, so values past 2**53 stay rounded: not fixed here)."""
    _create(
        hub,
        small=[
            {"type": "Property", "value": v, "observedAt": _at(0, i)} for i, v in enumerate([5, 2])
        ],
        flag=[{"type": "Property", "value": True, "observedAt": _at(0)}],
        half=[{"type": "Property", "value": 2.5, "observedAt": _at(0)}],
    )
    got = _aggregate(hub, "max,min,sum,sumsq,avg")
    small = got["small"]
    assert [small[m][0][0] for m in ("max", "min", "sum", "sumsq")] == [5, 2, 7, 29]
    assert all(type(small[m][0][0]) is int for m in ("max", "min", "sum", "sumsq")), small
    assert small["avg"][0][0] == 3.5
    assert got["flag"]["sum"][0][0] == 1 and type(got["flag"]["sum"][0][0]) is int
    assert got["half"]["max"][0][0] == 2.5 and got["half"]["sumsq"][0][0] == 6.25


def test_an_attributes_periods_do_not_depend_on_the_others_asked_for(hub: SyncHub) -> None:
    """Periods started at the first instance of the attributes asked for: a's PT1M sums were
    [3] with attrs=a and [1, 2] with attrs=a,b."""
    _create(
        hub,
        a=[
            {"type": "Property", "value": 1, "observedAt": _at(0, 30)},
            {"type": "Property", "value": 2, "observedAt": _at(1, 10)},
        ],
        b=[{"type": "Property", "value": 5, "observedAt": _at(0)}],
    )
    alone = _aggregate(hub, "sum", aggrPeriodDuration="PT1M", attrs="a")["a"]["sum"]
    both = _aggregate(hub, "sum", aggrPeriodDuration="PT1M", attrs="a,b")["a"]["sum"]
    every = _aggregate(hub, "sum", aggrPeriodDuration="PT1M")["a"]["sum"]
    assert alone == both == every == [[1, _at(0), _at(1)], [2, _at(1), _at(2)]], alone


@pytest.mark.parametrize("duration", [None, "PT1M", "PT1H", "P1D"])
def test_a_sum_past_a_doubles_range_is_null_in_every_read(
    hub: SyncHub, duration: str | None
) -> None:
    """SQLite printed the overflowed sum of a period as a bare Inf: the hour-period read (one
    string of periods) answered 500; the whole-range read showed null."""
    _create(
        hub,
        p=[{"type": "Property", "value": 1e308, "observedAt": _at(0, i)} for i in range(2)],
        q=[{"type": "Property", "value": -1e308, "observedAt": _at(0, i)} for i in range(2)],
    )
    period = {"aggrPeriodDuration": duration} if duration else {}
    got = _aggregate(hub, "sum,max", **period)
    sums = [s[0] for s in got["p"]["sum"]] + [s[0] for s in got["q"]["sum"]]
    assert all(s is None for s in sums), got
    assert {m[0] for m in got["p"]["max"]} == {1e308} and {m[0] for m in got["q"]["max"]} == {
        -1e308
    }

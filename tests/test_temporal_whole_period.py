"""One aggregation period over the whole range (no aggrPeriodDuration, PT0S, P0D) is, like
every other period and like `between`, [startAt, endAt): it holds every instance it counts,
so where the query leaves the end open it ends just past the last one (decision 031)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import BASE, get_temporal

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Meter:whole1"
TIMES = ["2024-01-01T00:00:00Z", "2024-01-01T06:00:00Z", "2024-01-02T00:00:00Z"]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _sum(client: httpx.AsyncClient, **params: str) -> list[Any]:
    body = await get_temporal(
        client, EID, options="aggregatedValues", aggrMethods="sum,totalCount", **params
    )
    return body["p"]["sum"]


@pytest.fixture
async def history(client: httpx.AsyncClient) -> None:
    insts = [{"type": "Property", "value": n, "observedAt": t} for n, t in enumerate(TIMES, 1)]
    resp = await client.post(T, json={"id": EID, "type": "Meter", "p": insts})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    "params",
    [{}, {"aggrPeriodDuration": "PT0S"}, {"aggrPeriodDuration": "P0D"}],
    ids=["absent", "PT0S", "P0D"],
)
@pytest.mark.parametrize(
    "window",
    [
        {},
        {"timerel": "after", "timeAt": TIMES[0]},
        {"timerel": "before", "timeAt": "2025-01-01T00:00:00Z"},
    ],
    ids=["no-timerel", "after", "before"],
)
async def test_the_whole_period_holds_what_it_counts(
    client: httpx.AsyncClient, history: None, params: dict[str, str], window: dict[str, str]
) -> None:
    """The period ended at the last instance and counted it, while every other period, and
    `between`, leaves out the instant it ends at."""
    [[total, start, end]] = await _sum(client, **params, **window)
    assert total == 6
    times = [_when(t) for t in TIMES]
    assert _when(start) <= times[0] and all(t < _when(end) for t in times), (start, end)
    if window.get("timerel") == "before":
        assert end == "2025-01-01T00:00:00Z", "the query's own end"
    else:
        assert _when(end) == times[-1] + timedelta(microseconds=1), "just past the last one"


async def test_between_ends_the_whole_period_at_its_end(
    client: httpx.AsyncClient, history: None
) -> None:
    """between [timeAt, endTimeAt) is the period; an instance at endTimeAt is not in it."""
    got = await _sum(client, timerel="between", timeAt=TIMES[0], endTimeAt=TIMES[2])
    assert got == [[3, TIMES[0], TIMES[2]]]


async def test_asking_again_from_the_period_end_finds_nothing_counted(
    client: httpx.AsyncClient, history: None
) -> None:
    """A client that goes on from the period's end (`after`, inclusive) counts nothing twice."""
    [[_, _, end]] = await _sum(client)
    params = {"options": "temporalValues", "timerel": "after", "timeAt": end}
    resp = await client.get(f"{T}/{EID}", params=params)
    assert resp.status_code == 200, resp.text
    assert "p" not in resp.json(), resp.text

"""lastN with aggregatedValues aggregates each series' last N readings (5.2.21: "only the last
n instances, per attribute, per entity"); it was accepted, checked and then ignored."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import BASE, get_temporal

EID = "urn:ngsi-ld:Q:ln1"
DS = "urn:ngsi-ld:Dataset:b"


def reading(value: float, day: int, **extra: Any) -> dict[str, Any]:
    at = f"2024-01-0{day}T12:00:00Z"
    return {"type": "Property", "value": value, "observedAt": at, **extra}


async def _write(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Q",
        "temp": [reading(10, 1), reading(11, 2), reading(12, 3), reading(5, 1, datasetId=DS)],
    }
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201


async def _aggr(client: httpx.AsyncClient, **params: str) -> Any:
    base = {"attrs": "temp", "format": "aggregatedValues", "aggrMethods": "max,totalCount"}
    return (await get_temporal(client, EID, **base, **params))["temp"]


async def test_last_n_keeps_the_last_periods_readings(client: httpx.AsyncClient) -> None:
    """max per day of the last reading: only the third day's period (it gave 10, 11, 12)."""
    await _write(client)
    default, named = await _aggr(client, aggrPeriodDuration="P1D", lastN="1")
    assert [p[0] for p in default["max"]] == [12]
    assert [p[0] for p in named["max"]] == [5]  # each datasetId is its own series


async def test_last_n_over_the_whole_range(client: httpx.AsyncClient) -> None:
    await _write(client)
    default = await _aggr(client, lastN="2", datasetId="@none")
    assert default["totalCount"][0][0] == 2
    assert default["max"][0][0] == 12
    assert default["max"][0][1] == "2024-01-02T12:00:00Z"  # the range starts at its readings


async def test_last_n_within_a_window(client: httpx.AsyncClient) -> None:
    """Under the time interval: the last reading before the 3rd is the 2nd day's."""
    await _write(client)
    default, _ = await _aggr(client, lastN="1", timerel="before", timeAt="2024-01-03T00:00:00Z")
    assert default["totalCount"][0][0] == 1
    assert default["max"][0][0] == 11

"""aggregatedValues over values that are not numbers (a probe's finding 2.9, 2026-12-07;
decision 054): a Boolean series' min and max came back as 0 and 1, and a DateTime or string
series' as null. min and max are now a value the series held: false/true, the earliest and
latest DateTime (Date, Time) by its instant, in the form it was written, the first and last
string; sum, avg, stddev and sumsq count a Boolean as 1 or 0 and skip the others."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE

EID = "urn:ngsi-ld:Vehicle:v1"
DAYS = [f"2024-12-0{d}T12:00:00Z" for d in range(1, 5)]


def dt(text: str, kind: str = "DateTime") -> dict[str, str]:
    return {"@type": kind, "@value": text}


SERIES: dict[str, list[Any]] = {
    "moving": [True, False, True, True],
    "serviced": [  # by instant: +02:00 makes the first the earliest, the second the latest
        dt("2024-01-01T01:00:00+02:00"),
        dt("2024-01-01T00:00:00.5Z"),
        dt("2023-12-31T23:30:00Z"),
        dt("2024-01-01T00:00:00Z"),
    ],
    "opened": [dt("2024-03-01", "Date"), dt("2023-11-30", "Date"), dt("2024-02-29", "Date")],
    "label": ["b", "a", "Z", "ä"],
    "config": [{"a": 1}, [1, 2], {"b": 2}],
}


async def aggregated(client: httpx.AsyncClient, methods: str, **params: str) -> dict[str, Any]:
    body = {"id": EID, "type": "Vehicle"}
    for name, values in SERIES.items():
        body[name] = [
            {"type": "Property", "value": v, "observedAt": DAYS[i]} for i, v in enumerate(values)
        ]
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    r = await client.get(
        f"{BASE}/temporal/entities/{EID}",
        params={"options": "aggregatedValues", "aggrMethods": methods, **params},
    )
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


def values(got: dict[str, Any], attr: str, method: str) -> list[Any]:
    return [rec[0] for rec in got[attr][method]]


# min,max alone on observedAt: a series is first read as numbers only (decision 049); with a
# count, lastN or another time it is read once, with the types found
READS = [
    {},
    {"aggrMethods": "min,max,totalCount"},
    {"lastN": "10"},
    {"timeproperty": "createdAt"},
    {"timeproperty": "modifiedAt"},
]


@pytest.mark.parametrize("extra", READS)
async def test_min_and_max_are_values_the_series_held(
    client: httpx.AsyncClient, extra: dict[str, str]
) -> None:
    got = await aggregated(client, extra.pop("aggrMethods", "min,max"), **extra)
    assert values(got, "moving", "min") == [False] and values(got, "moving", "max") == [True]
    assert values(got, "serviced", "min") == [dt("2024-01-01T01:00:00+02:00")]
    assert values(got, "serviced", "max") == [dt("2024-01-01T00:00:00.5Z")]
    assert values(got, "opened", "min") == [dt("2023-11-30", "Date")]
    assert values(got, "opened", "max") == [dt("2024-03-01", "Date")]
    assert values(got, "label", "min") == ["Z"] and values(got, "label", "max") == ["ä"]
    assert values(got, "config", "min") == [None] and values(got, "config", "max") == [None]


async def test_per_period_and_the_other_methods(client: httpx.AsyncClient) -> None:
    got = await aggregated(
        client,
        "min,max,sum,avg,totalCount",
        aggrPeriodDuration="P2D",
        timerel="after",
        timeAt="2024-12-01T00:00:00Z",
    )
    assert values(got, "moving", "min") == [False, True]  # days 1-2, days 3-4
    assert values(got, "moving", "max") == [True, True]
    assert values(got, "moving", "sum") == [1, 2] and values(got, "moving", "avg") == [0.5, 1]
    assert values(got, "label", "min") == ["a", "Z"] and values(got, "label", "max") == ["b", "ä"]
    assert values(got, "label", "sum") == [None, None]
    assert values(got, "serviced", "avg") == [None, None]
    assert values(got, "label", "totalCount") == [2, 2]


async def test_numbers_come_first_and_markers_are_no_values(client: httpx.AsyncClient) -> None:
    """A period holding numbers and strings gives its numbers' min and max, as a series of
    numbers alone does; a deleted attribute's urn:ngsi-ld:null is no string to order."""
    body = {
        "id": EID,
        "type": "Vehicle",
        "mixed": [
            {"type": "Property", "value": v, "observedAt": DAYS[i]}
            for i, v in enumerate(["zz", 5, 3, "aa"])
        ],
    }
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    r = await client.get(
        f"{BASE}/temporal/entities/{EID}",
        params={"options": "aggregatedValues", "aggrMethods": "min,max"},
    )
    got = r.json()
    assert values(got, "mixed", "min") == [3] and values(got, "mixed", "max") == [5]
    other = "urn:ngsi-ld:Vehicle:v2"
    note = {"type": "Property", "value": "x", "observedAt": DAYS[0]}
    created = await client.post(f"{BASE}/entities", json={"id": other, "type": "V", "note": note})
    assert created.status_code == 201
    assert (await client.delete(f"{BASE}/entities/{other}/attrs/note")).status_code == 204
    history = await client.get(f"{BASE}/temporal/entities/{other}")
    assert history.json()["note"][-1]["value"] == "urn:ngsi-ld:null"  # the marker is there
    for methods in ("min,max", "min,max,totalCount"):
        r = await client.get(
            f"{BASE}/temporal/entities/{other}",
            params={"options": "aggregatedValues", "aggrMethods": methods},
        )
        got = r.json()
        assert values(got, "note", "min") == ["x"] and values(got, "note", "max") == ["x"]


async def test_a_series_of_zeros_and_ones_stays_numbers(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Vehicle",
        "occupied": [
            {"type": "Property", "value": v, "observedAt": DAYS[i]} for i, v in enumerate([0, 1])
        ],
    }
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    r = await client.get(
        f"{BASE}/temporal/entities/{EID}",
        params={"options": "aggregatedValues", "aggrMethods": "min,max"},
    )
    got = r.json()
    assert values(got, "occupied", "min") == [0] and values(got, "occupied", "max") == [1]
    assert type(values(got, "occupied", "min")[0]) is int

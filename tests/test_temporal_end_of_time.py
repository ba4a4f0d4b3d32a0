"""9999-12-31T23:59:59.999999Z, the last DateTime, which the hub itself gives as the end of an
open period: as a float it rounds to the start of year 10000, which datetime cannot hold, so
every answer cut into pages (206) with that bound answered 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE

END = "9999-12-31T23:59:59.999999Z"
EID = "urn:ngsi-ld:Sensor:end"
T = f"{BASE}/temporal/entities"


@pytest.fixture
async def paged(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A hub whose temporal pages hold 3 instances, with 10 hourly readings of temp."""
    app = create_app(Settings(db=str(tmp_path / "hub.db"), temporal_limit=3))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        insts = [
            {"type": "Property", "value": i, "observedAt": f"2024-01-01T{i:02d}:00:00Z"}
            for i in range(1, 11)
        ]
        body = {"id": EID, "type": "Sensor", "temp": insts}
        assert (await client.post(T, json=body)).status_code == 201
        yield client
    app.state.store.close()


@pytest.mark.parametrize(
    "window",
    [
        {"timerel": "before", "timeAt": END},
        {"timerel": "between", "timeAt": "2024-01-01T00:00:00Z", "endTimeAt": END},
        {"timerel": "before", "timeAt": END, "lastN": "5"},
    ],
    ids=["before", "between", "before-lastN"],
)
async def test_a_page_bounded_by_the_end_of_time_is_answered(
    paged: httpx.AsyncClient, window: dict[str, str]
) -> None:
    resp = await paged.get(f"{T}/{EID}", params=window)
    assert resp.status_code == 206, resp.text
    if window["timerel"] == "before" and "lastN" in window:  # newest first: from timeAt down
        assert resp.headers["content-range"].startswith(f"date-time {END}-"), resp.headers
    assert 'rel="interval' in resp.headers["link"], resp.headers


async def test_a_post_query_bounded_by_the_end_of_time_is_answered(
    paged: httpx.AsyncClient,
) -> None:
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor", "id": EID}],
        "temporalQ": {"timerel": "before", "timeAt": END},
    }
    resp = await paged.post(f"{BASE}/temporal/entityOperations/query", json=body)
    assert resp.status_code == 206, resp.text
    assert resp.headers["content-range"] == "date-time 2024-01-01T01:00:00Z-2024-01-01T03:00:00Z/*"


async def test_readings_at_the_last_instant_page_and_aggregate(paged: httpx.AsyncClient) -> None:
    """Five readings of another series at the last microsecond: a page holds that instant
    whole, and there is no instant after it to link to."""
    insts = [
        {"type": "Property", "value": v, "observedAt": END, "datasetId": f"urn:ngsi-ld:ds:{v}"}
        for v in range(5)
    ]
    resp = await paged.post(f"{T}/{EID}/attrs", json={"temp": insts})
    assert resp.status_code == 204, resp.text
    after = {"timerel": "after", "timeAt": "2024-01-01T09:30:00Z", "options": "temporalValues"}
    resp = await paged.get(f"{T}/{EID}", params=after)
    assert resp.status_code == 200, resp.text
    assert sorted(v for rec in resp.json()["temp"] for v, _ in rec["values"]) == [0, 1, 2, 3, 4, 10]
    aggr = {"options": "aggregatedValues", "aggrMethods": "max"}
    resp = await paged.get(f"{T}/{EID}", params={**aggr, "datasetId": "urn:ngsi-ld:ds:4"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["temp"]["max"] == [[4, END, END]]


async def test_a_page_cut_at_the_last_instant_links_no_further(paged: httpx.AsyncClient) -> None:
    """Five readings of one series at the last microsecond (entity updates that keep the
    observedAt): the first page holds that instant whole, and nothing lies after it. The
    link led to `after` that same instant, which held it again, page after page."""
    eid = "urn:ngsi-ld:Sensor:last"
    body = {
        "id": eid,
        "type": "Sensor",
        "temp": {"type": "Property", "value": 0, "observedAt": END},
    }
    assert (await paged.post(f"{BASE}/entities", json=body)).status_code == 201
    for v in range(1, 5):
        resp = await paged.patch(f"{BASE}/entities/{eid}/attrs/temp", json={"value": v})
        assert resp.status_code == 204, resp.text
    resp = await paged.get(f"{T}/{eid}", params={"options": "temporalValues"})
    assert resp.status_code == 200, resp.text
    assert [v for v, _ in resp.json()["temp"]["values"]] == [0, 1, 2, 3, 4]
    assert "interval" not in resp.headers.get("link", "")


@pytest.mark.parametrize(
    ("first", "duration", "last_start"),
    [
        ("9999-12-31T22:00:00Z", "PT1H", "9999-12-31T23:00:00Z"),  # periods read one by one
        ("9999-12-31T22:00:00Z", "PT1M", "9999-12-31T23:59:00Z"),  # one GROUP BY
        ("9999-12-30T00:00:00Z", "P1D", "9999-12-31T00:00:00Z"),
        ("9999-11-01T00:00:00Z", "P1M", "9999-12-01T00:00:00Z"),  # calendar, read one by one
        ("9998-01-01T00:00:00Z", "P1Y", "9999-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "P1000Y", "9001-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "P1Y", "9999-01-01T00:00:00Z"),  # calendar, one GROUP BY
    ],
)
async def test_a_reading_at_the_last_instant_is_in_the_last_period(
    client: httpx.AsyncClient, first: str, duration: str, last_start: str
) -> None:
    """The last DateTime rounds, as a float, to the start of year 10000, where period ranges
    end: long calendar periods dropped that reading from the answer, and exact ones that
    divide the span to it put it in a period of its own starting and ending there."""
    insts = [
        {"type": "Property", "value": 1, "observedAt": first},
        {"type": "Property", "value": 2, "observedAt": END},
    ]
    resp = await client.post(T, json={"id": EID, "type": "Sensor", "temp": insts})
    assert resp.status_code == 201, resp.text
    params = {"options": "aggregatedValues", "aggrMethods": "sum,totalCount,max"}
    resp = await client.get(f"{T}/{EID}", params={**params, "aggrPeriodDuration": duration})
    assert resp.status_code == 200, resp.text
    got = resp.json()["temp"]
    assert got["sum"][-1] == [2, last_start, END], got
    assert [p[0] for p in got["totalCount"]] == [1, 1], got
    assert got["max"][-1] == [2, last_start, END], got

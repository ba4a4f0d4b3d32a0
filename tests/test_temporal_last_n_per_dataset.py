"""lastN keeps the newest N instances of each datasetId of an attribute: two thermometers of
one room are two attributes of a multi-attribute (4.5.5), as temporalValues lists them and
aggregation aggregates them (decision 026)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Room:ds2"
T = f"{BASE}/temporal/entities"


def reading(value: float, at: str, ds: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value, "observedAt": at}
    if ds is not None:
        out["datasetId"] = ds
    return out


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db", temporal_limit=3)
    body = {
        "id": EID,
        "type": "Room",
        "temperature": [
            reading(20.0, "2024-01-01T10:00:00Z", "urn:ds:A"),
            reading(20.5, "2024-01-01T10:05:00Z", "urn:ds:A"),
            reading(19.0, "2024-01-01T09:00:00Z", "urn:ds:B"),
            reading(19.2, "2024-01-01T09:30:00Z", "urn:ds:B"),
            reading(18.0, "2024-01-01T08:00:00Z"),
            reading(18.1, "2024-01-01T08:10:00Z"),
            reading(18.2, "2024-01-01T08:20:00Z"),
        ],
        "humidity": [reading(n, f"2024-01-01T0{n}:00:00Z") for n in range(1, 6)],
    }
    assert h.request("POST", T, json=body).status_code == 201
    yield h
    h.close()


def _series(hub: SyncHub, **params: str) -> tuple[int, dict[str | None, list[Any]]]:
    params = {"options": "temporalValues", "attrs": "temperature", **params}
    resp = hub.request("GET", f"{T}/{EID}", params=params)
    assert resp.status_code in (200, 206), resp.text
    records = resp.json()["temperature"]
    records = records if isinstance(records, list) else [records]
    return resp.status_code, {r.get("datasetId"): [v for v, _ in r["values"]] for r in records}


def test_last_n_is_per_dataset(hub: SyncHub) -> None:
    """lastN=1 gave only sensor A's 20.5: B's latest (older than A's) was gone."""
    status, series = _series(hub, lastN="1")
    assert status == 200
    assert series == {"urn:ds:A": [20.5], "urn:ds:B": [19.2], None: [18.2]}
    status, series = _series(hub, lastN="2")
    assert status == 200, "2 of each is within the page limit of 3 per series"
    assert series == {"urn:ds:A": [20.0, 20.5], "urn:ds:B": [19.0, 19.2], None: [18.1, 18.2]}


def test_last_n_with_a_dataset_filter(hub: SyncHub) -> None:
    _, series = _series(hub, lastN="1", datasetId="urn:ds:B")
    assert series == {"urn:ds:B": [19.2]}
    _, series = _series(hub, lastN="1", datasetId="@none,urn:ds:A")
    assert series == {"urn:ds:A": [20.5], None: [18.2]}


def test_last_n_beyond_the_page_cuts_each_series(hub: SyncHub) -> None:
    """An attribute without datasetIds is cut as before: the newest 3, a 206."""
    resp = hub.request("GET", f"{T}/{EID}", params={"attrs": "humidity", "lastN": "5"})
    assert resp.status_code == 206, resp.text
    assert [i["value"] for i in resp.json()["humidity"]] == [3, 4, 5]
    assert resp.headers["Content-Range"].endswith("/5")


def test_normalized_instances_stay_in_time_order(hub: SyncHub) -> None:
    resp = hub.request("GET", f"{T}/{EID}", params={"attrs": "temperature", "lastN": "1"})
    assert resp.status_code == 200, resp.text
    times = [i["observedAt"] for i in resp.json()["temperature"]]
    assert times == sorted(times) and len(times) == 3, times


def _values(hub: SyncHub, eid: str) -> dict[str | None, list[Any]]:
    resp = hub.request("GET", f"{T}/{eid}", params={"options": "temporalValues", "lastN": "1"})
    assert resp.status_code == 200, resp.text
    records = resp.json()["v"]
    records = records if isinstance(records, list) else [records]
    return {r.get("datasetId"): [v for v, _ in r["values"]] for r in records}


def test_the_default_series_is_found_whichever_came_first(tmp_path: Path) -> None:
    """The store notes that an attribute with datasetIds also has default instances (so a
    read skips a default series it never had); each order of writing must note it."""
    hub = SyncHub(tmp_path / "hub.db")
    try:
        for eid, first, then in (
            (
                "urn:x:1",
                reading(1, "2024-01-01T00:00:00Z"),
                reading(2, "2024-01-01T01:00:00Z", "urn:ds:a"),
            ),
            (
                "urn:x:2",
                reading(1, "2024-01-01T00:00:00Z", "urn:ds:a"),
                reading(2, "2024-01-01T01:00:00Z"),
            ),
        ):
            assert (
                hub.request("POST", T, json={"id": eid, "type": "M", "v": [first]}).status_code
                == 201
            )
            resp = hub.request("POST", f"{T}/{eid}/attrs", json={"v": [then]})
            assert resp.status_code == 204, resp.text
            assert sorted(_values(hub, eid).values()) == [[1], [2]], eid
        # an entity write, then a PATCH that gives one of two default instances a datasetId
        body = {
            "id": "urn:x:3",
            "type": "M",
            "v": [reading(1, "2024-01-01T00:00:00Z"), reading(2, "2024-01-01T01:00:00Z")],
        }
        assert hub.request("POST", T, json=body).status_code == 201
        first = hub.request("GET", f"{T}/urn:x:3").json()["v"][0]
        url = f"{T}/urn:x:3/attrs/v/{first['instanceId']}"
        assert hub.request("PATCH", url, json={"datasetId": "urn:ds:b"}).status_code == 204
        assert _values(hub, "urn:x:3") == {None: [2], "urn:ds:b": [1]}
    finally:
        hub.close()


def test_an_older_database_notes_its_default_series(tmp_path: Path) -> None:
    """The 7 -> 8 upgrade notes the attributes with datasetIds that have default instances."""
    db = tmp_path / "old.db"
    hub = SyncHub(db)
    body = {
        "id": "urn:x:old",
        "type": "M",
        "v": [reading(1, "2024-01-01T00:00:00Z"), reading(2, "2024-01-01T01:00:00Z", "urn:ds:a")],
    }
    assert hub.request("POST", T, json=body).status_code == 201
    hub.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM history_datasets WHERE dataset_id = '@none'")
        conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    hub = SyncHub(db)
    try:
        assert _values(hub, "urn:x:old") == {None: [1], "urn:ds:a": [2]}
    finally:
        hub.close()

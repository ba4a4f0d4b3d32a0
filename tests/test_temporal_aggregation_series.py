"""aggregatedValues: each datasetId is its own series, and stddev stays exact for values far
from zero (a prober's findings, 2026-12-06)."""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.store.sqlite import SqliteStore
from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Room:s1"
T = "2020-01-01T00:00:0{}Z"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _create(hub: SyncHub, instances: list[dict[str, Any]]) -> None:
    body = {"id": EID, "type": "Room", "temp": instances}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201


def _aggregate(hub: SyncHub, methods: str, **params: str) -> Any:
    params = {"options": "aggregatedValues", "aggrMethods": methods, **params}
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["temp"]


def _obs(value: float, second: int, dataset: str | None = None) -> dict[str, Any]:
    inst: dict[str, Any] = {"type": "Property", "value": value, "observedAt": T.format(second)}
    if dataset:
        inst["datasetId"] = dataset
    return inst


def test_stddev_of_values_far_from_zero(hub: SyncHub) -> None:
    """From sum and sum of squares, 1000000001..3 gave 0 (the two terms cancelled)."""
    values = [1_000_000_001, 1_000_000_002, 1_000_000_003]
    _create(hub, [_obs(v, i) for i, v in enumerate(values)])
    [[got, _, _]] = _aggregate(hub, "stddev,sumsq")["stddev"]
    assert got == pytest.approx(statistics.pstdev(values), rel=1e-9)
    fractions = [1000000.1, 1000000.2, 1000000.3]
    body = {"temp": [_obs(v, 3 + i) for i, v in enumerate(fractions)]}
    resp = hub.request("POST", f"{BASE}/temporal/entities/{EID}/attrs", json=body)
    assert resp.status_code == 204, resp.text
    [[got, _, _]] = _aggregate(hub, "stddev", timerel="after", timeAt=T.format(3))["stddev"]
    assert got == pytest.approx(statistics.pstdev(fractions), rel=1e-6)


def test_each_dataset_is_its_own_series(hub: SyncHub) -> None:
    """Two sensors of one attribute are not averaged together: one record per datasetId,
    as temporalValues lists them."""
    _create(
        hub,
        [_obs(1, 0, "urn:ds:a"), _obs(100, 1, "urn:ds:b"), _obs(2, 2, "urn:ds:a"), _obs(7, 3)],
    )
    got = _aggregate(hub, "sum,avg,totalCount")
    by_ds = {r.get("datasetId"): r for r in got}
    assert set(by_ds) == {None, "urn:ds:a", "urn:ds:b"}, got
    assert all(r["type"] == "Property" for r in got)
    assert by_ds["urn:ds:a"]["sum"][0][0] == 3 and by_ds["urn:ds:a"]["avg"][0][0] == 1.5
    assert by_ds["urn:ds:b"]["sum"][0][0] == 100 and by_ds["urn:ds:b"]["totalCount"][0][0] == 1
    assert by_ds[None]["sum"][0][0] == 7
    # every series spans the same requested range
    assert len({(r["sum"][0][1], r["sum"][0][2]) for r in got}) == 1, got
    only_b = _aggregate(hub, "sum", datasetId="urn:ds:b")
    assert only_b["datasetId"] == "urn:ds:b" and only_b["sum"][0][0] == 100, only_b
    default = _aggregate(hub, "sum", datasetId="@none")
    assert "datasetId" not in default and default["sum"][0][0] == 7, default


def test_an_attribute_without_datasets_is_one_record(hub: SyncHub) -> None:
    _create(hub, [_obs(1, 0), _obs(2, 1)])
    got = _aggregate(hub, "sum", aggrPeriodDuration="PT1S")
    assert got["type"] == "Property" and [p[0] for p in got["sum"]] == [1, 2], got
    resp = hub.request(
        "GET",
        f"{BASE}/temporal/entities/{EID}",
        params={"options": "aggregatedValues", "aggrMethods": "sum", "datasetId": "urn:ds:x"},
    )
    assert resp.status_code == 200 and "temp" not in resp.json(), resp.text


def test_an_older_database_knows_its_datasets(tmp_path: Path) -> None:
    """The 6 -> 7 upgrade lists the datasetIds already in the history."""
    db = tmp_path / "old.db"
    hub = SyncHub(db)
    _create(hub, [_obs(1, 0, "urn:ds:a"), _obs(5, 1)])
    hub.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE history_datasets")
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    SqliteStore(db).close()
    hub = SyncHub(db)
    try:
        got = _aggregate(hub, "sum")
        assert sorted((r.get("datasetId") or "", r["sum"][0][0]) for r in got) == [
            ("", 5),
            ("urn:ds:a", 1),
        ], got
    finally:
        hub.close()


def test_distinct_count_tells_kinds_apart_and_ignores_key_order(hub: SyncHub) -> None:
    """true and 1 were one value (both stored as 1.0); two orderings of one object were
    two (their texts differed)."""
    values: list[Any] = [True, 1, False, 0, "1", 1.0, {"a": 1, "b": 2}, {"b": 2, "a": 1}]
    _create(hub, [_obs(v, i) for i, v in enumerate(values)])
    [[got, _, _]] = _aggregate(hub, "distinctCount")["distinctCount"]
    assert got == 6, got  # true, 1 (= 1.0), false, 0, "1", the object


def test_an_instance_moved_to_a_dataset_is_aggregated_in_its_series(hub: SyncHub) -> None:
    """PATCH of an instance to a new datasetId left it out of that series: the aggregation
    mixed it into the default one, and `datasetId=` found nothing."""
    _create(hub, [_obs(1, 1), _obs(2, 2)])
    stored = hub.request("GET", f"{BASE}/temporal/entities/{EID}").json()["temp"]
    iid = next(i["instanceId"] for i in stored if i["value"] == 2)
    body = {"value": 2, "datasetId": "urn:ds:s2"}
    resp = hub.request("PATCH", f"{BASE}/temporal/entities/{EID}/attrs/temp/{iid}", json=body)
    assert resp.status_code == 204, resp.text
    series = _aggregate(hub, "sum,totalCount")
    by_dataset = {s.get("datasetId"): s for s in series}
    assert by_dataset[None]["sum"][0][0] == 1 and by_dataset["urn:ds:s2"]["sum"][0][0] == 2, series
    one = _aggregate(hub, "sum", datasetId="urn:ds:s2")
    one = one if isinstance(one, dict) else one[0]
    assert one["sum"][0][0] == 2, one


@pytest.mark.parametrize("period", ["", "PT1S"])
def test_deletion_markers_are_not_aggregated(hub: SyncHub, period: str) -> None:
    """DELETE of an attribute records a urn:ngsi-ld:null instance; totalCount and
    distinctCount counted it as a reading (2 for one real reading)."""
    eid = "urn:ngsi-ld:Room:del"
    body = {"id": eid, "type": "Room", "p": {"type": "Property", "value": "ok"}}
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    assert hub.request("DELETE", f"{BASE}/entities/{eid}/attrs/p").status_code == 204
    stored = hub.request("GET", f"{BASE}/temporal/entities/{eid}").json()["p"]
    assert len(stored) == 2 and "deletedAt" in stored[1], "the marker is in the history"
    params = {"options": "aggregatedValues", "aggrMethods": "totalCount,distinctCount,max"}
    if period:
        params["aggrPeriodDuration"] = period
    resp = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params)
    assert resp.status_code == 200, resp.text
    got = resp.json()["p"]
    assert [p[0] for p in got["totalCount"]] == [1], got
    assert [p[0] for p in got["distinctCount"]] == [1], got


def test_a_deletion_marker_adds_no_period_to_other_methods(hub: SyncHub) -> None:
    """Methods other than the counts read only numbers (no filter, the index alone): a marker
    recorded later still adds no period of nulls."""
    eid = "urn:ngsi-ld:Room:del2"
    body = {"id": eid, "type": "Room", "p": {"type": "Property", "value": 5}}
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    time.sleep(1.1)  # the marker falls in the next one-second period
    assert hub.request("DELETE", f"{BASE}/entities/{eid}/attrs/p").status_code == 204
    for period in ("", "PT1S"):
        params = {"options": "aggregatedValues", "aggrMethods": "max"}
        if period:
            params["aggrPeriodDuration"] = period
        resp = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params)
        assert [p[0] for p in resp.json()["p"]["max"]] == [5], (period, resp.text)


def test_each_series_has_its_own_type(hub: SyncHub) -> None:
    """A Property default instance and a Relationship under a datasetId were both labelled
    with the attribute's first type."""
    eid = "urn:ngsi-ld:Room:kinds"
    body = {
        "id": eid,
        "type": "Room",
        "src": [
            {"type": "Property", "value": 1},
            {"type": "Relationship", "object": "urn:ngsi-ld:Sensor:1", "datasetId": "urn:ds:rel"},
        ],
    }
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    params = {"options": "aggregatedValues", "aggrMethods": "totalCount"}
    got = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params).json()["src"]
    kinds = {s.get("datasetId", "@none"): s["type"] for s in got}
    assert kinds == {"@none": "Property", "urn:ds:rel": "Relationship"}, got

"""What a read on each time axis costs grows with what it selects, not with the history
around it: a prober's findings on 2,000 sensors x 6 attributes x 200 readings plus one
sensor of 1,000,000 (2026-12-08). createdAt was still read period by period as if an index
held it (one scan of the series per period: PT1S over 1M instances ran into the query
deadline), and the deletedAt axis parsed every numeric reading's JSON to find none there."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cityhub.store.sqlite import functions, temporal
from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Sensor:axes"
N = 50


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _index_prefixes(db: Path) -> set[tuple[str, ...]]:
    """The leading three columns of each index on history."""
    with sqlite3.connect(db) as conn:
        names = [r[1] for r in conn.execute("PRAGMA index_list(history)")]
        return {
            tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})"))[:3] for name in names
        }


def test_every_axis_read_by_range_has_an_index_that_starts_tpk_nid_time(hub: SyncHub) -> None:
    hub.request("POST", f"{BASE}/temporal/entities", json={"id": EID, "type": "Sensor"})
    prefixes = _index_prefixes(hub.db)
    for axis in temporal._INDEXED_TIMES:
        column = temporal.TIME_COLUMNS[axis].removeprefix("h.")
        assert ("tpk", "nid", column) in prefixes, (axis, prefixes)


def test_created_at_periods_still_aggregate_every_instance(hub: SyncHub) -> None:
    for i in range(N):  # one write each: N createdAt instants
        body = {"id": EID, "type": "Sensor", "p": {"type": "Property", "value": i}}
        assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code in (201, 204)
    params = {
        "format": "aggregatedValues",
        "aggrMethods": "sum,totalCount",
        "aggrPeriodDuration": "PT0.000001S",
        "timeproperty": "createdAt",
    }
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code == 200, resp.text
    got = resp.json()["p"]
    assert sum(r[0] for r in got["sum"]) == sum(range(N))
    assert sum(r[0] for r in got["totalCount"]) == N


def test_deleted_at_reads_look_at_no_numeric_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = functions.epoch_of

    def counted(text: Any) -> float | None:
        seen.append(text)
        return real(text)

    monkeypatch.setattr(functions, "epoch_of", counted)
    hub = SyncHub(tmp_path / "hub.db")
    try:
        readings = [
            {"type": "Property", "value": i, "observedAt": f"2026-10-01T00:{i:02d}:00Z"}
            for i in range(N)
        ]
        body = {"id": EID, "type": "Sensor", "p": readings, "q": {"type": "Property", "value": 1}}
        assert (
            hub.request(
                "POST", f"{BASE}/entities", json={"id": EID, "type": "Sensor", "q": body["q"]}
            ).status_code
            == 201
        )
        assert (
            hub.request(
                "POST", f"{BASE}/temporal/entities/{EID}/attrs", json={"p": readings}
            ).status_code
            == 204
        )
        assert hub.request("DELETE", f"{BASE}/entities/{EID}/attrs/q").status_code == 204
        seen.clear()
        params = {"timeproperty": "deletedAt", "timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
        for path in (f"/temporal/entities/{EID}", "/temporal/entities"):
            resp = hub.request(
                "GET",
                f"{BASE}{path}",
                params={**params, "type": "Sensor"} if path.endswith("entities") else params,
            )
            assert resp.status_code == 200, resp.text
            doc = resp.json()
            entity = doc[0] if isinstance(doc, list) else doc
            assert "p" not in entity and len(entity["q"]) == 1, entity
            assert entity["q"][0]["value"] == "urn:ngsi-ld:null", entity
        numeric = [t for t in seen if t is None]
        assert len(numeric) <= 4, f"{len(numeric)} numeric readings parsed for their deletedAt"
    finally:
        hub.close()

"""Deletion markers (the urn:ngsi-ld:null instances an attribute DELETE records) are no
readings: a temporal q does not match them, and a PATCH cannot give one a value (a
prober's findings, 2026-12-07)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BASE, SyncHub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _entity_then_deleted(hub: SyncHub, eid: str) -> None:
    body = {"id": eid, "type": "BD", "p": {"type": "Property", "value": 100}}
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    assert hub.request("DELETE", f"{BASE}/entities/{eid}/attrs/p").status_code == 204


def _marker_time(hub: SyncHub, eid: str) -> str:
    resp = hub.request("GET", f"{BASE}/temporal/entities/{eid}")
    (marker,) = [i for i in resp.json()["p"] if "deletedAt" in i]
    return str(marker["deletedAt"])


@pytest.mark.parametrize("q", ['p=="urn:ngsi-ld:null"', "p"])
def test_q_does_not_read_a_deletion_marker_as_a_reading(hub: SyncHub, q: str) -> None:
    """Over a window holding only the marker, the attribute did not exist: all entities
    matched, while aggregation and geoQ already passed markers over."""
    _entity_then_deleted(hub, "urn:ngsi-ld:BD:0")
    at = _marker_time(hub, "urn:ngsi-ld:BD:0")
    params = {"type": "BD", "q": q, "timeproperty": "modifiedAt", "timerel": "after", "timeAt": at}
    resp = hub.request("GET", f"{BASE}/temporal/entities", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.json() == []
    # the reading itself still matches, over the whole history
    resp = hub.request("GET", f"{BASE}/temporal/entities", params={"type": "BD", "q": "p==100"})
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:BD:0"]


def test_a_deletion_marker_instance_cannot_be_given_a_value(hub: SyncHub) -> None:
    """PATCH merged the value into the marker and kept its deletedAt: a half-marker, listed
    as a deletion and counted as a reading."""
    eid = "urn:ngsi-ld:R:1"
    _entity_then_deleted(hub, eid)
    resp = hub.request("GET", f"{BASE}/temporal/entities/{eid}")
    (marker,) = [i for i in resp.json()["p"] if "deletedAt" in i]
    url = f"{BASE}/temporal/entities/{eid}/attrs/p/{marker['instanceId']}"
    resp = hub.request("PATCH", url, json={"value": 5})
    assert resp.status_code == 400, resp.text
    assert resp.json()["type"].endswith("BadRequestData")
    assert "deletion" in resp.json()["detail"]
    params = {"options": "aggregatedValues", "aggrMethods": "totalCount,sum"}
    p = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params).json()["p"]
    assert p["totalCount"][0][0] == 1 and p["sum"][0][0] == 100, p

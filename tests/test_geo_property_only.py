"""A geoQ tests GeoProperty attributes only (clause 4.10), on every path alike: an entity
query (SQL and the evaluator), a temporal query and a subscription give one answer for a
Property that holds a GeoJSON value (it keeps its type), and for a GeoProperty."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.query.evaluate import matches_geo
from cityhub.ngsild.query.geo import parse_geoq
from cityhub.notify.events import event_for
from cityhub.notify.subscription import compile_subscription
from conftest import BASE, SyncHub

EX = "https://vocab.example.org/"
BOX = [[[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]]
WHEN = "2024-05-01T00:00:00Z"


def _attr(kind: str) -> dict[str, Any]:
    return {"type": kind, "value": {"type": "Point", "coordinates": [3, 3]}, "observedAt": WHEN}


ENTITIES = [
    {"id": "urn:ngsi-ld:R2:plain", "type": "R2", "place": _attr("Property")},
    {"id": "urn:ngsi-ld:R2:geo", "type": "R2", "place": _attr("GeoProperty")},
]
GEOQ = {"georel": "within", "geometry": "Polygon", "coordinates": json.dumps(BOX)}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path_factory.mktemp("geoprop") / "hub.db")
    for body in ENTITIES:
        assert h.request("POST", f"{BASE}/entities", json=body).status_code == 201
    yield h
    h.close()


def _ids(hub: SyncHub, path: str, **extra: str) -> list[str]:
    params = {"type": "R2", **GEOQ, "geoproperty": "place", **extra}
    resp = hub.request("GET", f"{BASE}/{path}", params=params)
    assert resp.status_code == 200, resp.text
    return sorted(e["id"] for e in resp.json())


def test_an_entity_query_matches_the_geo_property_only(hub: SyncHub) -> None:
    assert _ids(hub, "entities") == ["urn:ngsi-ld:R2:geo"]


def test_a_temporal_query_matches_the_geo_property_only(hub: SyncHub) -> None:
    window = {"timerel": "after", "timeAt": "2024-01-01T00:00:00Z"}
    assert _ids(hub, "temporal/entities", **window) == ["urn:ngsi-ld:R2:geo"]


def _doc(kind: str) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:R2:1",
        "type": [EX + "R2"],
        "createdAt": WHEN,
        "modifiedAt": WHEN,
        "attrs": {EX + "place": [_attr(kind)]},
    }


def test_a_subscription_matches_the_geo_property_only() -> None:
    doc = {
        "id": "urn:ngsi-ld:Subscription:r2",
        "type": "Subscription",
        "entities": [{"type": EX + "R2"}],
        "geoQ": {**GEOQ, "geoproperty": EX + "place"},
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    sub = compile_subscription("", doc, ContextCache().compile, lambda *_: "")
    assert event_for(sub, None, _doc("GeoProperty"), WHEN) is not None
    assert event_for(sub, None, _doc("Property"), WHEN) is None


def test_the_evaluator_matches_the_geo_property_only() -> None:
    gq = parse_geoq("within", "Polygon", json.dumps(BOX), EX + "place")
    assert gq is not None
    assert matches_geo(gq, _doc("GeoProperty"))
    assert not matches_geo(gq, _doc("Property"))

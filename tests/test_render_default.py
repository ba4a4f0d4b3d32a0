"""The read hot path (default options) renders exactly what the general renderer does."""

from __future__ import annotations

from typing import Any

import orjson

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.entity import expand_entity
from cityhub.ngsild.render import DEFAULT, RenderOptions, render_entity

TM = ContextCache().core
NOW = "2026-11-22T04:00:00Z"

BODY: dict[str, Any] = {
    "id": "urn:ngsi-ld:Bus:1",
    "type": ["Bus", "Vehicle"],
    "scope": ["/city/north", "/fleet"],
    "speed": [
        {"type": "Property", "value": 40, "unitCode": "KMH", "observedAt": NOW},
        {"type": "Property", "value": 42, "datasetId": "urn:ngsi-ld:Dataset:gps"},
    ],
    "fuel": {
        "type": "Property",
        "value": 0.5,
        "accuracy": {"type": "Property", "value": 0.01},
    },
    "route": {"type": "Relationship", "object": "urn:ngsi-ld:Route:7", "objectType": "Route"},
    "depot": {"type": "Relationship", "object": "urn:ngsi-ld:Depot:1"},
    "name": {"type": "LanguageProperty", "languageMap": {"en": "Bus one", "ko": "버스 1"}},
    "category": {"type": "VocabProperty", "vocab": "Bus"},
    "stops": {"type": "ListProperty", "valueList": [1, 2, 3]},
    "config": {"type": "JsonProperty", "json": {"mode": "eco"}},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [127.0, 37.5]}},
}


def _stored() -> dict[str, Any]:
    doc = expand_entity(orjson.loads(orjson.dumps(BODY)), TM)
    doc["createdAt"] = doc["modifiedAt"] = NOW
    for instances in doc["attrs"].values():
        for inst in instances:
            inst["createdAt"] = inst["modifiedAt"] = NOW
    return doc


def test_the_fast_path_matches_the_general_renderer() -> None:
    doc = _stored()
    general = render_entity(doc, TM, RenderOptions())  # equal options, not the DEFAULT object
    fast = render_entity(doc, TM, DEFAULT)
    assert orjson.dumps(fast) == orjson.dumps(general)  # same members in the same order
    assert "createdAt" not in orjson.dumps(fast).decode()


def test_the_fast_path_leaves_the_stored_document_alone() -> None:
    doc = _stored()
    before = orjson.dumps(doc)
    render_entity(doc, TM, DEFAULT)
    assert orjson.dumps(doc) == before

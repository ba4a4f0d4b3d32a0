"""The reference evaluator on stored (expanded) entities: the oracle SQL compilers must match."""

from __future__ import annotations

import random
from typing import Any

import pytest

from cityhub.ngsild.query.ast import ScopePattern, map_names
from cityhub.ngsild.query.evaluate import (
    matches_geo,
    matches_q,
    matches_scope,
    matches_types,
    scope_matches,
)
from cityhub.ngsild.query.geo import parse_geoq
from cityhub.ngsild.query.qlang import parse_q
from cityhub.ngsild.query.scope import parse_scope
from cityhub.ngsild.query.typeexpr import parse_types

EX = "https://ex.org/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
CORE = {"id", "type", "createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId", "location"}

DOC: dict[str, Any] = {
    "id": "urn:ngsi-ld:Building:1",
    "type": [EX + "Building", EX + "Asset"],
    "scope": ["/Madrid/Gardens", "/Barcelona"],
    "createdAt": "2024-01-01T00:00:00.000000Z",
    "modifiedAt": "2024-06-01T00:00:00.000000Z",
    "attrs": {
        EX + "temperature": [
            {
                "type": "Property",
                "value": 21.5,
                "unitCode": "CEL",
                "observedAt": "2024-01-01T00:00:00Z",
                "createdAt": "2024-01-01T00:00:00.000000Z",
                "sub": {EX + "accuracy": {"type": "Property", "value": 0.1}},
            },
            {"type": "Property", "value": 19, "datasetId": "urn:ds:2"},
        ],
        EX + "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1"}],
        NGSI_LD + "location": [
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.1, 41.3]}}
        ],
        EX + "name": [{"type": "LanguageProperty", "languageMap": {"en": "Hall", "es": "Sala"}}],
        EX + "cat": [{"type": "VocabProperty", "vocab": EX + "residential"}],
        EX + "readings": [{"type": "ListProperty", "valueList": [1, 2, 3]}],
        EX + "cfg": [{"type": "JsonProperty", "json": {"a": 1, "deep": {"b": "x"}}}],
        EX + "parts": [{"type": "ListRelationship", "objectList": ["urn:a", "urn:b"]}],
        EX + "address": [{"type": "Property", "value": {"city": "Berlin", "zip": "10115"}}],
        EX + "sensor": [
            {
                "type": "Property",
                "value": 40,
                "sub": {
                    EX + "rawdata": {
                        "type": "Property",
                        "value": {"airquality": {"particulate": 40, "PM20": 85}},
                    }
                },
            }
        ],
        EX + "open": [{"type": "Property", "value": True}],
        EX + "nothing": [{"type": "Property", "value": None}],
        EX + "label": [{"type": "Property", "value": "Main Hall"}],
        EX + "lastSeen": [{"type": "Property", "value": "2024-05-01T10:00:00+02:00"}],
        EX + "typedSeen": [
            {"type": "Property", "value": {"@type": "DateTime", "@value": "2024-05-01T08:00:00Z"}}
        ],
        EX + "day": [{"type": "Property", "value": "2024-05-01"}],
        EX + "opens": [{"type": "Property", "value": "08:30:00Z"}],
        EX + "tags": [{"type": "Property", "value": ["red", "blue"]}],
    },
}


def expand(name: str) -> str:
    """A stand-in for @context expansion: core terms to the core namespace, others to EX."""
    if name in ("id", "type", "createdAt", "modifiedAt", "observedAt", "unitCode", "datasetId"):
        return name
    return (NGSI_LD if name in CORE else EX) + name


def ev(text: str, doc: dict[str, Any] = DOC) -> bool:
    return matches_q(map_names(parse_q(text), expand), doc)


TRUE = [
    "temperature",
    "temperature.accuracy",
    "temperature.observedAt",
    "temperature.unitCode",
    "temperature==21.5",
    "temperature==19",
    "temperature==19.0",
    "temperature>20",
    "temperature<20",
    "temperature>=21.5",
    "temperature<=19",
    "temperature!=21.5",
    'temperature!="21.5"',
    "temperature==10..20",
    "temperature==21.5,100",
    "temperature!=1,2",
    "temperature.accuracy<0.2",
    'temperature.unitCode=="CEL"',
    "temperature.datasetId==urn:ds:2",
    "temperature.observedAt==2024-01-01T00:00:00Z",
    "temperature.observedAt>=2023-12-31T23:00:00-01:00",
    "temperature.observedAt==2023-12-31T00:00:00Z..2024-01-02T00:00:00Z",
    "temperature.createdAt<2024-01-01T00:00:01Z",
    "owner==urn:ngsi-ld:Person:1",
    'owner=="urn:ngsi-ld:Person:1"',
    "owner!=urn:ngsi-ld:Person:2",
    "owner==urn:x,urn:ngsi-ld:Person:1",
    'name=="Hall"',
    'name=="Sala"',
    'name[es]=="Sala"',
    'name[*]=="Sala"',
    'name~="^Sa"',
    'name[en]!="Sala"',
    f"cat=={EX}residential",
    'cat~="residential$"',
    "readings==2",
    "readings==3..9",
    "readings!=5",
    "readings>2",
    "readings<2",
    "cfg[a]==1",
    "cfg[a]>0",
    'cfg[deep.b]=="x"',
    "cfg[deep][b]",
    "parts==urn:b",
    "parts!=urn:c",
    'address[city]=="Berlin"',
    'address[zip]>"1"',
    "sensor.rawdata[airquality.particulate]==40",
    "sensor.rawdata[airquality.PM20]>80",
    "open==true",
    "open!=false",
    "nothing==null",
    "nothing",
    'label~="(?i)^main hall$"',
    'label!~="^Hall"',
    'label>"Main"',
    'label<"Main Hallway"',
    "lastSeen==2024-05-01T08:00:00Z",
    "lastSeen<2024-05-01T08:00:01Z",
    "typedSeen==2024-05-01T10:00:00+02:00",
    "day==2024-05-01",
    "day>2024-04-30",
    "opens<09:00:00Z",
    "opens==10:30:00+02:00",
    'tags=="red"',
    'tags!="green"',
    'tags=="green","blue"',
    "location",
    "id==urn:ngsi-ld:Building:1",
    f"type=={EX}Asset",
    "createdAt<2024-01-02T00:00:00Z",
    "modifiedAt==2024-06-01T00:00:00Z",
    "temperature>100|owner",
    "temperature>20;owner;(missing|readings==1)",
    'lastSeen!="2024-05-01T08:00:00Z"',
]

FALSE = [
    "missing",
    "temperature.missing",
    "temperature.accuracy.deeper",
    "temperature.datasetId==urn:ds:9",
    "temperature==20",
    'temperature=="21.5"',
    "temperature>21.5",
    "temperature<19",
    "temperature==0..18",
    "temperature!=19,21.5",
    "missing!=1",
    'missing!="x"',
    "temperature.observedAt>2024-01-01T00:00:00Z",
    'temperature.observedAt=="2024-01-01"',
    "temperature.observedAt==2024-01-01",
    "temperature.accuracy>1",
    'temperature~="2"',
    'temperature!~="2"',
    "owner==urn:ngsi-ld:Person:2",
    'owner>"a"',
    'owner<"zzz"',
    'owner~="Person"',
    'name=="Hello"',
    'name[en]=="Sala"',
    'name[fr]=="Sala"',
    'name[fr]!="Sala"',
    "name[en][x]",
    'cat=="residential"',
    "readings==5",
    "readings!=2",
    "readings>3",
    "cfg[b]",
    "cfg[a]==2",
    "cfg[deep.c]",
    "parts==urn:c",
    "parts!=urn:a,urn:b",
    'parts>"a"',
    'address[country]=="DE"',
    "address[city]==1",
    "sensor.rawdata[airquality.particulate]==41",
    "open==false",
    'open=="true"',
    "open==1",
    "nothing!=null",
    "temperature==null",
    'label~="^Hall"',
    'label!~="Hall"',
    "lastSeen>2024-05-01T08:00:00Z",
    'lastSeen=="2024-05-01T08:00:00Z"',
    "day==2024-05-02",
    "day==2024-05-01T00:00:00Z",
    "opens>09:00:00Z",
    'tags=="green"',
    'tags!="red","blue"',
    "location==1",
    'location=="Point"',
    "id==urn:ngsi-ld:Building:2",
    f"type=={EX}Person",
    "createdAt>2024-01-02T00:00:00Z",
    "temperature>100|missing",
    "temperature>20;missing",
]


@pytest.mark.parametrize("text", TRUE)
def test_matches(text: str) -> None:
    assert ev(text) is True


@pytest.mark.parametrize("text", FALSE)
def test_does_not_match(text: str) -> None:
    assert ev(text) is False


def test_empty_entity() -> None:
    bare = {"id": "urn:x", "type": [EX + "T"]}
    assert not ev("temperature", bare)
    assert not ev("temperature!=1", bare)
    assert ev("id==urn:x", bare)


def test_types() -> None:
    def t(text: str) -> bool:
        return matches_types(map_names(parse_types(text), expand), DOC)

    assert t("Building")
    assert t("Person,Building")
    assert t("Person|Asset")
    assert t("Building;Asset")
    assert not t("Building;Person")
    assert t("(Building;Person)|Asset")
    assert not t("(Building;Person)|Car")
    assert not t("Person")
    assert matches_types(parse_types(EX + "Building"), DOC)


@pytest.mark.parametrize(
    ("pattern", "scope", "expected"),
    [
        ("/Madrid/Gardens", "/Madrid/Gardens", True),
        ("/Madrid/Gardens", "/Madrid", False),
        ("/Madrid/Gardens", "/Madrid/Gardens/North", False),
        ("/Madrid", "/Madrid/Gardens", False),
        ("/Madrid/#", "/Madrid", True),
        ("/Madrid/#", "/Madrid/Gardens", True),
        ("/Madrid/#", "/Madrid/Gardens/North/1", True),
        ("/Madrid/#", "/Madridx", False),
        ("/Madrid/#", "/Barcelona/Madrid", False),
        ("/#", "/anything/at/all", True),
        ("/+/Gardens", "/Madrid/Gardens", True),
        ("/+/Gardens", "/Madrid/Parks", False),
        ("/+/Gardens", "/Gardens", False),
        ("/Madrid/+", "/Madrid", False),
        ("/Madrid/+", "/Madrid/X", True),
        ("/Madrid/+", "/Madrid/X/Y", False),
        ("/+/+/#", "/a/b", True),
        ("/+/+/#", "/a", False),
        ("/Madrid/Gardens", "Madrid/Gardens", False),
    ],
)
def test_scope_matches(pattern: str, scope: str, expected: bool) -> None:
    assert scope_matches(ScopePattern(pattern), scope) is expected


def test_matches_scope_on_documents() -> None:
    def sq(text: str, doc: dict[str, Any] = DOC) -> bool:
        return matches_scope(parse_scope(text), doc)

    assert sq("/Madrid/#")
    assert sq("/Barcelona")
    assert sq("/Madrid/Gardens;/Barcelona")
    assert not sq("/Madrid/Gardens;/Valencia")
    assert sq("/Valencia,/Barcelona")
    assert sq("/#")
    assert not sq("/#", {"id": "urn:x", "type": ["T"]})
    assert sq("/A", {"id": "urn:x", "scope": "/A"})


def test_matches_geo() -> None:
    near = parse_geoq("near;maxDistance==1000", "Point", "[2.1, 41.305]", None)
    far = parse_geoq("near;maxDistance==100", "Point", "[2.1, 41.305]", None)
    assert near is not None and far is not None
    assert matches_geo(near, DOC)
    assert not matches_geo(far, DOC)
    assert matches_geo(near, DOC, NGSI_LD + "location")
    assert not matches_geo(near, DOC, EX + "temperature")
    assert not matches_geo(near, {"id": "urn:x"})


def test_random_valid_queries_always_evaluate() -> None:
    rnd = random.Random(3)
    paths = ["temperature", "temperature.observedAt", "name[en]", "cfg[deep.b]", "owner", "tags"]
    values = ["1", "-2.5", '"x"', "true", "null", "2024-01-01T00:00:00Z", "2024-01-01", "10:00:00"]
    ops = ["==", "!=", ">", "<=", "~="]
    for _ in range(200):
        terms = []
        for _ in range(rnd.randint(1, 4)):
            op = rnd.choice(ops)
            value = '"a.*"' if op == "~=" else rnd.choice(values)
            if op in (">", "<=") and value in ("true", "null"):
                value = "1"
            terms.append(rnd.choice(paths) + op + value)
        text = rnd.choice([";", "|"]).join(terms)
        assert isinstance(ev(text), bool)

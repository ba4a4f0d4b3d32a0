"""The plain-instance path of expansion (entity._plain_instance) answers as the general path
does: the same stored instance, or the same error, and the same bounds taken, for every
instance it takes and every one it leaves to the general path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityhub.ngsild import entity
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.core_context import NGSI_LD
from cityhub.ngsild.entity import NULL_URI, Budget, expand_attribute, expand_entity
from cityhub.ngsild.errors import NgsiLdError

CORE = ContextCache().core
POINT = {"type": "Point", "coordinates": [2.35, 48.85]}
IRIS = ("https://example.org/speed", NGSI_LD + "location")
FLAGS = [{}, {"nulls": True}, {"nulls": True, "merge": True}, {"history": True}]

INSTANCES: list[Any] = [
    {"type": "Property", "value": 5.37, "unitCode": "CEL", "observedAt": "2024-01-01T00:00:07Z"},
    {"type": "Property", "value": 13},
    {"type": "Property", "value": "ok"},
    {"type": "Property", "value": True},
    {"type": "Property", "value": 2**70},
    {"type": "Property", "value": float("nan")},
    {"type": "Property", "value": NULL_URI},
    {"type": "Property", "value": None},
    {"type": "Property", "value": {"a": 1}},
    {"type": "Property", "value": [1, 2]},
    {"type": "Property", "value": POINT},
    {"type": "Property"},
    {"type": "Property", "value": 1, "observedAt": "yesterday"},
    {"type": "Property", "value": 1, "observedAt": None},
    {"type": "Property", "value": 1, "observedAt": NULL_URI},
    {"type": "Property", "value": 1, "unitCode": 7},
    {"type": "Property", "value": 1, "unitCode": NULL_URI},
    {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
    {"type": "Property", "value": 1, "object": "urn:ngsi-ld:X:1"},
    {"type": "Property", "value": 1, "sub": {"type": "Property", "value": 2}},
    {"value": 1},
    {"type": "Relationship", "object": "urn:ngsi-ld:Device:1", "observedAt": "2024-01-01T00:00Z"},
    {"type": "Relationship", "object": "not a uri"},
    {"type": "Relationship", "object": NULL_URI},
    {"type": "Relationship", "object": ["urn:ngsi-ld:A:1"]},
    {"type": "Relationship", "object": 3},
    {"type": "Relationship", "object": "urn:a:b", "objectType": "Device"},
    {"type": "GeoProperty", "value": POINT, "observedAt": "2024-01-01T00:00:00Z"},
    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [200, 0]}},
    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2, 3, 4]}},
    {
        "type": "GeoProperty",
        "value": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]},
    },
    {"type": "GeoProperty", "value": {"type": "Nowhere"}},
    {"type": "GeoProperty", "value": "here"},
    {"type": "GeoProperty", "value": NULL_URI},
    {"type": "LanguageProperty", "languageMap": {"en": "x"}},
    {"type": "Point", "coordinates": [1, 2]},
    {"type": ["Property"], "value": 1},
    {"type": 3, "value": 1},
    {"type": "Unknown", "value": 1},
    [{"type": "Property", "value": 1}, {"type": "Property", "value": 2, "datasetId": "urn:a:b"}],
    5,
    "text",
    NULL_URI,
    {"type": "Relationship", "object": "urn:ngsi-ld:Device:1", "unitCode": "CEL"},
    {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}, "unitCode": "MTR"},
]


def _outcome(iri: str, raw: Any, budget: Budget, flags: dict[str, bool]) -> Any:
    """The instances and what is left of the bounds, or the error (which refuses the body:
    nothing is expanded after it)."""
    try:
        found = expand_attribute(iri, raw, CORE, budget=budget, **flags)
    except NgsiLdError as exc:
        return type(exc).__name__, exc.detail
    return found, budget.attrs_left, budget.items_left


def _both(iri: str, raw: Any, flags: dict[str, bool], attrs: int = 10) -> tuple[Any, Any]:
    """(plain path, general path) outcomes of expanding raw as attribute iri."""
    plain = _outcome(iri, raw, Budget(attrs=attrs), flags)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(entity, "_plain_instance", lambda *args: None)
        general = _outcome(iri, raw, Budget(attrs=attrs), flags)
    return plain, general


@pytest.mark.parametrize("flags", FLAGS)
@pytest.mark.parametrize("iri", IRIS)
@pytest.mark.parametrize("raw", INSTANCES, ids=range(len(INSTANCES)))
def test_the_plain_path_answers_as_the_general_one(
    raw: Any, iri: str, flags: dict[str, bool]
) -> None:
    plain, general = _both(iri, raw, flags)
    assert plain == general


def test_the_plain_path_takes_the_commonest_instances() -> None:
    """Not a path no body takes: the bench entity's every attribute goes through it."""
    taken = []
    original = entity._plain_instance

    def counted(*args: Any) -> Any:
        found = original(*args)
        taken.append(found is not None)
        return found

    body = {
        "id": "urn:ngsi-ld:BenchSensor:1",
        "type": "BenchSensor",
        **{n: raw for n, raw in zip("abcde", INSTANCES[:4], strict=False)},
        "refDevice": INSTANCES[21],
        "location": INSTANCES[27],
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(entity, "_plain_instance", counted)
        expand_entity(body, CORE)
    assert taken == [True] * 6


def test_the_plain_path_keeps_the_attribute_bound() -> None:
    """An instance past the bound is refused by the plain path as by the general one."""
    plain, general = _both(IRIS[0], INSTANCES[0], {}, attrs=0)
    assert plain == general
    assert plain[0] == "TooLarge"


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(["ok", NULL_URI, "urn:ngsi-ld:A:1", "2024-01-01T00:00:00Z", "x y"]),
)
members = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["Property", "Relationship", "GeoProperty", "Point", "X"]),
        "value": st.one_of(json_scalars, st.just(POINT), st.lists(json_scalars, max_size=2)),
        "object": json_scalars,
        "observedAt": json_scalars,
        "unitCode": json_scalars,
        "datasetId": json_scalars,
        "since": st.just({"type": "Property", "value": 1}),
    },
)


@settings(max_examples=300, deadline=None)
@given(members, st.sampled_from(IRIS), st.sampled_from(FLAGS))
def test_generated_instances_get_the_same_answer(
    raw: dict[str, Any], iri: str, flags: dict[str, bool]
) -> None:
    plain, general = _both(iri, raw, flags)
    assert plain == general

"""Temporal API behaviours the ETSI conformance suite checks (clauses 5.7.3, 5.7.4, 6.3.10-12):
query selection, temporal pagination with Content-Range, representations per attribute type,
aggregation output, pick/omit, datasetId, q and geoQ over the history, and error types."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, JSONLD, problem

T = f"{BASE}/temporal/entities"
QUERY = f"{BASE}/temporal/entityOperations/query"
LIMIT = 3  # instances of one attribute a page holds in these tests
V1 = "urn:ngsi-ld:Vehicle:v1"
V2 = "urn:ngsi-ld:Vehicle:v2"
BUS = "urn:ngsi-ld:Bus:b1"


@pytest.fixture
def app(db_path: Path) -> Iterator[Starlette]:
    """A hub whose temporal pages hold LIMIT instances per attribute."""
    yield create_app(Settings(db=str(db_path), context_timeout=2.0, temporal_limit=LIMIT))


def at(hour: int, minute: int = 0, day: int = 1) -> str:
    return f"2024-01-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def prop(value: Any, when: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": when, **extra}


def vehicle(eid: str, day: int = 1, typ: str = "Vehicle") -> dict[str, Any]:
    """speed at 12:03, 12:05, 12:07 and fuelLevel at 12:03, 13:05, 14:07 of one day."""
    return {
        "id": eid,
        "type": typ,
        "speed": [prop(v, at(12, m, day)) for v, m in ((120, 3), (80, 5), (100, 7))],
        "fuelLevel": [
            prop(v, at(h, m, day)) for v, h, m in ((67, 12, 3), (53, 13, 5), (40, 14, 7))
        ],
    }


async def post(client: httpx.AsyncClient, entity: dict[str, Any]) -> None:
    resp = await client.post(T, json=entity)
    assert resp.status_code == 201, resp.text


async def retrieve(
    client: httpx.AsyncClient, eid: str = V1, status: int = 200, **params: str
) -> httpx.Response:
    resp = await client.get(f"{T}/{eid}", params=params)
    assert resp.status_code == status, f"{params}: {resp.status_code} {resp.text}"
    return resp


async def query(client: httpx.AsyncClient, status: int = 200, **params: str) -> httpx.Response:
    resp = await client.get(T, params=params)
    assert resp.status_code == status, f"{params}: {resp.status_code} {resp.text}"
    return resp


def values(attr: Any) -> list[Any]:
    return [i["value"] for i in attr]


@pytest.fixture
async def fleet(client: httpx.AsyncClient) -> None:
    """Two vehicles (August 1st and 2nd) and a bus."""
    await post(client, vehicle(V1, day=1))
    await post(client, vehicle(V2, day=2))
    await post(client, vehicle(BUS, day=1, typ="Bus"))


# -- query selection ---------------------------------------------------------------------------


async def test_query_returns_only_entities_with_instances_in_the_window(
    client: httpx.AsyncClient, fleet: None
) -> None:
    body = (await query(client, type="Vehicle", timerel="after", timeAt=at(0, day=2))).json()
    assert [e["id"] for e in body] == [V2], body
    body = (
        await query(client, type="Vehicle,Bus", timerel="before", timeAt=at(12, 4), count="true")
    ).json()
    assert sorted(e["id"] for e in body) == [BUS, V1], body
    for entity in body:
        assert values(entity["speed"]) == [120] and values(entity["fuelLevel"]) == [67], entity


async def test_results_count_and_limit(client: httpx.AsyncClient, fleet: None) -> None:
    resp = await query(client, type="Vehicle,Bus", limit="1", count="true")
    assert len(resp.json()) == 1 and resp.headers["NGSILD-Results-Count"] == "3", resp.headers
    resp = await query(client, type="Vehicle", limit="5", offset="1", count="true")
    assert [e["id"] for e in resp.json()] == [V2] and resp.headers["NGSILD-Results-Count"] == "2"


async def test_post_query_carries_temporal_q(client: httpx.AsyncClient, fleet: None) -> None:
    resp = await client.post(
        QUERY,
        json={
            "type": "Query",
            "entities": [{"type": "Vehicle"}, {"type": "Bus"}],
            "attrs": ["speed"],
            "temporalQ": {"timerel": "between", "timeAt": at(12, 4), "endTimeAt": at(12, 6)},
        },
    )
    assert resp.status_code == 200, resp.text
    body = {e["id"]: e for e in resp.json()}
    assert sorted(body) == [BUS, V1], body
    assert values(body[V1]["speed"]) == [80] and "fuelLevel" not in body[V1]


async def test_q_matches_any_instance_and_returns_the_whole_evolution(
    client: httpx.AsyncClient, fleet: None
) -> None:
    await post(
        client, {"id": "urn:ngsi-ld:Vehicle:slow", "type": "Vehicle", "speed": prop(30, at(9))}
    )
    body = (await query(client, type="Vehicle", q="speed>110")).json()
    assert sorted(e["id"] for e in body) == [V1, V2], body
    assert all(values(e["speed"]) == [120, 80, 100] for e in body), (
        "all instances, not just matches"
    )
    body = (
        await query(
            client,
            type="Vehicle",
            q="speed>110",
            timerel="between",
            timeAt=at(12, 4),
            endTimeAt=at(23),
        )
    ).json()
    assert body == [], "q only sees the instances inside the time window"


async def test_geo_query_over_the_history_of_a_geoproperty(client: httpx.AsyncClient) -> None:
    moving = {
        "id": V1,
        "type": "Vehicle",
        "location": [
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [2.35, 42.22]},
                "observedAt": at(1),
            },
            {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [-8.5, 41.2]},
                "observedAt": at(2),
            },
        ],
    }
    await post(client, moving)
    await post(client, {"id": V2, "type": "Vehicle", "speed": prop(1, at(1))})
    body = (
        await query(
            client,
            type="Vehicle",
            georel="near;maxDistance==2000",
            geometry="Point",
            coordinates="[-8.503,41.202]",
        )
    ).json()
    assert [e["id"] for e in body] == [V1], body
    assert len(body[0]["location"]) == 2


async def test_a_query_needs_more_than_ids(client: httpx.AsyncClient, fleet: None) -> None:
    problem(await query(client, 400, id=V1, timerel="after", timeAt=at(0)), 400, "BadRequestData")
    problem(await query(client, 400, timerel="after", timeAt=at(0)), 400, "BadRequestData")
    resp = await query(client, local="true", count="true")
    assert resp.headers["NGSILD-Results-Count"] == "3"


# -- retrieval ---------------------------------------------------------------------------------


async def test_unknown_entity_or_attribute_is_404(client: httpx.AsyncClient, fleet: None) -> None:
    problem(await retrieve(client, "urn:ngsi-ld:Vehicle:none", 404), 404, "ResourceNotFound")
    err = problem(
        await retrieve(client, V1, 404, attrs="unknownAttribute"), 404, "ResourceNotFound"
    )
    # it said "temporal entity ... not found", though the entity exists
    assert "no instance of unknownAttribute" in err["detail"], err
    none = await retrieve(client, "urn:ngsi-ld:Vehicle:none", 404, attrs="unknownAttribute")
    assert "not found" in problem(none, 404, "ResourceNotFound")["detail"]
    aggr = {"options": "aggregatedValues", "aggrMethods": "totalCount", "attrs": "unknownAttribute"}
    err = problem(await retrieve(client, V1, 404, **aggr), 404, "ResourceNotFound")
    assert "no instance of" in err["detail"], err


async def test_empty_window_still_returns_the_entity(
    client: httpx.AsyncClient, fleet: None
) -> None:
    body = (await retrieve(client, timerel="after", timeAt=at(0, day=20))).json()
    assert body["id"] == V1 and "speed" not in body, body


async def test_last_n_per_attribute(client: httpx.AsyncClient, fleet: None) -> None:
    body = (await retrieve(client, lastN="2")).json()
    assert values(body["speed"]) == [80, 100] and values(body["fuelLevel"]) == [53, 40], body


async def test_timeproperty_selects_the_time_that_is_filtered(
    client: httpx.AsyncClient, fleet: None
) -> None:
    body = (
        await retrieve(
            client, timeproperty="createdAt", timerel="after", timeAt="2000-01-01T00:00:00Z"
        )
    ).json()
    assert len(body["speed"]) == 3, "every instance was created after 2000"
    body = (await retrieve(client, timeproperty="deletedAt")).json()
    assert "speed" not in body, "nothing was deleted"
    problem(await retrieve(client, V1, 400, timeproperty="expiresAt"), 400, "BadRequestData")


# -- temporal pagination (6.3.10) --------------------------------------------------------------


async def test_forward_pagination_cuts_every_attribute_at_one_time(
    client: httpx.AsyncClient,
) -> None:
    """speed at minutes 1..5, fuelLevel at minutes 3..7: three of each fit, cut at 12:03."""
    entity = {
        "id": V1,
        "type": "Vehicle",
        "speed": [prop(i, at(12, i)) for i in range(1, 6)],
        "fuelLevel": [prop(i, at(12, i)) for i in range(3, 8)],
    }
    await post(client, entity)
    resp = await retrieve(client, status=206)
    body = resp.json()
    assert values(body["speed"]) == [1, 2, 3], body
    assert values(body["fuelLevel"]) == [3], "fuelLevel is cut where speed's page ends"
    assert resp.headers["Content-Range"] == f"date-time {at(12, 1)}-{at(12, 3)}/*"
    resp = await retrieve(client, status=206, timerel="after", timeAt=at(0))
    assert resp.headers["Content-Range"] == f"date-time {at(0)}-{at(12, 3)}/*", (
        "range starts at timeAt"
    )


async def test_backward_pagination_with_last_n(client: httpx.AsyncClient) -> None:
    entity = {
        "id": V1,
        "type": "Vehicle",
        "speed": [prop(i, at(12, i)) for i in range(1, 6)],
        "fuelLevel": [prop(i, at(12, i)) for i in range(3, 8)],
    }
    await post(client, entity)
    resp = await retrieve(client, status=206, lastN="5")
    body = resp.json()
    assert values(body["fuelLevel"]) == [5, 6, 7], body
    assert values(body["speed"]) == [5], "speed is cut where fuelLevel's page ends"
    assert resp.headers["Content-Range"] == f"date-time {at(12, 7)}-{at(12, 5)}/5"
    resp = await retrieve(client, status=206, lastN="5", timerel="before", timeAt=at(13))
    assert resp.headers["Content-Range"] == f"date-time {at(13)}-{at(12, 5)}/5"
    resp = await retrieve(client, lastN="3")
    assert "Content-Range" not in resp.headers, "lastN within the page size is a full answer"


async def test_pagination_keeps_emptied_attributes(client: httpx.AsyncClient) -> None:
    entity = {
        "id": V1,
        "type": "Vehicle",
        "speed": [prop(i, at(1, i)) for i in range(5)],
        "fuelLevel": [prop(i, at(2, i)) for i in range(5)],
    }
    await post(client, entity)
    body = (await retrieve(client, status=206)).json()
    assert body["fuelLevel"] == [] and len(body["speed"]) == LIMIT, body
    tv = (await retrieve(client, status=206, options="temporalValues")).json()
    assert tv["fuelLevel"] == {"type": "Property", "values": []}, tv


async def test_query_pagination_has_one_range_for_all_entities(client: httpx.AsyncClient) -> None:
    await post(
        client, {"id": V1, "type": "Vehicle", "speed": [prop(i, at(1, i)) for i in range(5)]}
    )
    await post(client, vehicle(V2, day=2))
    resp = await query(client, 206, type="Vehicle")
    body = {e["id"]: e for e in resp.json()}
    assert values(body[V1]["speed"]) == [0, 1, 2] and body[V2]["speed"] == [], body
    assert resp.headers["Content-Range"] == f"date-time {at(1, 0)}-{at(1, 2)}/*"


# -- representations ---------------------------------------------------------------------------


async def test_temporal_values_per_attribute_type(client: httpx.AsyncClient) -> None:
    entity = {
        "id": V1,
        "type": "Vehicle",
        "speed": prop(1, at(1)),
        "isParkedIn": {
            "type": "Relationship",
            "object": "urn:ngsi-ld:Parking:p",
            "observedAt": at(1),
        },
        "street": {
            "type": "LanguageProperty",
            "languageMap": {"fr": "Grand Place"},
            "observedAt": at(1),
        },
        "category": {"type": "VocabProperty", "vocab": "monument", "observedAt": at(1)},
        "config": {"type": "JsonProperty", "json": {"value": 120}, "observedAt": at(1)},
        "path": {"type": "ListProperty", "valueList": [1, 2], "observedAt": at(1)},
    }
    await post(client, entity)
    for params in (
        {"options": "temporalValues"},
        {"format": "temporalValues"},
        {"format": "simplified"},
    ):
        body = (await retrieve(client, **params)).json()
        assert body["speed"] == {"type": "Property", "values": [[1, at(1)]]}, body
        assert body["isParkedIn"] == {
            "type": "Relationship",
            "objects": [["urn:ngsi-ld:Parking:p", at(1)]],
        }
        assert body["street"] == {
            "type": "LanguageProperty",
            "languageMaps": [[{"languageMap": {"fr": "Grand Place"}}, at(1)]],
        }
        assert body["category"] == {
            "type": "VocabProperty",
            "vocabs": [[{"vocab": "monument"}, at(1)]],
        }
        assert body["config"] == {
            "type": "JsonProperty",
            "jsons": [[{"json": {"value": 120}}, at(1)]],
        }
        assert body["path"] == {
            "type": "ListProperty",
            "valueLists": [[{"valueList": [1, 2]}, at(1)]],
        }


async def test_temporal_values_group_by_dataset_id_and_filter(client: httpx.AsyncClient) -> None:
    entity = {
        "id": V1,
        "type": "Vehicle",
        "speed": [
            prop(1, at(1)),
            prop(2, at(2), datasetId="urn:ds:a"),
            prop(3, at(3), datasetId="urn:ds:b"),
        ],
    }
    await post(client, entity)
    body = (await retrieve(client, options="temporalValues")).json()
    by_ds = {rec.get("datasetId"): [v[0] for v in rec["values"]] for rec in body["speed"]}
    assert by_ds == {None: [1], "urn:ds:a": [2], "urn:ds:b": [3]}, body
    body = (await retrieve(client, datasetId="urn:ds:a,@none")).json()
    assert values(body["speed"]) == [1, 2], body
    body = (await query(client, type="Vehicle", datasetId="urn:ds:zzz")).json()
    assert body == [], "no instance of that datasetId: no entity"


async def test_normalized_instances_and_sys_attrs(client: httpx.AsyncClient, fleet: None) -> None:
    body = (await retrieve(client, options="sysAttrs", attrs="speed")).json()
    for inst in body["speed"]:
        assert (
            inst["instanceId"].startswith("urn:") and "createdAt" in inst and "modifiedAt" in inst
        )
    assert "createdAt" in body and "modifiedAt" in body
    assert "createdAt" not in (await retrieve(client)).json()


async def test_format_wins_over_options_and_bad_values_are_invalid_requests(
    client: httpx.AsyncClient, fleet: None
) -> None:
    body = (
        await retrieve(
            client, format="temporalValues", options="aggregatedValues", aggrMethods="sum"
        )
    ).json()
    assert "values" in body["speed"] and "sum" not in body["speed"], body
    for params in (
        {"format": "invalidFormat"},
        {"options": "invalidOptions"},
        {"options": "temporalValues,invalidOptions"},
    ):
        problem(await query(client, 400, type="Vehicle", **params), 400, "InvalidRequest")


async def test_json_ld_responses_embed_the_context(client: httpx.AsyncClient, fleet: None) -> None:
    resp = await client.get(f"{T}/{V1}", headers={"Accept": JSONLD})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(JSONLD)
    assert "@context" in resp.json() and "link" not in resp.headers
    resp = await client.get(f"{T}/{V1}")
    assert "@context" not in resp.json() and "rel=" in resp.headers["link"]


# -- pick / omit -------------------------------------------------------------------------------


async def test_pick_and_omit(client: httpx.AsyncClient, fleet: None) -> None:
    body = (await retrieve(client, pick="speed")).json()
    assert list(body) == ["speed"], body
    body = (await retrieve(client, pick="id,speed")).json()
    assert sorted(body) == ["id", "speed"], body
    body = (await retrieve(client, omit="type,speed")).json()
    assert sorted(body) == ["fuelLevel", "id"], body
    body = (await query(client, type="Vehicle,Bus", pick="id")).json()
    assert sorted(e["id"] for e in body) == [BUS, V1, V2] and all(len(e) == 1 for e in body)


async def test_pick_omit_conflicts_and_empty_results(
    client: httpx.AsyncClient, fleet: None
) -> None:
    for params in (
        {"pick": "speed", "omit": "speed"},
        {"pick": "speed", "attrs": "fuelLevel"},
        {"omit": "speed", "attrs": "fuelLevel"},
    ):
        problem(await retrieve(client, V1, 400, **params), 400, "BadRequestData")
    problem(await retrieve(client, V1, 404, pick="unknown"), 404, "ResourceNotFound")
    problem(
        await retrieve(client, V1, 404, omit="id,type,speed,fuelLevel"), 404, "ResourceNotFound"
    )


# -- aggregation -------------------------------------------------------------------------------


async def test_aggregated_values_shape_and_periods(client: httpx.AsyncClient, fleet: None) -> None:
    body = (
        await retrieve(
            client, format="aggregatedValues", aggrMethods="avg,max", aggrPeriodDuration="PT1H"
        )
    ).json()
    assert body["fuelLevel"] == {
        "type": "Property",
        "avg": [
            [67.0, at(12, 3), at(13, 3)],
            [53.0, at(13, 3), at(14, 3)],
            [40.0, at(14, 3), at(15, 3)],
        ],
        "max": [
            [67.0, at(12, 3), at(13, 3)],
            [53.0, at(13, 3), at(14, 3)],
            [40.0, at(14, 3), at(15, 3)],
        ],
    }, body
    assert body["speed"]["avg"] == [[100.0, at(12, 3), at(13, 3)]], body
    body = (
        await retrieve(
            client, options="aggregatedValues", aggrMethods="min,max", aggrPeriodDuration="P1D"
        )
    ).json()
    assert body["speed"]["min"] == [[80.0, at(12, 3), at(12, 3, day=2)]], body


async def test_aggregated_values_in_a_query_follow_time_at(
    client: httpx.AsyncClient, fleet: None
) -> None:
    body = (
        await query(
            client,
            type="Vehicle",
            format="aggregatedValues",
            aggrMethods="totalCount,sum",
            attrs="speed",
            timerel="between",
            timeAt=at(0),
            endTimeAt=at(0, day=3),
            aggrPeriodDuration="P1D",
        )
    ).json()
    by_id = {e["id"]: e["speed"] for e in body}
    assert by_id[V1]["totalCount"] == [[3, at(0), at(0, day=2)]], by_id
    assert by_id[V2]["sum"] == [[300.0, at(0, day=2), at(0, day=3)]], by_id


@pytest.mark.parametrize(
    "params",
    [
        {"aggrMethods": "median"},
        {"aggrMethods": "sum", "aggrPeriodDuration": "1 hour"},
        {},
    ],
)
async def test_bad_aggregation_is_400(
    client: httpx.AsyncClient, fleet: None, params: dict[str, str]
) -> None:
    problem(
        await retrieve(client, V1, 400, format="aggregatedValues", **params), 400, "BadRequestData"
    )


# -- writes ------------------------------------------------------------------------------------


async def test_append_keeps_the_types(client: httpx.AsyncClient, fleet: None) -> None:
    resp = await client.post(f"{T}/{V1}/attrs", json={"speed": prop(1, at(20))})
    assert resp.status_code == 204, resp.text
    body = (await retrieve(client, attrs="speed", lastN="1")).json()
    assert body["type"] == "Vehicle" and values(body["speed"]) == [1], body


async def test_delete_of_the_collection_is_not_allowed(client: httpx.AsyncClient) -> None:
    problem(await client.delete(f"{T}/"), 405, "MethodNotAllowed")

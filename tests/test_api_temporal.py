"""/temporal: create, retrieve (timerel, lastN, temporalValues, aggregatedValues), modify, delete."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, create, get_temporal, instance_values, problem

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Meter:m1"
D1 = "2024-01-01T00:00:00Z"
D1_NOON = "2024-01-01T12:00:00Z"
D2 = "2024-01-02T00:00:00Z"
D2_NOON = "2024-01-02T12:00:00Z"
D3 = "2024-01-03T00:00:00Z"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reading(value: Any, at: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


def meter(eid: str = EID, typ: str = "Meter") -> dict[str, Any]:
    return {
        "id": eid,
        "type": typ,
        "power": [
            reading(10, D1, unitCode="KWT"),
            reading(20, D1_NOON, unitCode="KWT"),
            reading(20, D2, unitCode="KWT"),
            reading(40, D2_NOON, unitCode="KWT"),
        ],
        "state": [reading("on", D1), reading("off", D2)],
    }


@pytest.fixture
async def history(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.post(T, json=meter())
    assert resp.status_code == 201, resp.text
    return meter()


async def temporal(client: httpx.AsyncClient, eid: str = EID, **params: str) -> dict[str, Any]:
    return await get_temporal(client, eid, **params)


values = instance_values


# -- create / retrieve -------------------------------------------------------------------------


async def test_create_is_201_then_204(client: httpx.AsyncClient) -> None:
    resp = await client.post(T, json=meter())
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{T}/{EID}", resp.headers
    resp = await client.post(T, json={"id": EID, "type": "Meter", "power": [reading(50, D3)]})
    assert resp.status_code == 204, resp.text
    body = await temporal(client)
    assert values(body, "power") == [10, 20, 20, 40, 50]


async def test_normalized_representation(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(client)
    assert body["id"] == EID and body["type"] == "Meter", body
    power = body["power"]
    assert [i["value"] for i in power] == [10, 20, 20, 40], "instances come oldest first"
    for inst in power:
        assert inst["type"] == "Property"
        assert inst["unitCode"] == "KWT"
        assert isinstance(inst["instanceId"], str) and ":" in inst["instanceId"], inst
    assert len({i["instanceId"] for i in power}) == 4, "instanceIds are unique"
    assert [ts(i["observedAt"]) for i in power] == [ts(D1), ts(D1_NOON), ts(D2), ts(D2_NOON)]
    assert values(body, "state") == ["on", "off"]


async def test_timerel(client: httpx.AsyncClient, history: Any) -> None:
    before = await temporal(client, timerel="before", timeAt="2024-01-01T18:00:00Z")
    assert values(before, "power") == [10, 20], before
    after = await temporal(client, timerel="after", timeAt="2024-01-01T18:00:00Z")
    assert values(after, "power") == [20, 40], after
    assert values(after, "state") == ["off"]
    between = await temporal(
        client, timerel="between", timeAt="2024-01-01T06:00:00Z", endTimeAt="2024-01-02T06:00:00Z"
    )
    assert values(between, "power") == [20, 20], between
    none = await temporal(client, timerel="after", timeAt="2030-01-01T00:00:00Z")
    assert values(none, "power") == [], none


async def test_timerel_with_offset_timestamps(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(client, timerel="before", timeAt="2024-01-01T13:00:00+02:00")
    assert values(body, "power") == [10], "11:00Z excludes the noon reading"


async def test_attrs_filter(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(client, attrs="state")
    assert "power" not in body and values(body, "state") == ["on", "off"], body


async def test_last_n(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(client, lastN="2")
    assert values(body, "power") == [20, 40], body
    assert values(body, "state") == ["on", "off"]
    body = await temporal(client, lastN="1", timerel="before", timeAt="2024-01-02T06:00:00Z")
    assert values(body, "power") == [20], body


async def test_timeproperty(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(
        client, timeproperty="modifiedAt", timerel="after", timeAt="2020-01-01T00:00:00Z"
    )
    assert len(values(body, "power")) == 4, "all were written after 2020"
    body = await temporal(
        client, timeproperty="createdAt", timerel="before", timeAt="2020-01-01T00:00:00Z"
    )
    assert values(body, "power") == []


async def test_temporal_values(client: httpx.AsyncClient, history: Any) -> None:
    spellings = ("temporalValues", "simplified", "keyValues")  # format= as options= takes them
    for params in [*({"format": f} for f in spellings), *({"options": f} for f in spellings)]:
        body = await temporal(client, **params)
        power = body["power"]
        assert power["type"] == "Property", power
        assert [v[0] for v in power["values"]] == [10, 20, 20, 40], power
        assert [ts(v[1]) for v in power["values"]] == [ts(D1), ts(D1_NOON), ts(D2), ts(D2_NOON)]
        assert [v[0] for v in body["state"]["values"]] == ["on", "off"]


async def test_temporal_values_of_a_relationship(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Meter",
        "feeds": [
            {"type": "Relationship", "object": "urn:ngsi-ld:Home:1", "observedAt": D1},
            {"type": "Relationship", "object": "urn:ngsi-ld:Home:2", "observedAt": D2},
        ],
    }
    assert (await client.post(T, json=body)).status_code == 201
    got = await temporal(client, format="temporalValues")
    assert got["feeds"]["type"] == "Relationship", got
    assert [v[0] for v in got["feeds"]["objects"]] == ["urn:ngsi-ld:Home:1", "urn:ngsi-ld:Home:2"]


def _close(a: Any, b: float) -> bool:
    return isinstance(a, int | float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def test_aggregated_values_over_the_whole_range(
    client: httpx.AsyncClient, history: Any
) -> None:
    body = await temporal(
        client,
        options="aggregatedValues",
        aggrMethods="totalCount,distinctCount,sum,avg,min,max,stddev,sumsq",
        attrs="power",
    )
    power = body["power"]
    assert power["type"] == "Property", power
    expected = {
        "totalCount": 4,
        "distinctCount": 3,
        "sum": 90,
        "avg": 22.5,
        "min": 10,
        "max": 40,
        "sumsq": 2500,
    }
    for method, want in expected.items():
        assert len(power[method]) == 1, f"{method}: one period without aggrPeriodDuration: {power}"
        got = power[method][0][0]
        assert _close(got, want), f"{method}: expected {want}, got {got}"
    stddev = power["stddev"][0][0]
    # population (10.897) or sample (12.583) standard deviation of 10, 20, 20, 40
    assert _close(stddev, math.sqrt(118.75)) or _close(stddev, math.sqrt(475 / 3)), stddev


async def test_aggregated_values_per_day(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(
        client,
        format="aggregatedValues",
        aggrMethods="totalCount,sum,avg,min,max,sumsq,stddev,distinctCount",
        aggrPeriodDuration="P1D",
        timerel="between",
        timeAt=D1,
        endTimeAt=D3,
        attrs="power",
    )
    power = body["power"]
    expected = {
        "totalCount": [2, 2],
        "distinctCount": [2, 2],
        "sum": [30, 60],
        "avg": [15, 30],
        "min": [10, 20],
        "max": [20, 40],
        "sumsq": [500, 2000],
    }
    for method, want in expected.items():
        got = [b[0] for b in power[method]]
        assert len(got) == 2 and all(_close(g, w) for g, w in zip(got, want, strict=True)), (
            f"{method}: expected {want}, got {power[method]}"
        )
    starts = [ts(b[1]) for b in power["sum"]]
    ends = [ts(b[2]) for b in power["sum"]]
    assert starts == [ts(D1), ts(D2)], power["sum"]
    assert ends == [ts(D2), ts(D3)], power["sum"]
    sd = [b[0] for b in power["stddev"]]
    assert (_close(sd[0], 5) and _close(sd[1], 10)) or (
        _close(sd[0], math.sqrt(50)) and _close(sd[1], math.sqrt(200))
    ), sd


async def test_aggregated_values_per_twelve_hours(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(
        client,
        options="aggregatedValues",
        aggrMethods="max",
        aggrPeriodDuration="PT12H",
        timerel="after",
        timeAt=D1,
        attrs="power",
    )
    assert [b[0] for b in body["power"]["max"]] == [10, 20, 20, 40], body


async def test_aggregated_count_of_strings(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(
        client, options="aggregatedValues", aggrMethods="totalCount,distinctCount", attrs="state"
    )
    assert body["state"]["totalCount"][0][0] == 2, body
    assert body["state"]["distinctCount"][0][0] == 2, body


@pytest.mark.parametrize(
    "params",
    [
        {"options": "aggregatedValues"},
        {"options": "aggregatedValues", "aggrMethods": "median"},
        {"options": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": "1 day"},
        {"options": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": "P"},
        {"timerel": "before"},
        {"timerel": "between", "timeAt": D1},
        {"timerel": "between", "timeAt": D2, "endTimeAt": D1},
        {"timerel": "during", "timeAt": D1},
        {"timerel": "after", "timeAt": "yesterday"},
        {"timeAt": D1},
        {"timeproperty": "unitCode"},
        {"lastN": "0"},
        {"lastN": "many"},
        {"format": "tabular"},
    ],
)
async def test_bad_temporal_parameters_are_400(
    client: httpx.AsyncClient, history: Any, params: dict[str, str]
) -> None:
    bad_request(await client.get(f"{T}/{EID}", params=params))


async def test_unknown_temporal_entity_is_404(client: httpx.AsyncClient, history: Any) -> None:
    problem(await client.get(f"{T}/urn:ngsi-ld:Meter:none"), 404, "ResourceNotFound")


async def test_bad_temporal_entity_id_is_400(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{T}/not-a-uri"), 400, "BadRequestData")


# -- query -------------------------------------------------------------------------------------


async def test_query_temporal_entities(client: httpx.AsyncClient, history: Any) -> None:
    assert (await client.post(T, json=meter("urn:ngsi-ld:Meter:m2"))).status_code == 201
    assert (await client.post(T, json=meter("urn:ngsi-ld:Pump:p1", "Pump"))).status_code == 201
    for path in (T, T + "/"):
        resp = await client.get(
            path, params={"type": "Meter", "timerel": "after", "timeAt": "2024-01-01T18:00:00Z"}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert sorted(e["id"] for e in body) == [EID, "urn:ngsi-ld:Meter:m2"], body
        assert all(values(e, "power") == [20, 40] for e in body), body
    resp = await client.get(
        T,
        params={
            "type": "Meter,Pump",
            "count": "true",
            "limit": "1",
            "timerel": "after",
            "timeAt": D1,
        },
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()) == 1 and resp.headers["NGSILD-Results-Count"] == "3", resp.headers


async def test_query_temporal_with_q_on_current_state(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Meter", "power": reading(5, D1)})
    await create(client, {"id": "urn:ngsi-ld:Meter:m2", "type": "Meter", "power": reading(50, D1)})
    resp = await client.get(T, params={"type": "Meter", "q": "power>10"})
    assert resp.status_code == 200, resp.text
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:Meter:m2"]


async def test_query_temporal_needs_a_filter(client: httpx.AsyncClient, history: Any) -> None:
    problem(await client.get(T), 400, "BadRequestData")


async def test_post_temporal_query(client: httpx.AsyncClient, history: Any) -> None:
    assert (await client.post(T, json=meter("urn:ngsi-ld:Pump:p1", "Pump"))).status_code == 201
    resp = await client.post(
        f"{BASE}/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"type": "Meter"}],
            "attrs": ["power"],
            "temporalQ": {"timerel": "before", "timeAt": "2024-01-01T18:00:00Z"},
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [e["id"] for e in body] == [EID], body
    assert values(body[0], "power") == [10, 20] and "state" not in body[0], body
    resp = await client.post(
        f"{BASE}/temporal/entityOperations/query",
        params={"format": "temporalValues"},
        json={"type": "Query", "entities": [{"type": "Pump"}], "temporalQ": {"lastN": 1}},
    )
    assert resp.status_code == 200, resp.text
    assert [v[0] for v in resp.json()[0]["power"]["values"]] == [40], resp.json()


@pytest.mark.parametrize("methods", [["sum", "max"], "sum,max"])
async def test_post_temporal_query_aggregates_from_the_body(
    client: httpx.AsyncClient, history: Any, methods: Any
) -> None:
    """aggrMethods and aggrPeriodDuration in temporalQ, as in the GET form's parameters."""
    body = {
        "type": "Query",
        "entities": [{"type": "Meter"}],
        "attrs": ["power"],
        "temporalQ": {"aggrMethods": methods, "aggrPeriodDuration": "P1D"},
    }
    resp = await client.post(
        f"{BASE}/temporal/entityOperations/query",
        params={"options": "aggregatedValues"},
        json=body,
    )
    assert resp.status_code == 200, resp.text
    power = resp.json()[0]["power"]
    assert sum(p[0] for p in power["sum"]) == 90 and len(power["sum"]) >= 2, power
    body["temporalQ"] = {"aggrMethods": [1]}
    resp = await client.post(
        f"{BASE}/temporal/entityOperations/query", params={"options": "aggregatedValues"}, json=body
    )
    problem(resp, 400, "BadRequestData")


async def test_post_temporal_query_bad_body_is_400(client: httpx.AsyncClient, history: Any) -> None:
    resp = await client.post(f"{BASE}/temporal/entityOperations/query", json={"entities": []})
    problem(resp, 400, "BadRequestData")


# -- append / modify / delete ------------------------------------------------------------------


async def test_append_attributes(client: httpx.AsyncClient, history: Any) -> None:
    resp = await client.post(
        f"{T}/{EID}/attrs",
        json={"power": [reading(60, D3)], "voltage": reading(230, D3)},
    )
    assert resp.status_code == 204, resp.text
    body = await temporal(client)
    assert values(body, "power") == [10, 20, 20, 40, 60]
    assert values(body, "voltage") == [230]


async def test_append_to_unknown_temporal_entity_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{T}/urn:ngsi-ld:Meter:none/attrs", json={"power": reading(1, D1)})
    problem(resp, 404, "ResourceNotFound")


async def test_modify_one_instance(client: httpx.AsyncClient, history: Any) -> None:
    body = await temporal(client)
    target = body["power"][1]
    resp = await client.patch(
        f"{T}/{EID}/attrs/power/{target['instanceId']}",
        json={"power": reading(21, D1_NOON)},
    )
    assert resp.status_code == 204, resp.text
    after = await temporal(client)
    assert values(after, "power") == [10, 21, 20, 40], after
    assert after["power"][1]["instanceId"] == target["instanceId"], "the instanceId stays"


async def test_modify_instance_with_a_bare_instance_body(
    client: httpx.AsyncClient, history: Any
) -> None:
    iid = (await temporal(client))["power"][3]["instanceId"]
    resp = await client.patch(f"{T}/{EID}/attrs/power/{iid}", json=reading(41, D2_NOON))
    assert resp.status_code == 204, resp.text
    assert values(await temporal(client), "power") == [10, 20, 20, 41]


async def test_modify_instance_merges_and_keeps_created_at(
    client: httpx.AsyncClient, history: Any
) -> None:
    """A PATCH of an instance is a partial update: the members it leaves out (observedAt,
    unitCode) stay, createdAt stays, and filtering by createdAt agrees with the body."""
    before = (await temporal(client, options="sysAttrs"))["power"][0]
    resp = await client.patch(f"{T}/{EID}/attrs/power/{before['instanceId']}", json={"value": 11})
    assert resp.status_code == 204, resp.text
    body = await temporal(client, options="sysAttrs")
    after = next(i for i in body["power"] if i["instanceId"] == before["instanceId"])
    assert after["value"] == 11
    assert (after["observedAt"], after["unitCode"]) == (D1, "KWT"), after
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] > before["modifiedAt"]
    assert body["modifiedAt"] >= after["modifiedAt"], "the temporal entity was modified"
    created = await temporal(
        client, timeproperty="createdAt", timerel="before", timeAt=after["modifiedAt"]
    )
    assert 11 in values(created, "power"), "createdAt did not move, so the filter still finds it"


async def test_modify_instance_with_a_fragment_of_metadata(
    client: httpx.AsyncClient, history: Any
) -> None:
    """{"observedAt": ...} alone was read as an attribute named observedAt: a 400."""
    iid = (await temporal(client))["power"][0]["instanceId"]
    url = f"{T}/{EID}/attrs/power/{iid}"
    moved = "2020-06-01T00:00:00Z"
    for fragment in ({"observedAt": moved}, {"unitCode": "WTT"}):
        resp = await client.patch(url, json=fragment)
        assert resp.status_code == 204, (fragment, resp.text)
    after = next(i for i in (await temporal(client))["power"] if i["instanceId"] == iid)
    assert (after["value"], after["observedAt"], after["unitCode"]) == (10, moved, "WTT"), after


async def test_modify_unknown_instance_is_404(client: httpx.AsyncClient, history: Any) -> None:
    resp = await client.patch(
        f"{T}/{EID}/attrs/power/urn:ngsi-ld:instance:nope", json={"power": reading(1, D1)}
    )
    problem(resp, 404, "ResourceNotFound")


async def test_modify_instance_with_other_attribute_is_400(
    client: httpx.AsyncClient, history: Any
) -> None:
    iid = (await temporal(client))["power"][0]["instanceId"]
    resp = await client.patch(f"{T}/{EID}/attrs/power/{iid}", json={"state": reading("x", D1)})
    problem(resp, 400, "BadRequestData")
    assert values(await temporal(client), "power") == [10, 20, 20, 40]


async def test_delete_one_instance(client: httpx.AsyncClient, history: Any) -> None:
    iid = (await temporal(client))["power"][0]["instanceId"]
    resp = await client.delete(f"{T}/{EID}/attrs/power/{iid}")
    assert resp.status_code == 204, resp.text
    assert values(await temporal(client), "power") == [20, 20, 40]
    problem(await client.delete(f"{T}/{EID}/attrs/power/{iid}"), 404, "ResourceNotFound")


async def test_delete_attribute_history(client: httpx.AsyncClient, history: Any) -> None:
    resp = await client.delete(f"{T}/{EID}/attrs/state")
    assert resp.status_code == 204, resp.text
    body = await temporal(client)
    assert "state" not in body and len(values(body, "power")) == 4, body
    problem(await client.delete(f"{T}/{EID}/attrs/state"), 404, "ResourceNotFound")


async def test_delete_attribute_history_by_dataset(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Meter",
        "power": [
            reading(1, D1),
            reading(2, D1, datasetId="urn:ds:b"),
            reading(3, D2, datasetId="urn:ds:b"),
        ],
    }
    assert (await client.post(T, json=body)).status_code == 201
    resp = await client.delete(f"{T}/{EID}/attrs/power", params={"datasetId": "urn:ds:b"})
    assert resp.status_code == 204, resp.text
    assert values(await temporal(client), "power") == [1]


async def test_delete_attribute_history_delete_all(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Meter",
        "power": [reading(1, D1), reading(2, D1, datasetId="urn:ds:b")],
        "x": reading(0, D1),
    }
    assert (await client.post(T, json=body)).status_code == 201
    resp = await client.delete(f"{T}/{EID}/attrs/power", params={"deleteAll": "true"})
    assert resp.status_code == 204, resp.text
    got = await temporal(client)
    assert "power" not in got and values(got, "x") == [0], got


async def test_delete_temporal_entity(client: httpx.AsyncClient, history: Any) -> None:
    resp = await client.delete(f"{T}/{EID}")
    assert resp.status_code == 204, resp.text
    problem(await client.get(f"{T}/{EID}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{T}/{EID}"), 404, "ResourceNotFound")


# -- entity changes are recorded ---------------------------------------------------------------


async def test_entity_changes_are_recorded(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Meter", "power": reading(1, D1)})
    ops = [
        client.patch(f"{BASE}/entities/{EID}/attrs", json={"power": reading(2, D1_NOON)}),
        client.post(f"{BASE}/entities/{EID}/attrs", json={"power": reading(3, D2)}),
        client.patch(
            f"{BASE}/entities/{EID}/attrs/power", json={"value": 4, "observedAt": D2_NOON}
        ),
        client.patch(f"{BASE}/entities/{EID}", json={"power": reading(5, D3)}),
        client.put(
            f"{BASE}/entities/{EID}",
            json={"type": "Meter", "power": reading(6, "2024-01-04T00:00:00Z")},
        ),
    ]
    for op in ops:
        resp = await op
        assert resp.status_code == 204, resp.text
    body = await temporal(client)
    assert values(body, "power") == [1, 2, 3, 4, 5, 6], body
    assert body["type"] == "Meter"


async def test_partial_updates_that_keep_observed_at_keep_every_value(
    client: httpx.AsyncClient,
) -> None:
    """A partial update keeps the attribute's observedAt, so each change is recorded at that
    same time; none of them may erase the value it changed from (or a batch's)."""
    await create(client, {"id": EID, "type": "Meter", "power": reading(1, D1)})
    for value in (2, 3):
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs/power", json={"value": value})
        assert resp.status_code == 204, resp.text
    resp = await client.post(
        f"{BASE}/entityOperations/upsert",
        params={"options": "update"},
        json=[{"id": EID, "type": "Meter", "power": reading(4, D1)}],
    )
    assert resp.status_code == 204, resp.text
    assert values(await temporal(client), "power") == [1, 2, 3, 4]


async def test_the_temporal_api_corrects_an_observation_sent_again(
    client: httpx.AsyncClient, history: Any
) -> None:
    """Through the temporal API an instance is an observation: sent again for the same time
    (same attribute and datasetId) it replaces the stored one instead of doubling it."""
    resp = await client.post(f"{T}/{EID}/attrs", json={"power": reading(11, D1)})
    assert resp.status_code == 204, resp.text
    assert values(await temporal(client), "power") == [11, 20, 20, 40]


async def test_entity_without_observed_at_is_recorded_by_modified_at(
    client: httpx.AsyncClient,
) -> None:
    await create(client, {"id": EID, "type": "Meter", "count": 1})
    await client.patch(f"{BASE}/entities/{EID}/attrs", json={"count": 2})
    body = await temporal(
        client, timeproperty="modifiedAt", timerel="after", timeAt="2020-01-01T00:00:00Z"
    )
    assert values(body, "count") == [1, 2], body
    tv = await temporal(client, format="temporalValues")
    assert [v[0] for v in tv["count"]["values"]] == [1, 2], tv
    assert all(v[1] for v in tv["count"]["values"]), "each value carries a time"


async def test_instances_without_observed_at_are_aggregated_at_modified_at(
    client: httpx.AsyncClient,
) -> None:
    """Entities written without observedAt (most of them) aggregate as temporalValues shows
    them: at their modifiedAt, which is where a timerel on observedAt finds them too."""
    await create(client, {"id": EID, "type": "Meter", "count": 1})
    for n in (2, 4):
        await client.patch(f"{BASE}/entities/{EID}/attrs", json={"count": n})
    await client.post(f"{T}/{EID}/attrs", json={"count": reading(10, D1)})
    agg = await temporal(client, options="aggregatedValues", aggrMethods="totalCount,sum")
    assert [v[0] for v in agg["count"]["totalCount"]] == [4], agg
    assert [v[0] for v in agg["count"]["sum"]] == [17], agg
    daily = await temporal(
        client, options="aggregatedValues", aggrMethods="sum", aggrPeriodDuration="P1D"
    )
    assert sum(v[0] for v in daily["count"]["sum"]) == 17, daily
    assert daily["count"]["sum"][0][0] == 10, "the observed instance is in its own day"
    windowed = await temporal(
        client,
        options="aggregatedValues",
        aggrMethods="sum",
        timerel="after",
        timeAt="2000-01-01T00:00:00Z",
    )
    assert [v[0] for v in windowed["count"]["sum"]] == [17], windowed
    observed_only = await temporal(
        client,
        options="aggregatedValues",
        aggrMethods="sum",
        timerel="before",
        timeAt="2025-01-01T00:00:00Z",
    )
    assert [v[0] for v in observed_only["count"]["sum"]] == [10], observed_only


async def test_temporal_create_validates_like_create(client: httpx.AsyncClient) -> None:
    problem(await client.post(T, json={"id": "no uri", "type": "Meter"}), 400, "BadRequestData")
    problem(await client.post(T, json={"id": EID}), 400, "BadRequestData")
    problem(
        await client.post(T, json={"id": EID, "type": "Meter", "p": [reading(1, "noon")]}),
        400,
        "BadRequestData",
    )
    problem(await client.get(f"{T}/{EID}"), 404, "ResourceNotFound")
    resp = await client.post(T, content=b"{", headers={"Content-Type": "application/json"})
    problem(resp, 400, "InvalidRequest")


async def test_aggregated_values_keep_each_attributes_own_type(client: httpx.AsyncClient) -> None:
    body = {
        "id": "urn:ngsi-ld:Meter:typed",
        "type": "Meter",
        "power": [reading(10, D1), reading(20, D2)],
        "feeds": [
            {"type": "Relationship", "object": "urn:ngsi-ld:Line:a", "observedAt": D1},
            {"type": "Relationship", "object": "urn:ngsi-ld:Line:b", "observedAt": D2},
        ],
    }
    assert (await client.post(T, json=body)).status_code == 201
    got = await temporal(
        client, "urn:ngsi-ld:Meter:typed", format="aggregatedValues", aggrMethods="totalCount"
    )
    assert got["power"]["type"] == "Property", got
    assert got["feeds"]["type"] == "Relationship", got
    assert got["power"]["totalCount"][0][0] == 2 and got["feeds"]["totalCount"][0][0] == 2


@pytest.mark.parametrize("with_attrs", [True, False])
async def test_posting_a_temporal_entity_again_adds_its_types(
    client: httpx.AsyncClient, with_attrs: bool
) -> None:
    """A second POST naming another type adds it, with or without attributes; with them it
    used to replace the first type, and the entity left queries by that type."""
    eid = "urn:ngsi-ld:Thing:ty1"
    first = {"id": eid, "type": "T", "p": [{"type": "Property", "value": 1}]}
    assert (await client.post(f"{BASE}/temporal/entities", json=first)).status_code == 201
    again: dict[str, Any] = {"id": eid, "type": "Other"}
    if with_attrs:
        again["p"] = [{"type": "Property", "value": 2}]
    assert (await client.post(f"{BASE}/temporal/entities", json=again)).status_code == 204
    for typ in ("T", "Other"):
        resp = await client.get(f"{BASE}/temporal/entities", params={"type": typ})
        assert [e["id"] for e in resp.json()] == [eid], (typ, resp.text)
    resp = await client.get(f"{BASE}/temporal/entities/{eid}")
    assert resp.json()["type"] == ["T", "Other"], resp.text


async def test_concise_instances_keep_their_instance_id(client: httpx.AsyncClient) -> None:
    """A concise instance without metadata came out as a bare value, without its instanceId;
    a GeoProperty's instanceId went inside its geometry."""
    point = {"type": "Point", "coordinates": [1, 2]}
    body = {
        "id": "urn:ngsi-ld:Spot:c1",
        "type": "Spot",
        "n": [{"type": "Property", "value": 5}, {"type": "Property", "value": 6}],
        "place": {"type": "GeoProperty", "value": point},
    }
    assert (await client.post(T, json=body)).status_code == 201
    out = await temporal(client, "urn:ngsi-ld:Spot:c1", options="concise")
    assert [i["value"] for i in out["n"]] == [5, 6], out
    assert all(i["instanceId"].startswith("urn:") for i in out["n"] + out["place"]), out
    assert out["place"][0]["value"] == point, "the geometry stays a geometry"

"""/csourceRegistrations: stored, validated context source registrations and discovery."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from conftest import BASE, JSONLD, VOCAB, ContextServer, bad_request, create, link, problem

REGS = f"{BASE}/csourceRegistrations"
RID = "urn:ngsi-ld:ContextSourceRegistration:r1"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def reg(**members: Any) -> dict[str, Any]:
    """A valid registration, with members replaced (None drops one) or added."""
    body: dict[str, Any] = {
        "id": RID,
        "type": "ContextSourceRegistration",
        "information": [
            {
                "entities": [{"id": "urn:ngsi-ld:Vehicle:A456", "type": "Vehicle"}],
                "propertyNames": ["brandName", "speed"],
                "relationshipNames": ["isParked"],
            },
            {
                "entities": [
                    {"idPattern": ".*downtown$", "type": "OffStreetParking"},
                    {"idPattern": ".*47$", "type": "OffStreetParking"},
                ],
                "propertyNames": ["availableSpotNumber"],
            },
        ],
        "endpoint": "http://my.csource.org:1026",
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


async def post(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(REGS, json=body, headers=headers)


async def fetch(
    client: httpx.AsyncClient, rid: str = RID, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    resp = await client.get(f"{REGS}/{rid}", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def query(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> list[str]:
    resp = await client.get(REGS, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


# -- create / retrieve ------------------------------------------------------------------------
async def test_create_then_retrieve(client: httpx.AsyncClient) -> None:
    resp = await post(client, reg())
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{REGS}/{RID}"
    got = await fetch(client)
    assert got == {**reg(), "mode": "inclusive", "operations": ["federationOps"]}


async def test_all_members_round_trip(client: httpx.AsyncClient) -> None:
    body = reg(
        registrationName="cars",
        description="d",
        tenant="t1",
        observationInterval={"startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"},
        managementInterval={"startAt": "2020-08-01T22:07:00Z"},
        location={"type": "Point", "coordinates": [-8.521, 41.2]},
        observationSpace={
            "type": "Polygon",
            "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
        },
        expiresAt="2099-11-29T14:53:15Z",
        contextSourceInfo=[{"key": "Authorization", "value": "Bearer x"}],
        scope=["/Madrid/Gran_Via"],
        mode="redirect",  # exclusive needs entity ids and attributes (4.3.6.3)
        operations=["queryEntity", "queryTemporal", "updateOps"],
        refreshRate="PT1M",
        management={"localOnly": True, "timeout": 5},
        csourceProperty1="aValue",
    )
    assert (await post(client, body)).status_code == 201
    assert await fetch(client) == body


async def test_generated_id_and_duplicates(client: httpx.AsyncClient) -> None:
    body = reg()
    del body["id"]
    resp = await post(client, body)
    assert resp.status_code == 201, resp.text
    rid = resp.headers["location"].rsplit("/", 1)[1]
    assert re.fullmatch(r"urn:ngsi-ld:ContextSourceRegistration:[0-9a-f-]{36}", rid)
    assert (await fetch(client, rid))["id"] == rid
    assert (await post(client, reg())).status_code == 201
    problem(await post(client, reg()), 409, "AlreadyExists")


async def test_names_expand_and_compact(
    client: httpx.AsyncClient, context_server: ContextServer, app: Any
) -> None:
    ctx = {"Link": link(context_server.url("/ctx/r.jsonld"))}
    body = reg(
        information=[
            {
                "entities": [{"type": "Sensor"}],
                "propertyNames": ["temperature", "other"],
                "relationshipNames": ["isIn"],
            }
        ],
        humidity="high",
    )
    assert (await post(client, body, ctx)).status_code == 201
    stored = app.state.store.resource_get("csourceRegistration", "", RID)
    assert stored["information"][0]["entities"] == [{"type": VOCAB + "Sensor"}]
    assert stored["props"] == {VOCAB + "humidity": "high"}
    same = await fetch(client, headers=ctx)
    assert same["information"] == body["information"]
    assert same["humidity"] == "high"
    core = await fetch(client)
    assert core["information"] == [
        {
            "entities": [{"type": VOCAB + "Sensor"}],
            "propertyNames": [VOCAB + "temperature", "other"],
            "relationshipNames": [VOCAB + "isIn"],
        }
    ]
    assert core[VOCAB + "humidity"] == "high"
    resp = await client.get(f"{REGS}/{RID}", headers={**ctx, "Accept": JSONLD})
    assert resp.json()["@context"] == context_server.url("/ctx/r.jsonld")


async def test_ldjson_without_context_and_json_with_context_are_400(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(REGS, content=json.dumps(reg()), headers={"Content-Type": JSONLD})
    problem(resp, 400, "BadRequestData")
    body = {**reg(), "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
    problem(await post(client, body), 400, "BadRequestData")


async def test_default_context_types(client: httpx.AsyncClient, app: Any) -> None:
    assert (
        await post(client, reg(information=[{"entities": [{"type": "Building"}]}]))
    ).status_code == 201
    stored = app.state.store.resource_get("csourceRegistration", "", RID)
    assert stored["information"][0]["entities"][0]["type"] == DEFAULT_VOCAB + "Building"
    assert (await fetch(client))["information"][0]["entities"][0]["type"] == "Building"


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param(reg(type="Subscription"), id="wrong-type"),
        pytest.param(reg(type=None), id="no-type"),
        pytest.param(reg(id="nope"), id="bad-id"),
        pytest.param(reg(information=None), id="no-information"),
        pytest.param({**reg(), "information": None}, id="null-information"),
        pytest.param(reg(information=[]), id="empty-information"),
        pytest.param(reg(information=[{}]), id="empty-information-item"),
        pytest.param(reg(information=[{"entities": []}]), id="empty-entities"),
        pytest.param(
            reg(information=[{"entities": [{"id": "urn:x:1"}]}]), id="entity-without-type"
        ),
        pytest.param(
            reg(information=[{"entities": [{"type": "A", "idPattern": "(["}]}]), id="bad-idPattern"
        ),
        pytest.param(reg(information=[{"propertyNames": []}]), id="empty-propertyNames"),
        pytest.param(reg(information=[{"propertyNames": ["bad name"]}]), id="bad-property-name"),
        pytest.param(reg(information=[{"attrs": ["a"]}]), id="unknown-information-member"),
        pytest.param(reg(endpoint=None), id="no-endpoint"),
        pytest.param(reg(endpoint="my.csource.org"), id="relative-endpoint"),
        pytest.param(reg(mode="sometimes"), id="bad-mode"),
        pytest.param(reg(operations=["teleport"]), id="bad-operation"),
        pytest.param(reg(operations=[]), id="empty-operations"),
        pytest.param(reg(expiresAt=" 2018-11-29T14:53:15Z"), id="expiresAt-past"),
        pytest.param(reg(expiresAt="soon"), id="expiresAt-not-a-date"),
        pytest.param(reg(location={"type": "Point", "coordinates": [200, 0]}), id="bad-location"),
        pytest.param(reg(location={"type": "Point"}), id="location-without-coordinates"),
        pytest.param(
            reg(observationInterval={"endAt": "2020-01-01T00:00:00Z"}), id="interval-no-start"
        ),
        pytest.param(
            reg(
                managementInterval={
                    "startAt": "2021-01-01T00:00:00Z",
                    "endAt": "2020-01-01T00:00:00Z",
                }
            ),
            id="interval-backwards",
        ),
        pytest.param(reg(contextSourceInfo=[{"key": 1, "value": "v"}]), id="bad-contextSourceInfo"),
        pytest.param(reg(scope="no-slash"), id="bad-scope"),
        pytest.param(reg(management={"localOnly": "yes"}), id="bad-management"),
        pytest.param(reg(registrationName=""), id="empty-name"),
        pytest.param(reg(**{"bad name": 1}), id="bad-property"),
    ],
)
async def test_create_rejects_invalid_registrations(client: httpx.AsyncClient, body: Any) -> None:
    problem(await post(client, body), 400, "BadRequestData")
    problem(await client.get(f"{REGS}/{RID}"), 404, "ResourceNotFound")


async def test_bad_json_media_types_and_params(client: httpx.AsyncClient) -> None:
    resp = await client.post(REGS, content=b"{,}", headers={"Content-Type": "application/json"})
    problem(resp, 400, "InvalidRequest")
    resp = await client.post(REGS, content=b"<a/>", headers={"Content-Type": "application/xml"})
    problem(resp, 415, "UnsupportedMediaType")
    problem(await client.get(REGS, params={"type": "A", "nope": "1"}), 400, "InvalidRequest")
    for accept in ("application/xml", "application/geo+json"):
        resp = await client.get(REGS, params={"type": "A"}, headers={"Accept": accept})
        problem(resp, 406, "NotAcceptable")
    bad_request(await post(client, "text"))


# -- update / delete --------------------------------------------------------------------------
async def test_patch(client: httpx.AsyncClient) -> None:
    await post(client, reg(expiresAt="2099-01-01T00:00:00Z", csourceProperty1="a"))
    resp = await client.patch(f"{REGS}/{RID}", json={"endpoint": "http://my.new.csource.org:1026"})
    assert resp.status_code == 204 and resp.content == b""
    assert (await fetch(client))["endpoint"] == "http://my.new.csource.org:1026"
    resp = await client.patch(
        f"{REGS}/{RID}", json={"expiresAt": None, "csourceProperty1": None, "p2": 2}
    )
    assert resp.status_code == 204, resp.text
    got = await fetch(client)
    assert "expiresAt" not in got and "csourceProperty1" not in got and got["p2"] == 2
    assert got["information"] == reg()["information"]


async def test_patch_information_replaces_it(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    await post(client, reg())
    ctx = {"Link": link(context_server.url("/ctx/u.jsonld"))}
    new = [{"entities": [{"type": "Room"}]}]
    resp = await client.patch(f"{REGS}/{RID}", json={"information": new}, headers=ctx)
    assert resp.status_code == 204, resp.text
    assert (await fetch(client, headers=ctx))["information"] == new
    assert (await fetch(client))["information"] == [{"entities": [{"type": VOCAB + "Room"}]}]


@pytest.mark.parametrize(
    "fragment",
    [
        {"information": None},
        {"endpoint": None},
        {"type": "building"},
        {"id": "urn:ngsi-ld:ContextSourceRegistration:other"},
        {"mode": "loud"},
        {"expiresAt": "2001-01-01T00:00:00Z"},
        {},
    ],
)
async def test_patch_rejects_bad_fragments(client: httpx.AsyncClient, fragment: Any) -> None:
    await post(client, reg())
    problem(await client.patch(f"{REGS}/{RID}", json=fragment), 400, "BadRequestData")
    assert await fetch(client) == {**reg(), "mode": "inclusive", "operations": ["federationOps"]}


async def test_patch_errors(client: httpx.AsyncClient) -> None:
    problem(
        await client.patch(f"{REGS}/{RID}", json={"endpoint": "http://x.org"}),
        404,
        "ResourceNotFound",
    )
    problem(
        await client.patch(f"{REGS}/invalidURI", json={"endpoint": "http://x.org"}),
        400,
        "BadRequestData",
    )
    assert (await client.patch(f"{REGS}/", json={"endpoint": "http://x.org"})).status_code == 405
    await post(client, reg())
    resp = await client.patch(
        f"{REGS}/{RID}", content=b"{,", headers={"Content-Type": "application/json"}
    )
    problem(resp, 400, "InvalidRequest")
    resp = await client.patch(
        f"{REGS}/{RID}",
        content=b'{"registrationName": "x"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 204, resp.text


async def test_delete(client: httpx.AsyncClient) -> None:
    await post(client, reg())
    resp = await client.delete(f"{REGS}/{RID}")
    assert resp.status_code == 204 and resp.content == b""
    problem(await client.get(f"{REGS}/{RID}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{REGS}/{RID}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{REGS}/invalidURI"), 400, "BadRequestData")
    assert (await client.delete(f"{REGS}/")).status_code == 405


# -- discovery --------------------------------------------------------------------------------
R1, R2, R3 = (f"urn:ngsi-ld:ContextSourceRegistration:q{i}" for i in range(1, 4))


async def three(client: httpx.AsyncClient) -> None:
    """R1: vehicles and car parks; R2: buildings with attributes, a location and intervals;
    R3: buildings with a context source property and no attribute list."""
    assert (await post(client, reg(id=R1))).status_code == 201
    r2 = reg(
        id=R2,
        information=[
            {
                "entities": [{"type": "Building"}],
                "propertyNames": ["name"],
                "relationshipNames": ["locatedAt"],
            }
        ],
        location={"type": "Point", "coordinates": [-8.521, 41.2]},
        observationInterval={"startAt": "2020-08-01T22:07:00Z", "endAt": "2021-08-01T21:07:00Z"},
        managementInterval={"startAt": "2022-01-01T00:00:00Z"},
    )
    assert (await post(client, r2)).status_code == 201
    r3 = reg(id=R3, information=[{"entities": [{"type": "Building"}]}], csourceProperty1="aValue")
    assert (await post(client, r3)).status_code == 201


async def test_query_needs_a_filter(client: httpx.AsyncClient) -> None:
    problem(await client.get(REGS), 400, "BadRequestData")


@pytest.mark.parametrize(
    "params",
    [
        {"id": "invalidUri"},
        {"q": "(invalidQuery"},
        {"georel": "within"},
        {"type": "Building", "timerel": "before"},
        {"type": "Building", "timerel": "between", "timeAt": "2020-01-01T00:00:00Z"},
        {
            "type": "Building",
            "timeproperty": "deletedAt",
            "timerel": "after",
            "timeAt": "2020-01-01T00:00:00Z",
        },
        {"type": "Building", "limit": "-1"},
        {"idPattern": "(["},
    ],
)
async def test_query_rejects_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    bad_request(await client.get(REGS, params=params))


async def test_query_filters(client: httpx.AsyncClient) -> None:
    await three(client)
    assert await query(client, type="Building") == [R2, R3]
    assert await query(client, type="Vehicle") == [R1]
    assert await query(client, type="Vehicle|Building") == [R1, R2, R3]
    assert await query(client, type="Nothing") == []
    assert await query(client, type="OffStreetParking", idPattern=".*downtown$") == [R1]
    assert await query(client, id="urn:ngsi-ld:Vehicle:A456") == [R1, R2, R3]
    assert await query(client, id="urn:ngsi-ld:Vehicle:B1", type="Vehicle") == []
    assert await query(client, id="urn:ngsi-ld:OffStreetParking:downtown") == [R1, R2, R3]
    assert await query(client, type="Building", attrs="name") == [R2, R3]
    assert await query(client, type="Building", attrs="height") == [R3]
    assert await query(client, attrs="speed") == [R1, R3]
    assert await query(client, q='csourceProperty1=="aValue"') == [R3]
    assert await query(client, csf="csourceProperty1") == [R3]
    near = {
        "georel": "near;maxDistance==2000",
        "geometry": "Point",
        "coordinates": "[-8.503,41.202]",
    }
    assert await query(client, type="Building", **near) == [R2]
    far = {**near, "coordinates": "[10,10]"}
    assert await query(client, type="Building", **far) == []
    before = {"timerel": "before", "timeAt": "2021-08-01T22:00:00Z"}
    assert await query(client, type="Building", **before) == [R2]
    assert await query(client, type="Building", timeproperty="observedAt", **before) == [R2]
    assert await query(client, type="Building", timeproperty="createdAt", **before) == []
    after = {"timerel": "after", "timeAt": "2023-01-01T00:00:00Z"}
    assert await query(client, type="Building", timeproperty="modifiedAt", **after) == [R2]


async def test_query_with_context(client: httpx.AsyncClient, context_server: ContextServer) -> None:
    ctx = {"Link": link(context_server.url("/ctx/d.jsonld"))}
    body = reg(information=[{"entities": [{"type": "Sensor"}], "propertyNames": ["temperature"]}])
    assert (await post(client, body, ctx)).status_code == 201
    assert await query(client, ctx, type="Sensor") == [RID]
    assert await query(client, type="Sensor") == []
    assert await query(client, type=VOCAB + "Sensor") == [RID]
    assert await query(client, ctx, attrs="temperature") == [RID]


async def test_query_pages(client: httpx.AsyncClient) -> None:
    await three(client)
    resp = await client.get(
        REGS,
        params={"type": "Building", "limit": 1, "offset": 1, "count": "true"},
        headers={"Accept": JSONLD},
    )
    assert [r["id"] for r in resp.json()] == [R3]
    assert resp.headers["NGSILD-Results-Count"] == "2"
    assert resp.headers["link"] == (
        f'<{REGS}?type=Building&count=true&limit=1&offset=0>;rel="prev";type="application/ld+json"'
    )
    resp = await client.get(
        REGS, params={"type": "Building", "limit": 1}, headers={"Accept": JSONLD}
    )
    assert resp.headers["link"] == (
        f'<{REGS}?type=Building&limit=1&offset=1>;rel="next";type="application/ld+json"'
    )


# -- tenants ----------------------------------------------------------------------------------
async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    a = {"NGSILD-Tenant": "city-a"}
    assert (await post(client, reg(), a)).status_code == 201
    assert (await fetch(client, headers=a))["id"] == RID
    problem(await client.get(f"{REGS}/{RID}"), 404, "ResourceNotFound")
    assert await query(client, type="Vehicle") == []
    assert await query(client, a, type="Vehicle") == [RID]
    resp = await client.get(REGS, params={"type": "Vehicle"}, headers={"NGSILD-Tenant": "none"})
    problem(resp, 404, "NonexistentTenant")
    await create(
        client, {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}, headers={"NGSILD-Tenant": "b"}
    )
    assert await query(client, {"NGSILD-Tenant": "b"}, type="Vehicle") == []
    assert (await client.delete(f"{REGS}/{RID}", headers=a)).status_code == 204


async def test_an_expired_registration_is_no_longer_discovered(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its expiresAt a registration is invalid (5.2.9): discovery leaves it out; a read by
    id still shows it, with the expiresAt that explains why."""
    from cityhub.ngsild import subscriptions

    expires = "2030-01-01T00:00:00Z"
    assert (await post(client, reg(expiresAt=expires))).status_code == 201
    other = reg(id="urn:ngsi-ld:ContextSourceRegistration:r2")
    assert (await post(client, other)).status_code == 201
    assert await query(client, type="Vehicle") == [RID, other["id"]]
    monkeypatch.setattr(subscriptions, "now_iso", lambda: "2030-01-01T00:00:01.000000Z")
    assert await query(client, type="Vehicle") == [other["id"]]
    assert (await fetch(client))["expiresAt"] == expires

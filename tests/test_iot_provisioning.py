"""/iot/v1/sources and /iot/v1/devices: CRUD, validation errors, hashed keys, tenants."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, get_entity, problem
from iot_support import IOT, MAPPING, provision

DEVICE: dict[str, Any] = {"id": "boiler-1", "entityType": "Thermometer", "mapping": MAPPING}
EID = "urn:ngsi-ld:Thermometer:boiler-1"


async def test_create_returns_a_generated_key_once(client: httpx.AsyncClient) -> None:
    answer = await provision(client, DEVICE)
    key = answer["apikey"]
    assert len(key) >= 32
    assert answer["entityId"] == EID and answer["protocol"] == "mqtt"
    assert "apikeyHash" not in answer
    got = (await client.get(f"{IOT}/devices/boiler-1")).json()
    assert "apikey" not in got and "apikeyHash" not in got
    assert got["mapping"]["attributes"]["t"]["scale"] == 0.1
    listed = await client.get(f"{IOT}/devices")
    assert [d["id"] for d in listed.json()] == ["boiler-1"]
    assert "apikey" not in listed.text and key not in listed.text


async def test_the_store_never_holds_the_key(client: httpx.AsyncClient, db_path: Path) -> None:
    key = "my-own-key-0123456789"
    answer = await provision(client, {**DEVICE, "apikey": key})
    assert "apikey" not in answer  # the caller chose it: nothing to show
    source = await provision(client, {"id": "s1", "entityType": "T"}, kind="sources")
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT kind, doc FROM resources").fetchall()
    docs = {kind: doc for kind, doc in rows}
    assert key not in docs["iot-device"] and source["apikey"] not in docs["iot-source"]
    assert hashlib.sha256(key.encode()).hexdigest() in docs["iot-device"]


async def test_provisioning_creates_the_entity_with_static_attributes(
    client: httpx.AsyncClient,
) -> None:
    await provision(client, DEVICE)
    entity = await get_entity(client, EID)
    assert entity == {
        "id": EID,
        "type": "Thermometer",
        "name": {"type": "Property", "value": "Boiler room sensor"},
    }


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"id": "a/b", "entityType": "T"}, "device id must be"),
        ({"entityType": "T"}, "device id must be"),
        ({"id": "d", "entityType": "T", "apikey": "short"}, "apikey must be 16-128"),
        ({"id": "d", "entityType": "T", "protocol": "coap"}, "protocol must be one of"),
        ({"id": "d"}, "entityType is required"),
        ({"id": "d", "entityType": "T", "source": "nope"}, "source 'nope' does not exist"),
        ({"id": "d", "entityType": "T", "colour": "red"}, "unknown device member(s) ['colour']"),
        ({"id": "d", "entityType": "T", "entityId": "not a uri"}, "entityId must be"),
        ({"id": "d", "entityType": "T", "ldContext": "ftp://x"}, "ldContext must be an http"),
        (
            {"id": "d", "entityType": "T", "mapping": {"attributes": {"t": {"type": "int"}}}},
            "mapping.attributes.t.type must be one of",
        ),
        (
            {"id": "d", "entityType": "T", "mapping": {"static": {"location": {"value": 1}}}},
            "location must be a GeoProperty",
        ),
        (
            {
                "id": "d",
                "entityType": "T",
                "mapping": {"attributes": {"t": {"name": "x"}}, "static": {"x": 1}},
            },
            "writes attribute 'x' twice",
        ),
        (  # a prefix no payload value can turn into an entity id (every message was refused)
            {
                "id": "d",
                "entityType": "T",
                "mapping": {"attributes": {"r": {"type": "relationship", "prefix": "not a uri "}}},
            },
            "mapping.attributes.r.prefix must begin an absolute URI",
        ),
    ],
)
async def test_bad_devices_are_400_with_a_clear_detail(
    client: httpx.AsyncClient, body: dict[str, Any], words: str
) -> None:
    resp = await client.post(f"{IOT}/devices", json=body)
    detail = problem(resp, 400)["detail"]
    assert words in detail, detail
    assert (await client.get(f"{IOT}/devices")).json() == []


async def test_errors_for_conflicts_and_missing_records(client: httpx.AsyncClient) -> None:
    await provision(client, DEVICE)
    problem(await client.post(f"{IOT}/devices", json=DEVICE), 409, "AlreadyExists")
    problem(await client.get(f"{IOT}/devices/nope"), 404, "ResourceNotFound")
    problem(await client.patch(f"{IOT}/devices/nope", json={}), 404, "ResourceNotFound")
    problem(await client.delete(f"{IOT}/devices/nope"), 404, "ResourceNotFound")
    problem(await client.get(f"{IOT}/devices?limit=0"), 400, "InvalidRequest")
    for spelling in ("+2", " 2", "2_0", "\u0662"):  # int() read these (2_0 as 20)
        for name in ("limit", "offset"):
            resp = await client.get(f"{IOT}/devices", params={name: spelling})
            assert "digits 0-9" in problem(resp, 400, "InvalidRequest")["detail"]
    problem(await client.get(f"{IOT}/devices?colour=red"), 400, "InvalidRequest")
    resp = await client.post(
        f"{IOT}/devices", content=b"{", headers={"Content-Type": "application/json"}
    )
    problem(resp, 400, "InvalidRequest")


async def test_update_rotates_the_key_and_replaces_the_mapping(client: httpx.AsyncClient) -> None:
    key = (await provision(client, {**DEVICE, "protocol": "http"}))["apikey"]
    new_key = "rotated-key-0123456789"
    resp = await client.patch(
        f"{IOT}/devices/boiler-1",
        json={"apikey": new_key, "mapping": {"attributes": {"h": {"name": "humidity"}}}},
    )
    assert resp.status_code == 200, resp.text
    assert "apikey" not in resp.json()
    old = await client.post(f"{IOT}/json", params={"k": key, "i": "boiler-1"}, json={"h": 1})
    problem(old, 404, "ResourceNotFound")
    ok = await client.post(f"{IOT}/json", params={"k": new_key, "i": "boiler-1"}, json={"h": 40})
    assert ok.status_code == 204, ok.text
    entity = await get_entity(client, EID)
    assert entity["humidity"]["value"] == 40
    bad = await client.patch(f"{IOT}/devices/boiler-1", json={"mapping": {"points": []}})
    problem(bad, 400, "BadRequestData")


async def test_delete_stops_messages_but_keeps_the_entity(client: httpx.AsyncClient) -> None:
    key = (await provision(client, {**DEVICE, "protocol": "http"}))["apikey"]
    assert (await client.delete(f"{IOT}/devices/boiler-1")).status_code == 204
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "boiler-1"}, json={"t": 1})
    problem(resp, 404)
    await get_entity(client, EID)


async def test_paging(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await provision(client, {"id": f"d{i}", "entityType": "T"})
    resp = await client.get(f"{IOT}/devices", params={"limit": 2, "offset": 1})
    assert [d["id"] for d in resp.json()] == ["d1", "d2"]
    assert resp.headers["X-Total-Count"] == "5"


async def test_tenants_are_separate(client: httpx.AsyncClient) -> None:
    await provision(client, DEVICE, tenant="north")
    assert (await client.get(f"{IOT}/devices")).json() == []
    listed = await client.get(f"{IOT}/devices", headers={"NGSILD-Tenant": "north"})
    assert [d["tenant"] for d in listed.json()] == ["north"]
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"NGSILD-Tenant": "north"})
    assert resp.status_code == 200, resp.text
    problem(await client.get(f"{BASE}/entities/{EID}"), 404)


async def test_devices_inherit_key_type_and_mapping_from_their_source(
    client: httpx.AsyncClient,
) -> None:
    source = await provision(
        client,
        {
            "id": "meters",
            "entityType": "Meter",
            "mapping": {"attributes": {"e": {"name": "energy"}}},
        },
        kind="sources",
    )
    key = source["apikey"]
    device = await provision(client, {"id": "m1", "source": "meters", "protocol": "http"})
    assert "apikey" not in device  # it uses the source's key
    assert device["entityId"] == "urn:ngsi-ld:Meter:m1"
    sent = await client.post(f"{IOT}/json", params={"k": key, "i": "m1"}, json={"e": 5})
    assert sent.status_code == 204, sent.text
    # A change of the source reaches its devices.
    resp = await client.patch(
        f"{IOT}/sources/meters", json={"mapping": {"attributes": {"e": {"name": "power"}}}}
    )
    assert resp.status_code == 200, resp.text
    sent = await client.post(f"{IOT}/json", params={"k": key, "i": "m1"}, json={"e": 6})
    assert sent.status_code == 204, sent.text
    entity = await get_entity(client, "urn:ngsi-ld:Meter:m1")
    assert entity["energy"]["value"] == 5 and entity["power"]["value"] == 6
    problem(await client.delete(f"{IOT}/sources/meters"), 409, "Conflict")
    assert (await client.delete(f"{IOT}/devices/m1")).status_code == 204
    assert (await client.delete(f"{IOT}/sources/meters")).status_code == 204
    problem(await client.get(f"{IOT}/sources/meters"), 404)


async def test_bad_sources_are_400(client: httpx.AsyncClient) -> None:
    for body, words in (
        ({"id": "s", "mapping": {"attributes": 3}}, "mapping.attributes must be a JSON object"),
        ({"id": "s", "apikey": "x"}, "apikey must be"),
        ({"id": "s", "entityType": "a b"}, "invalid entityType"),
    ):
        detail = problem(await client.post(f"{IOT}/sources", json=body), 400)["detail"]
        assert words in detail, detail


async def test_devices_survive_a_restart(app: Starlette, db_path: Path) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        key = (await provision(c, {**DEVICE, "protocol": "http"}))["apikey"]
    app.state.store.close()
    again = create_app(Settings(db=str(db_path)))
    transport = httpx.ASGITransport(app=again)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            resp = await c.post(f"{IOT}/json", params={"k": key, "i": "boiler-1"}, json={"t": 1})
            assert resp.status_code == 204, resp.text
    finally:
        again.state.store.close()


async def test_a_new_type_needs_a_new_id_when_the_id_came_from_the_type(
    client: httpx.AsyncClient,
) -> None:
    """The entity urn:ngsi-ld:Sensor:d1 gained the type Meter and kept Sensor (and its id):
    a type change of a device whose id was made from its type is refused unless it names
    the entity too; a device with an id of its own choosing adds the type to that entity."""
    body = {"id": "d1", "entityType": "Sensor", "mapping": {"attributes": {"v": {}}}}
    await provision(client, body)
    resp = await client.patch(f"{IOT}/devices/d1", json={"entityType": "Meter"})
    assert "urn:ngsi-ld:Meter:d1" in problem(resp, 400, "BadRequestData")["detail"]
    assert (await client.get(f"{IOT}/devices/d1")).json()["entityType"] == "Sensor"
    assert (await get_entity(client, "urn:ngsi-ld:Sensor:d1"))["type"] == "Sensor"
    new = {"entityType": "Meter", "entityId": "urn:ngsi-ld:Meter:d1"}
    resp = await client.patch(f"{IOT}/devices/d1", json=new)
    assert resp.status_code == 200, resp.text
    assert (await get_entity(client, "urn:ngsi-ld:Meter:d1"))["type"] == "Meter"
    assert (await get_entity(client, "urn:ngsi-ld:Sensor:d1"))["type"] == "Sensor"  # stays

    await provision(client, {**body, "id": "d2", "entityId": "urn:ngsi-ld:Thing:boiler"})
    resp = await client.patch(f"{IOT}/devices/d2", json={"entityType": "Meter"})
    assert resp.status_code == 200, resp.text
    entity = await get_entity(client, "urn:ngsi-ld:Thing:boiler")
    assert sorted(entity["type"]) == ["Meter", "Sensor"]


@pytest.mark.parametrize("member", ["entityId", "entityType"])
async def test_an_empty_entity_id_or_type_is_refused_not_taken_as_omitted(
    client: httpx.AsyncClient, member: str
) -> None:
    """`"entityId": ""` made the default id and `"entityType": ""` took the source's type,
    while every other member of the wrong form is a 400: a templating bug that blanked the
    value provisioned a device on an entity nobody asked for."""
    await provision(client, {"id": "src-e", "entityType": "Meter"}, kind="sources")
    body = {"id": "e-empty", "source": "src-e", "entityType": "Meter", member: ""}
    resp = await client.post(f"{IOT}/devices", json=body)
    assert resp.status_code == 400, resp.text
    assert member in resp.json()["detail"]
    assert (await client.get(f"{IOT}/devices/e-empty")).status_code == 404

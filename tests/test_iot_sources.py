"""/iot/v1/sources: listing, duplicates, source changes its devices cannot follow, and device
keys that would clash with another tenant's device."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, get_entity, problem
from iot_support import IOT, provision

SOURCE_KEY = "source-key-0123456789"
NORTH_KEY = "north-key-0123456789"
NORTH = {"NGSILD-Tenant": "north"}
METER = "urn:ngsi-ld:Meter:m1"


async def source(client: httpx.AsyncClient, sid: str, headers: dict[str, str] | None = None) -> Any:
    resp = await client.get(f"{IOT}/sources/{sid}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def device(client: httpx.AsyncClient, did: str, headers: dict[str, str] | None = None) -> Any:
    resp = await client.get(f"{IOT}/devices/{did}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def send(
    client: httpx.AsyncClient, key: str, did: str, payload: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"{IOT}/json", params={"k": key, "i": did}, json=payload)


@pytest.fixture
async def meters(client: httpx.AsyncClient) -> None:
    """Source 'meters' (e -> energy, key SOURCE_KEY) and its device m1 (t -> temperature)."""
    await provision(
        client,
        {
            "id": "meters",
            "entityType": "Meter",
            "apikey": SOURCE_KEY,
            "mapping": {"attributes": {"e": {"name": "energy"}}},
        },
        kind="sources",
    )
    await provision(
        client,
        {
            "id": "m1",
            "source": "meters",
            "protocol": "http",
            "mapping": {"attributes": {"t": {"name": "temperature"}}},
        },
    )


# -- listing ---------------------------------------------------------------------------------------


async def test_list_sources_pages_and_hides_keys(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{IOT}/sources")
    assert resp.status_code == 200, resp.text
    assert resp.json() == [] and resp.headers["X-Total-Count"] == "0"
    keys = []
    for i in range(4):
        answer = await provision(client, {"id": f"s{i}", "entityType": "Meter"}, kind="sources")
        keys.append(answer["apikey"])
    resp = await client.get(f"{IOT}/sources")
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert [s["id"] for s in listed] == ["s0", "s1", "s2", "s3"], "creation order"
    assert resp.headers["X-Total-Count"] == "4"
    assert all(s["tenant"] == "" and s["entityType"] == "Meter" for s in listed), listed
    assert all("apikey" not in s and "apikeyHash" not in s for s in listed), listed
    assert not any(k in resp.text for k in keys), "no key is ever listed"
    resp = await client.get(f"{IOT}/sources", params={"limit": 2, "offset": 1})
    assert [s["id"] for s in resp.json()] == ["s1", "s2"], resp.text
    assert resp.headers["X-Total-Count"] == "4"
    resp = await client.get(f"{IOT}/sources", params={"offset": 10})
    assert resp.json() == [] and resp.headers["X-Total-Count"] == "4"


async def test_list_sources_is_per_tenant(client: httpx.AsyncClient) -> None:
    await provision(client, {"id": "here", "entityType": "Meter"}, kind="sources")
    await provision(client, {"id": "there", "entityType": "Meter"}, tenant="north", kind="sources")
    resp = await client.get(f"{IOT}/sources", headers=NORTH)
    assert [(s["id"], s["tenant"]) for s in resp.json()] == [("there", "north")], resp.text
    assert resp.headers["X-Total-Count"] == "1"
    assert [s["id"] for s in (await client.get(f"{IOT}/sources")).json()] == ["here"]


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "red"},
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "many"},
        {"offset": "-1"},
        {"offset": "1.5"},
    ],
)
async def test_list_sources_rejects_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    problem(await client.get(f"{IOT}/sources", params=params), 400, "InvalidRequest")


# -- duplicates ------------------------------------------------------------------------------------


async def test_duplicate_source_is_409_and_keeps_the_first(
    client: httpx.AsyncClient, meters: None
) -> None:
    before = await source(client, "meters")
    resp = await client.post(
        f"{IOT}/sources",
        json={"id": "meters", "entityType": "Pump", "apikey": "other-key-0123456789"},
    )
    problem(resp, 409, "AlreadyExists")
    assert await source(client, "meters") == before
    listed = await client.get(f"{IOT}/sources")
    assert [s["id"] for s in listed.json()] == ["meters"], listed.text
    # the first source's key still reaches its device; the refused one does not
    assert (await send(client, SOURCE_KEY, "m1", {"e": 1})).status_code == 204
    problem(await send(client, "other-key-0123456789", "m1", {"e": 2}), 404)
    assert (await get_entity(client, METER))["energy"]["value"] == 1


async def test_same_source_id_in_another_tenant_is_allowed(
    client: httpx.AsyncClient, meters: None
) -> None:
    answer = await provision(
        client, {"id": "meters", "entityType": "Pump"}, tenant="north", kind="sources"
    )
    assert answer["tenant"] == "north" and answer["entityType"] == "Pump"
    assert (await source(client, "meters"))["entityType"] == "Meter"


# -- a source change its devices cannot follow ------------------------------------------------------


async def test_source_change_that_breaks_a_device_mapping_is_400(
    client: httpx.AsyncClient, meters: None
) -> None:
    before_source = await source(client, "meters")
    before_device = await device(client, "m1")
    resp = await client.patch(
        f"{IOT}/sources/meters",
        json={
            "description": "new",
            "mapping": {"attributes": {"x": {"name": "temperature"}}},
        },
    )
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert "'m1'" in detail and "temperature" in detail, detail
    assert await source(client, "meters") == before_source, "the source is unchanged"
    assert await device(client, "m1") == before_device
    # the old mapping still applies: e -> energy, x is not mapped
    assert (await send(client, SOURCE_KEY, "m1", {"e": 3, "x": 9})).status_code == 204
    entity = await get_entity(client, METER)
    assert entity["energy"]["value"] == 3 and "temperature" not in entity, entity


async def test_source_change_with_invalid_static_attribute_for_a_device_is_400(
    client: httpx.AsyncClient, meters: None
) -> None:
    before = await source(client, "meters")
    resp = await client.patch(
        f"{IOT}/sources/meters",
        json={"mapping": {"static": {"temperature": {"type": "Property", "value": 0}}}},
    )
    problem(resp, 400, "BadRequestData")
    assert await source(client, "meters") == before
    entity = await get_entity(client, METER)
    assert "temperature" not in entity, "no static attribute reached the device's entity"


async def test_source_key_change_that_clashes_with_another_tenant_is_409(
    client: httpx.AsyncClient, meters: None
) -> None:
    await provision(
        client,
        {"id": "m1", "entityType": "Meter", "protocol": "http", "apikey": NORTH_KEY},
        tenant="north",
    )
    before = await source(client, "meters")
    resp = await client.patch(
        f"{IOT}/sources/meters", json={"apikey": NORTH_KEY, "description": "rotated"}
    )
    detail = problem(resp, 409, "Conflict")["detail"]
    assert "'m1'" in detail, detail
    assert await source(client, "meters") == before, "nothing changed"
    # each device still answers to its own key, in its own tenant
    assert (await send(client, SOURCE_KEY, "m1", {"e": 6})).status_code == 204
    assert (await send(client, NORTH_KEY, "m1", {"e": 7})).status_code == 204
    assert (await get_entity(client, METER))["energy"]["value"] == 6
    north = await get_entity(client, METER, headers=NORTH)
    assert "energy" not in north and north["e"]["value"] == 7, north


# -- device keys across tenants ---------------------------------------------------------------------


async def test_device_with_another_tenants_id_and_key_is_409(client: httpx.AsyncClient) -> None:
    body = {"id": "d9", "entityType": "Tank", "protocol": "http", "apikey": NORTH_KEY}
    await provision(client, body, tenant="north")
    problem(await client.post(f"{IOT}/devices", json=body), 409, "Conflict")
    problem(await client.get(f"{IOT}/devices/d9"), 404, "ResourceNotFound")
    assert (await client.get(f"{IOT}/devices")).json() == []
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Tank:d9"), 404, "ResourceNotFound")
    # the north device keeps receiving its messages
    assert (await send(client, NORTH_KEY, "d9", {"level": 3})).status_code == 204
    north = await get_entity(client, "urn:ngsi-ld:Tank:d9", headers=NORTH)
    assert north["level"]["value"] == 3, north
    # with its own key the same device id is fine in this tenant
    await provision(client, {**body, "apikey": "own-key-0123456789"})


async def test_concurrent_devices_with_one_id_and_key_in_three_tenants_one_wins(
    client: httpx.AsyncClient,
) -> None:
    """Each create checked the registry before its commit and updated it after: sent at
    once, all three got 201, and the device's messages went to whichever came last."""
    import asyncio

    body = {"id": "rc3", "entityType": "Tank", "protocol": "http", "apikey": NORTH_KEY}
    tenants = ("alpha", "beta", "gamma")
    answers = await asyncio.gather(
        *(client.post(f"{IOT}/devices", json=body, headers={"NGSILD-Tenant": t}) for t in tenants)
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409, 409], [a.text for a in answers]
    [winner] = [t for t, a in zip(tenants, answers, strict=True) if a.status_code == 201]
    assert (await send(client, NORTH_KEY, "rc3", {"level": 7})).status_code == 204
    tank = await get_entity(client, "urn:ngsi-ld:Tank:rc3", headers={"NGSILD-Tenant": winner})
    assert tank["level"]["value"] == 7, tank


async def test_device_clash_through_its_source_key_is_409(
    client: httpx.AsyncClient, meters: None
) -> None:
    await provision(
        client, {"id": "m2", "entityType": "Meter", "apikey": SOURCE_KEY}, tenant="north"
    )
    resp = await client.post(f"{IOT}/devices", json={"id": "m2", "source": "meters"})
    problem(resp, 409, "Conflict")
    problem(await client.get(f"{IOT}/devices/m2"), 404, "ResourceNotFound")
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Meter:m2"), 404, "ResourceNotFound")


async def test_device_key_rotation_onto_another_tenants_key_is_409(
    client: httpx.AsyncClient,
) -> None:
    body = {"id": "d9", "entityType": "Tank", "protocol": "http"}
    await provision(client, {**body, "apikey": NORTH_KEY}, tenant="north")
    own = "own-key-0123456789"
    await provision(client, {**body, "apikey": own})
    before = await device(client, "d9")
    resp = await client.patch(f"{IOT}/devices/d9", json={"apikey": NORTH_KEY})
    problem(resp, 409, "Conflict")
    assert await device(client, "d9") == before
    assert (await send(client, own, "d9", {"level": 1})).status_code == 204
    assert (await get_entity(client, "urn:ngsi-ld:Tank:d9"))["level"]["value"] == 1

"""NGSILD-Tenant: each tenant is a separate hub; unknown tenants are 404 on reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.store.sqlite import SqliteStore
from conftest import BASE, SyncHub, create, get_entity, problem

A = {"NGSILD-Tenant": "city-a"}
B = {"NGSILD-Tenant": "city-b"}
EID = "urn:ngsi-ld:Bin:1"


def bin_(level: int) -> dict[str, Any]:
    return {"id": EID, "type": "Bin", "level": level}


async def test_data_in_a_tenant_is_invisible_elsewhere(client: httpx.AsyncClient) -> None:
    await create(client, bin_(1), headers=A)
    assert (await get_entity(client, EID, headers=A))["level"]["value"] == 1
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")
    resp = await client.get(f"{BASE}/entities", params={"type": "Bin"})
    assert resp.status_code == 200 and resp.json() == [], resp.text
    await create(client, {"id": "urn:ngsi-ld:Other:1", "type": "Other"}, headers=B)
    problem(await client.get(f"{BASE}/entities/{EID}", headers=B), 404, "ResourceNotFound")
    resp = await client.get(f"{BASE}/entities", params={"type": "Bin"}, headers=B)
    assert resp.json() == [], resp.text


async def test_same_id_in_two_tenants(client: httpx.AsyncClient) -> None:
    await create(client, bin_(1), headers=A)
    await create(client, bin_(2), headers=B)
    await create(client, bin_(3))
    assert (await get_entity(client, EID, headers=A))["level"]["value"] == 1
    assert (await get_entity(client, EID, headers=B))["level"]["value"] == 2
    assert (await get_entity(client, EID))["level"]["value"] == 3
    resp = await client.delete(f"{BASE}/entities/{EID}", headers=A)
    assert resp.status_code == 204
    assert (await get_entity(client, EID, headers=B))["level"]["value"] == 2
    assert (await get_entity(client, EID))["level"]["value"] == 3


async def test_updates_stay_in_their_tenant(client: httpx.AsyncClient) -> None:
    await create(client, bin_(1), headers=A)
    await create(client, bin_(1))
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"level": 9}, headers=A)
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["level"]["value"] == 1
    resp = await client.post(f"{BASE}/entityOperations/delete", json=[EID], headers=A)
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["level"]["value"] == 1


@pytest.mark.parametrize(
    "path",
    [
        f"/entities/{EID}",
        "/entities?type=Bin",
        "/types",
        "/attributes",
        f"/temporal/entities/{EID}",
        "/temporal/entities?type=Bin",
    ],
)
async def test_reads_on_an_unknown_tenant_are_404(client: httpx.AsyncClient, path: str) -> None:
    await create(client, bin_(1), headers=A)
    resp = await client.get(BASE + path, headers={"NGSILD-Tenant": "nobody"})
    body = problem(resp, 404)
    assert body["type"].rsplit("/", 1)[-1] in ("NonexistentTenant", "ResourceNotFound"), body


async def test_unknown_tenant_error_type(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        f"{BASE}/entities", params={"type": "Bin"}, headers={"NGSILD-Tenant": "x"}
    )
    problem(resp, 404, "NonexistentTenant")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", f"/entities/{EID}", None),
        ("PATCH", f"/entities/{EID}", {"level": 1}),
        ("PUT", f"/entities/{EID}", {"type": "Bin"}),
        ("POST", f"/entities/{EID}/attrs", {"level": 1}),
        ("PATCH", f"/entities/{EID}/attrs", {"level": 1}),
        ("PATCH", f"/entities/{EID}/attrs/level", {"value": 1}),
        ("DELETE", f"/entities/{EID}/attrs/level", None),
        ("POST", "/entityOperations/update", [bin_(1)]),
        ("POST", "/entityOperations/merge", [bin_(1)]),
        ("POST", "/entityOperations/delete", [EID]),
        ("DELETE", f"/temporal/entities/{EID}", None),
        ("POST", f"/temporal/entities/{EID}/attrs", {"level": {"type": "Property", "value": 1}}),
    ],
)
async def test_writes_that_cannot_create_name_the_unknown_tenant(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """4.14: an operation that does not create a tenant answers NonexistentTenant for one
    that does not exist (not ResourceNotFound per entity), and creates nothing."""
    await create(client, bin_(1), headers=A)
    resp = await client.request(method, BASE + path, json=body, headers={"NGSILD-Tenant": "nobody"})
    problem(resp, 404, "NonexistentTenant")
    resp = await client.get(f"{BASE}/types", headers={"NGSILD-Tenant": "nobody"})
    problem(resp, 404, "NonexistentTenant")


async def test_writes_create_the_tenant(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{BASE}/entityOperations/upsert", json=[bin_(4)], headers={"NGSILD-Tenant": "new"}
    )
    assert resp.status_code == 201, resp.text
    resp = await client.get(f"{BASE}/types", headers={"NGSILD-Tenant": "new"})
    assert resp.status_code == 200 and resp.json()["typeList"] == ["Bin"], resp.text


async def test_temporal_is_per_tenant(client: httpx.AsyncClient) -> None:
    body = {
        "id": EID,
        "type": "Bin",
        "level": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"}],
    }
    assert (await client.post(f"{BASE}/temporal/entities", json=body, headers=A)).status_code == 201
    resp = await client.get(f"{BASE}/temporal/entities/{EID}", headers=A)
    assert resp.status_code == 200 and len(resp.json()["level"]) == 1, resp.text
    await create(client, {"id": "urn:ngsi-ld:X:1", "type": "X"}, headers=B)
    problem(await client.get(f"{BASE}/temporal/entities/{EID}", headers=B), 404, "ResourceNotFound")
    problem(await client.get(f"{BASE}/temporal/entities/{EID}"), 404, "ResourceNotFound")


async def test_discovery_is_per_tenant(client: httpx.AsyncClient) -> None:
    await create(client, bin_(1), headers=A)
    await create(client, {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "lux": 3}, headers=B)
    assert (await client.get(f"{BASE}/types", headers=A)).json()["typeList"] == ["Bin"]
    assert (await client.get(f"{BASE}/types", headers=B)).json()["typeList"] == ["Lamp"]
    assert (await client.get(f"{BASE}/attributes", headers=B)).json()["attributeList"] == ["lux"]
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == []


async def test_a_tenant_whose_content_was_deleted_still_exists(client: httpx.AsyncClient) -> None:
    """4.14: a tenant is created by its first write and is not removed by deleting its
    entities or history: its reads answer 200 with nothing, not NonexistentTenant."""
    await create(client, bin_(1), headers=A)
    assert (await client.delete(f"{BASE}/entities/{EID}", headers=A)).status_code == 204
    resp = await client.delete(f"{BASE}/temporal/entities/{EID}", headers=A)
    assert resp.status_code in (204, 404), resp.text
    resp = await client.get(f"{BASE}/entities", params={"type": "Bin"}, headers=A)
    assert resp.status_code == 200 and resp.json() == [], resp.text
    resp = await client.get(f"{BASE}/types", headers=A)
    assert resp.status_code == 200 and resp.json()["typeList"] == [], resp.text
    problem(await client.get(f"{BASE}/entities/{EID}", headers=A), 404, "ResourceNotFound")


def test_an_older_database_knows_its_tenants(tmp_path: Path) -> None:
    """Schema 6 inferred tenants from what they held; the upgrade records each of them."""
    db = tmp_path / "old.db"
    hub = SyncHub(db)
    for tenant in ("city-a", "city-b"):
        resp = hub.request(
            "POST", f"{BASE}/entities", json=bin_(1), headers={"NGSILD-Tenant": tenant}
        )
        assert resp.status_code == 201, resp.text
    hub.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE tenants")
        conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    store = SqliteStore(db)
    assert store.tenants() == ["city-a", "city-b"]
    store.close()


async def test_two_different_tenant_headers_are_refused(client: httpx.AsyncClient) -> None:
    """A request naming two tenants is ambiguous: 400, and nothing is written to either."""
    await create(client, bin_(1), headers=A)
    both = [("NGSILD-Tenant", "city-a"), ("NGSILD-Tenant", "city-b")]
    resp = await client.post(f"{BASE}/entities", json=bin_(2) | {"id": "urn:x:2"}, headers=both)
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}", headers=both), 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/urn:x:2", headers=A), 404, "ResourceNotFound")
    same = [("NGSILD-Tenant", "city-a"), ("NGSILD-Tenant", "city-a")]
    resp = await client.get(f"{BASE}/entities/{EID}", headers=same)
    assert resp.status_code == 200 and resp.json()["level"]["value"] == 1, resp.text

"""DELETE /entities (purge): what a query selects is deleted, or trimmed with drop= / keep=."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from cityhub.store.base import StoreFull
from conftest import BASE, problem

KV = {"options": "keyValues"}


def lamp(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Lamp:{n}",
        "type": "Lamp",
        "power": {"type": "Property", "value": n},
        "status": {"type": "Property", "value": "on"},
        **extra,
    }


async def make(client: httpx.AsyncClient, entities: list[dict[str, Any]], **headers: str) -> None:
    resp = await client.post(f"{BASE}/entityOperations/create", json=entities, headers=headers)
    assert resp.status_code == 201, resp.text


async def ids_of(client: httpx.AsyncClient, typ: str, **headers: str) -> list[str]:
    resp = await client.get(f"{BASE}/entities", params={"type": typ}, headers=headers)
    assert resp.status_code == 200, resp.text
    return sorted(e["id"] for e in resp.json())


async def test_purge_deletes_what_the_query_selects(client: httpx.AsyncClient) -> None:
    await make(client, [lamp(n) for n in range(5)] + [{"id": "urn:ngsi-ld:Bin:1", "type": "Bin"}])
    resp = await client.delete(f"{BASE}/entities", params={"type": "Lamp", "q": "power>=2"})
    assert resp.status_code == 204, resp.text
    assert await ids_of(client, "Lamp") == ["urn:ngsi-ld:Lamp:0", "urn:ngsi-ld:Lamp:1"]
    assert await ids_of(client, "Bin") == ["urn:ngsi-ld:Bin:1"]
    # an entity's history outlives it, as with DELETE /entities/{id}, and ends with the deletion
    hist = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Lamp:3")
    power = hist.json()["power"]
    assert [i["value"] for i in power] == [3, "urn:ngsi-ld:null"], power
    assert "deletedAt" in power[1]


async def test_drop_removes_attributes_and_records_their_deletion(
    client: httpx.AsyncClient,
) -> None:
    await make(client, [lamp(1), {"id": "urn:ngsi-ld:Lamp:2", "type": "Lamp", "power": 2}])
    sys_kv = {"options": "keyValues,sysAttrs"}
    before = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:2", params=sys_kv)).json()
    resp = await client.delete(f"{BASE}/entities", params={"type": "Lamp", "drop": "status"})
    assert resp.status_code == 204, resp.text
    one = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", params=KV)).json()
    assert one == {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "power": 1}
    hist = await client.get(
        f"{BASE}/temporal/entities/urn:ngsi-ld:Lamp:1", params={"timeproperty": "deletedAt"}
    )
    (status,) = hist.json()["status"]
    assert status["value"] == "urn:ngsi-ld:null" and "deletedAt" in status, status
    # an entity without the attribute is not touched: its modifiedAt stays
    after = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:2", params=sys_kv)).json()
    assert after == before


async def test_keep_leaves_only_the_named_attributes(client: httpx.AsyncClient) -> None:
    await make(client, [lamp(1, colour={"type": "Property", "value": "red"})])
    resp = await client.delete(f"{BASE}/entities", params={"type": "Lamp", "keep": "power"})
    assert resp.status_code == 204, resp.text
    one = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", params=KV)).json()
    assert one == {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "power": 1}


@pytest.mark.parametrize(
    "params",
    [
        {"type": "Lamp", "drop": "power", "keep": "status"},  # exclusive
        {},  # no selection at all would purge everything
        {"type": "Lamp", "q": "power>>"},
    ],
)
async def test_a_refused_purge_changes_nothing(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await make(client, [lamp(1)])
    problem(await client.delete(f"{BASE}/entities", params=params), 400)
    one = (await client.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", params=KV)).json()
    assert one["power"] == 1 and one["status"] == "on"


async def test_purge_stays_in_its_tenant(client: httpx.AsyncClient) -> None:
    await make(client, [lamp(1)])
    await make(client, [lamp(1)], **{"NGSILD-Tenant": "other"})
    resp = await client.delete(f"{BASE}/entities", params={"type": "Lamp"})
    assert resp.status_code == 204
    assert await ids_of(client, "Lamp") == []
    assert await ids_of(client, "Lamp", **{"NGSILD-Tenant": "other"}) == ["urn:ngsi-ld:Lamp:1"]


async def test_a_large_purge_goes_in_slices_and_a_full_disk_says_how_far_it_got(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "SLICE", 3)
    await make(client, [lamp(n) for n in range(8)])
    svc = app.state.entities
    real = svc.purge
    calls: list[int] = []

    def refusing_the_third(tenant: str, ids: list[str], *args: Any) -> int:
        calls.append(len(ids))
        if len(calls) == 3:
            raise StoreFull("database or disk is full")
        return int(real(tenant, ids, *args))

    svc.purge = refusing_the_third
    body = problem(await client.delete(f"{BASE}/entities", params={"type": "Lamp"}), 503)
    assert calls == [3, 3, 2]
    assert "6 of the 8 selected entities were purged" in body["detail"]
    assert len(await ids_of(client, "Lamp")) == 2


async def test_an_entity_changed_after_the_selection_is_purged_only_if_it_still_matches(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The purge selects on a reader and deletes later: 39 of 83 entities PATCHed in between
    (and answered 204) were deleted although they no longer met the query."""
    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.service import EntityService

    await make(client, [lamp(n) for n in range(5)])
    original = EntityService.purge

    def patched_first(self: EntityService, tenant: str, *args: Any) -> int:
        off = {"status": {"type": "Property", "value": "off"}}
        self.merge(tenant, "urn:ngsi-ld:Lamp:3", off, ContextCache().core)  # a PATCH in between
        return original(self, tenant, *args)

    monkeypatch.setattr(EntityService, "purge", patched_first)
    resp = await client.delete(f"{BASE}/entities", params={"type": "Lamp", "q": 'status=="on"'})
    assert resp.status_code == 204, resp.text
    assert await ids_of(client, "Lamp") == ["urn:ngsi-ld:Lamp:3"]

"""Creates that arrive together are inserted together (api/commit.py, decision 019), with the
answers and the stored state of one-by-one creates in arrival order."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from tests.conftest import BASE

from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite.backend import SqliteWriteTx


def _entity(n: int, value: int = 0) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Bin:{n}",
        "type": "Bin",
        "level": {"type": "Property", "value": value, "observedAt": "2026-12-01T10:00:00Z"},
    }


async def _post(client: httpx.AsyncClient, body: Any, tenant: str = "") -> int:
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    return (await client.post(f"{BASE}/entities", json=body, headers=headers)).status_code


async def _level(client: httpx.AsyncClient, n: int) -> Any:
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:{n}")
    return resp.json()["level"]["value"] if resp.status_code == 200 else resp.status_code


@pytest.fixture
def bulk_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every bulk insert the store runs."""
    sizes: list[int] = []
    original = SqliteWriteTx.insert_many

    def insert_many(self: SqliteWriteTx, docs: list[Any]) -> dict[int, Any]:
        sizes.append(len(docs))
        return original(self, docs)

    monkeypatch.setattr(SqliteWriteTx, "insert_many", insert_many)
    return sizes


async def test_creates_that_arrive_together_are_one_bulk_insert(
    client: httpx.AsyncClient, bulk_sizes: list[int]
) -> None:
    codes = await asyncio.gather(*(_post(client, _entity(n, n)) for n in range(20)))
    assert codes == [201] * 20
    assert bulk_sizes == [20]
    assert [await _level(client, n) for n in range(20)] == list(range(20))
    history = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Bin:7")
    assert [i["value"] for i in history.json()["level"]] == [7]


async def test_a_taken_or_repeated_id_fails_alone(
    client: httpx.AsyncClient, bulk_sizes: list[int]
) -> None:
    assert await _post(client, _entity(9, 90)) == 201
    codes = await asyncio.gather(
        _post(client, _entity(1, 1)),
        _post(client, _entity(2, 2)),
        _post(client, _entity(1, 100)),  # the same id again: the first one wins
        _post(client, _entity(9, 99)),  # stored before
    )
    assert codes == [201, 201, 409, 409]
    assert [await _level(client, n) for n in (1, 2, 9)] == [1, 2, 90]


async def test_other_writes_between_creates_keep_their_order(
    client: httpx.AsyncClient, bulk_sizes: list[int]
) -> None:
    codes = await asyncio.gather(
        _post(client, _entity(1, 1)),
        client.delete(f"{BASE}/entities/urn:ngsi-ld:Bin:1"),
        _post(client, _entity(1, 2)),
    )
    assert [c if isinstance(c, int) else c.status_code for c in codes] == [201, 204, 201]
    assert await _level(client, 1) == 2


async def test_tenants_are_never_merged(client: httpx.AsyncClient, bulk_sizes: list[int]) -> None:
    codes = await asyncio.gather(_post(client, _entity(1, 1)), _post(client, _entity(1, 2), "b"))
    assert codes == [201, 201]
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:1", headers={"NGSILD-Tenant": "b"})
    assert resp.json()["level"]["value"] == 2
    assert await _level(client, 1) == 1


async def test_a_bulk_insert_that_fails_half_way_is_undone_and_each_create_runs_alone(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = EntityService.create_many

    def fails_after_writing(self: EntityService, tenant: str, docs: list[Any]) -> Any:
        original(self, tenant, docs)
        raise RuntimeError("the disk hiccupped")

    monkeypatch.setattr(EntityService, "create_many", fails_after_writing)
    codes = await asyncio.gather(*(_post(client, _entity(n, n)) for n in range(5)))
    assert codes == [201] * 5, "the first, rolled-back try must not make the ids look taken"
    assert [await _level(client, n) for n in range(5)] == list(range(5))
    resp = await client.get(f"{BASE}/entities", params={"type": "Bin", "count": "true"})
    assert resp.headers["NGSILD-Results-Count"] == "5"


async def test_an_entity_without_attributes_has_a_temporal_entity_however_it_was_created(
    client: httpx.AsyncClient, bulk_sizes: list[int]
) -> None:
    alone = {"id": "urn:ngsi-ld:Bin:alone", "type": "Bin"}
    assert await _post(client, alone) == 201
    assert bulk_sizes == []  # written one by one
    together = [{"id": f"urn:ngsi-ld:Bin:t{n}", "type": "Bin"} for n in range(5)]
    assert await asyncio.gather(*(_post(client, body) for body in together)) == [201] * 5
    assert bulk_sizes == [5]
    for body in [alone, *together]:
        resp = await client.get(f"{BASE}/temporal/entities/{body['id']}")
        assert resp.status_code == 200, resp.text
        assert resp.json() == body

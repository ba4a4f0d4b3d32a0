"""A large batch request is written a slice at a time, so it never holds the whole hub.

Each slice of api/commit.SLICE entities is its own group-commit job. The tests shrink SLICE to
a few entities.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from cityhub.store.base import StoreFull
from conftest import BASE, problem

UPSERT = f"{BASE}/entityOperations/upsert"


def ent(n: int, value: int = 0) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:T:{n}", "type": "T", "v": {"type": "Property", "value": value}}


def counting(
    app: Starlette,
    name: str,
    fail_on: int | None = None,
    fault: Exception = StoreFull("database or disk is full"),
) -> list[int]:
    """Wrap the entity service's batch method: record each call's size; raise `fault` (by
    default StoreFull, as a full disk would) on call number fail_on (1-based)."""
    svc = app.state.entities
    real: Callable[..., Any] = getattr(svc, name)
    sizes: list[int] = []

    def wrapped(tenant: str, items: Any, *args: Any) -> Any:
        sizes.append(len(items))
        if len(sizes) == fail_on:
            raise fault
        return real(tenant, items, *args)

    setattr(svc, name, wrapped)
    return sizes


async def stored(client: httpx.AsyncClient, ids: list[str]) -> list[str]:
    return [i for i in ids if (await client.get(f"{BASE}/entities/{i}")).status_code == 200]


@pytest.fixture
def slice3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit, "SLICE", 3)


@pytest.mark.usefixtures("slice3")
async def test_slices_give_the_answer_one_job_gives(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    sizes = counting(app, "batch_upsert")
    body: list[Any] = [ent(n) for n in range(8)]
    body[4] = {"id": "urn:ngsi-ld:T:4"}  # no type: fails alone
    body.append(ent(1, value=99))  # a later slice replaces an entity an earlier one created
    resp = await client.post(UPSERT, json=body)
    assert sizes == [3, 3, 3]
    assert resp.status_code == 207, resp.text
    out = resp.json()
    assert out["success"] == [f"urn:ngsi-ld:T:{n}" for n in (0, 1, 2, 3, 5, 6, 7, 1)]
    assert [e["entityId"] for e in out["errors"]] == ["urn:ngsi-ld:T:4"]
    assert out["errors"][0]["error"]["status"] == 400
    one = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:1", params={"options": "keyValues"})
    assert one.json()["v"] == 99
    created = await client.post(UPSERT, json=[ent(n) for n in range(20, 27)])
    assert created.status_code == 201 and created.json() == [
        f"urn:ngsi-ld:T:{n}" for n in range(20, 27)
    ]


@pytest.mark.usefixtures("slice3")
async def test_other_requests_are_answered_between_slices(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await client.post(f"{BASE}/entities", json=ent(100))
    svc = app.state.entities
    real = svc.batch_create
    read: list[asyncio.Task[httpx.Response]] = []
    seen: list[bool] = []

    def spying(tenant: str, items: Any, *args: Any) -> Any:
        if not read:  # the first slice: another client asks for an entity now
            read.append(
                asyncio.get_running_loop().create_task(
                    client.get(f"{BASE}/entities/urn:ngsi-ld:T:100")
                )
            )
        seen.append(read[0].done())
        return real(tenant, items, *args)

    svc.batch_create = spying
    resp = await client.post(f"{BASE}/entityOperations/create", json=[ent(n) for n in range(9)])
    assert resp.status_code == 201
    assert seen[0] is False and seen[-1] is True, "the read was answered before the last slice"
    assert (await read[0]).status_code == 200


@pytest.mark.usefixtures("slice3")
@pytest.mark.parametrize(
    ("fault", "fail_on", "status"),
    [(StoreFull("database or disk is full"), 3, 503), (RuntimeError("a bug"), 2, 500)],
    ids=["full-disk", "fault"],
)
async def test_a_failure_in_a_later_slice_names_what_was_stored(
    app: Starlette, client: httpx.AsyncClient, fault: Exception, fail_on: int, status: int
) -> None:
    """Earlier slices are stored: the rest fail entity by entity (207), never a 500 for the
    whole request, which would tell the client nothing happened."""
    counting(app, "batch_create", fail_on=fail_on, fault=fault)
    ids = [f"urn:ngsi-ld:T:{n}" for n in range(8)]
    done = 3 * (fail_on - 1)
    resp = await client.post(f"{BASE}/entityOperations/create", json=[ent(n) for n in range(8)])
    assert resp.status_code == 207, resp.text
    out = resp.json()
    assert out["success"] == ids[:done]
    assert [e["entityId"] for e in out["errors"]] == ids[done:]
    assert {e["error"]["status"] for e in out["errors"]} == {status}
    assert await stored(client, ids) == ids[:done]
    # each entity's error is its own: "nothing of this request was stored" was untrue
    assert all("nothing" not in e["error"]["detail"] for e in out["errors"]), out["errors"]


@pytest.mark.usefixtures("slice3")
async def test_a_full_disk_in_the_first_slice_fails_the_request_and_stores_nothing(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    counting(app, "batch_create", fail_on=1)
    resp = await client.post(f"{BASE}/entityOperations/create", json=[ent(n) for n in range(8)])
    assert "storage is full" in problem(resp, 503)["detail"]
    assert await stored(client, [f"urn:ngsi-ld:T:{n}" for n in range(8)]) == []


async def test_large_entities_make_smaller_slices(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice is bound by its JSON's elements and bytes too: 1,000 entities of 200 attributes
    were one job that held every other request for 12 s."""
    monkeypatch.setattr(commit, "SLICE_ELEMENTS", 10)
    sizes = counting(app, "batch_upsert")
    wide = {f"w{i}": {"type": "Property", "value": i} for i in range(20)}
    body = [ent(n) for n in range(6)] + [{**ent(6), **wide}] + [ent(n) for n in range(7, 10)]
    resp = await client.post(UPSERT, json=body)
    assert resp.status_code == 201, resp.text
    # ent(): 4 elements (3 commas), so 2 fit in 10; a wide entity is a slice of its own
    assert sizes == [2, 2, 2, 1, 2, 1]
    assert resp.json() == [f"urn:ngsi-ld:T:{n}" for n in range(10)]
    monkeypatch.setattr(commit, "SLICE_ELEMENTS", 10_000)
    monkeypatch.setattr(commit, "SLICE_BYTES", 250)
    sizes.clear()
    resp = await client.post(UPSERT, json=[ent(n, value=1) for n in range(10)])
    assert resp.status_code == 204, resp.text
    assert sizes == [3, 3, 3, 1]  # 69-byte entities


def test_a_batch_of_a_thousand_typical_city_entities_is_one_slice() -> None:
    """Slicing bounds the pathological batch, not the usual one: 1,000 sensors of six
    attributes stay one transaction (one COMMIT), as before the element bound."""
    sensor = {
        "type": "AirQualityObserved",
        "temperature": {
            "type": "Property",
            "value": 21.5,
            "unitCode": "CEL",
            "observedAt": "2024-01-01T00:00:00Z",
        },
        "humidity": {"type": "Property", "value": 55.1, "unitCode": "P1"},
        "battery": {"type": "Property", "value": 80},
        "status": {"type": "Property", "value": "ok"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [2.35, 48.85]},
        },
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:d1"},
    }
    batch = [{"id": f"urn:ngsi-ld:AirQualityObserved:{n}", **sensor} for n in range(1_000)]
    assert [s[:2] for s in commit.entity_slices(batch)] == [(0, 1_000)]
    wide = {f"w{i}": {"type": "Property", "value": i} for i in range(200)}
    assert len(list(commit.entity_slices([{**e, **wide} for e in batch]))) >= 10

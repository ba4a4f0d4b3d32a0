"""One entity's JSON is bounded in bytes (CITYHUB_MAX_ENTITY_BYTES, decision 074) on every path
that stores one; past the bound the write is a 400 BadRequestData and nothing of it is kept."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.settings import Settings
from cityhub.store.sqlite import SqliteStore
from conftest import BASE, problem

BOUND = 8192  # bytes of stored JSON: small, so that the tests stay fast
BIG = "x" * (BOUND + 1)  # a value that alone passes the bound
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def app(db_path: Path) -> Starlette:
    """A hub whose entities may take BOUND bytes of JSON."""
    return create_app(Settings(db=str(db_path), max_entity_bytes=BOUND))


def _entity(n: int, value: Any = 1) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Bin:{n}",
        "type": "Bin",
        "level": {"type": "Property", "value": value},
    }


async def _level(client: httpx.AsyncClient, n: int) -> Any:
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:{n}")
    return resp.json()["level"]["value"] if resp.status_code == 200 else resp.status_code


async def _history(client: httpx.AsyncClient, n: int) -> list[Any]:
    resp = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Bin:{n}")
    if resp.status_code != 200:
        return [resp.status_code]
    level = resp.json().get("level", [])
    return [i["value"] for i in (level if isinstance(level, list) else [level])]


def _refused(resp: httpx.Response) -> None:
    body = problem(resp, 400, "BadRequestData")
    assert "CITYHUB_MAX_ENTITY_BYTES" in body["detail"], body


async def test_a_create_past_the_bound_is_refused_and_not_stored(
    client: httpx.AsyncClient,
) -> None:
    _refused(await client.post(f"{BASE}/entities", json=_entity(1, BIG)))
    assert await _level(client, 1) == 404
    assert await _history(client, 1) == [404]
    near = "y" * (BOUND - 400)  # the rest of the stored document fits in 400 bytes
    assert (await client.post(f"{BASE}/entities", json=_entity(2, near))).status_code == 201
    assert await _level(client, 2) == near


async def test_creates_that_arrive_together_fail_alone(client: httpx.AsyncClient) -> None:
    bodies = [_entity(n, BIG if n == 3 else n) for n in range(6)]
    answers = await asyncio.gather(*(client.post(f"{BASE}/entities", json=b) for b in bodies))
    assert [r.status_code for r in answers] == [201, 201, 201, 400, 201, 201]
    _refused(answers[3])
    assert [await _level(client, n) for n in range(6)] == [0, 1, 2, 404, 4, 5]


async def test_a_put_past_the_bound_leaves_the_entity_as_it_was(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(f"{BASE}/entities", json=_entity(1, 5))).status_code == 201
    body = {"type": "Bin", "level": {"type": "Property", "value": BIG}}
    _refused(await client.put(f"{BASE}/entities/urn:ngsi-ld:Bin:1", json=body))
    assert await _level(client, 1) == 5
    assert await _history(client, 1) == [5]


async def test_a_merge_that_grows_the_entity_past_the_bound_is_refused_whole(
    client: httpx.AsyncClient,
) -> None:
    half = "h" * (BOUND // 2)
    assert (await client.post(f"{BASE}/entities", json=_entity(1, half))).status_code == 201
    merge = {  # a new attribute changed, another added: together past the bound
        "level": {"type": "Property", "value": half + "!"},
        "note": {"type": "Property", "value": "n" * (BOUND // 2 + 100)},
    }
    _refused(await client.patch(f"{BASE}/entities/urn:ngsi-ld:Bin:1", json=merge))
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:1")
    assert resp.json()["level"]["value"] == half and "note" not in resp.json()
    assert await _history(client, 1) == [half]
    # the same growth by append and by attribute update
    append = {"note": merge["note"]}
    _refused(await client.post(f"{BASE}/entities/urn:ngsi-ld:Bin:1/attrs", json=append))
    _refused(await client.patch(f"{BASE}/entities/urn:ngsi-ld:Bin:1/attrs", json=append))
    grown = {"value": BIG}
    _refused(await client.patch(f"{BASE}/entities/urn:ngsi-ld:Bin:1/attrs/level", json=grown))
    assert await _level(client, 1) == half
    # a merge that shrinks it is taken
    shrink = {"level": {"type": "Property", "value": "s"}}
    assert (
        await client.patch(f"{BASE}/entities/urn:ngsi-ld:Bin:1", json=shrink)
    ).status_code == 204
    assert await _level(client, 1) == "s"


@pytest.mark.parametrize("op", ["create", "upsert", "upsert?options=update"])
async def test_a_batch_item_past_the_bound_fails_alone(client: httpx.AsyncClient, op: str) -> None:
    assert (await client.post(f"{BASE}/entities", json=_entity(9, 9))).status_code == 201
    items = [_entity(1, 1), _entity(2, BIG), _entity(3, 3)]
    if op != "create":  # an existing entity replaced or updated past the bound
        items.append(_entity(9, BIG))
    resp = await client.post(f"{BASE}/entityOperations/{op}", json=items)
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert sorted(body["success"]) == ["urn:ngsi-ld:Bin:1", "urn:ngsi-ld:Bin:3"]
    failed = {e["entityId"]: e["error"] for e in body["errors"]}
    expected = {"urn:ngsi-ld:Bin:2"} | ({"urn:ngsi-ld:Bin:9"} if op != "create" else set())
    assert set(failed) == expected
    for error in failed.values():
        assert error["type"].endswith("/BadRequestData") and error["status"] == 400, error
    assert [await _level(client, n) for n in (1, 2, 3, 9)] == [1, 404, 3, 9]
    assert await _history(client, 9) == [9]


async def test_a_batch_merge_item_that_grows_past_the_bound_fails_alone(
    client: httpx.AsyncClient,
) -> None:
    for n in (1, 2):
        assert (await client.post(f"{BASE}/entities", json=_entity(n, n))).status_code == 201
    items = [
        {"id": "urn:ngsi-ld:Bin:1", "level": {"type": "Property", "value": BIG}},
        {"id": "urn:ngsi-ld:Bin:2", "level": {"type": "Property", "value": 20}},
    ]
    resp = await client.post(f"{BASE}/entityOperations/merge", json=items)
    assert resp.status_code == 207, resp.text
    assert resp.json()["success"] == ["urn:ngsi-ld:Bin:2"]
    assert [e["entityId"] for e in resp.json()["errors"]] == ["urn:ngsi-ld:Bin:1"]
    assert [await _level(client, n) for n in (1, 2)] == [1, 20]


async def test_a_temporal_instance_past_the_bound_is_refused(client: httpx.AsyncClient) -> None:
    def body(*values: Any) -> dict[str, Any]:
        return {
            "id": "urn:ngsi-ld:Bin:1",
            "type": "Bin",
            "level": [
                {"type": "Property", "value": v, "observedAt": f"2024-01-0{i + 1}T00:00:00Z"}
                for i, v in enumerate(values)
            ],
        }

    _refused(await client.post(f"{BASE}/temporal/entities", json=body(1, BIG)))
    assert await _history(client, 1) == [404]
    # a long history of small instances may pass the bound in all: each one is bounded
    small = "s" * (BOUND // 4)
    resp = await client.post(f"{BASE}/temporal/entities", json=body(*[small] * 6))
    assert resp.status_code == 201, resp.text
    assert await _history(client, 1) == [small] * 6
    append = {"level": body(BIG)["level"]}
    url = f"{BASE}/temporal/entities/urn:ngsi-ld:Bin:1/attrs"
    _refused(await client.post(url, json=append))
    resp = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Bin:1")
    iid = resp.json()["level"][0]["instanceId"]
    patch = {"type": "Property", "value": BIG}
    _refused(await client.patch(f"{url}/level/{iid}", json=patch))
    assert await _history(client, 1) == [small] * 6


def test_an_import_skips_an_entity_past_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYHUB_MAX_ENTITY_BYTES", str(BOUND))
    db = tmp_path / "city.db"
    source = tmp_path / "rooms.csv"
    source.write_text(f"id,name\nr1,small\nr2,{BIG}\nr3,also small\n")
    argv = ["import", "csv", str(source), "--type", "Room", "--db", str(db), "--tenant", "t1"]
    main([*argv, "--no-progress"])
    out = capsys.readouterr().out
    assert "2 created, 0 updated, 0 unchanged, 1 rejected" in out, out
    store = SqliteStore(str(db))
    try:
        kept = [store.get("t1", f"urn:ngsi-ld:Room:r{n}") is not None for n in (1, 2, 3)]
    finally:
        store.close()
    assert kept == [True, False, True]

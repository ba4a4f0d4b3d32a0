"""GET /entities/{id} reuses a rendered body only while the stored entity is unchanged."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cityhub.api.read_memo import ReadMemo
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.service import EntityService
from cityhub.store.sqlite import SqliteStore
from conftest import BASE, create, get_entity

EID = "urn:ngsi-ld:Bin:memo"


def bin_(level: int) -> dict[str, Any]:
    return {"id": EID, "type": "Bin", "level": {"type": "Property", "value": level}}


async def test_a_read_after_a_write_sees_the_write(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    await create(client, bin_(1))
    for _ in range(2):  # the second read comes from the memo
        assert (await get_entity(client, EID))["level"]["value"] == 1
    assert len(app.state.read_memo) == 1
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"level": 2})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["level"]["value"] == 2
    assert (await client.delete(f"{BASE}/entities/{EID}")).status_code == 204
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404


async def test_a_write_by_another_process_is_seen(client: httpx.AsyncClient, db_path: Path) -> None:
    await create(client, bin_(1))
    assert (await get_entity(client, EID))["level"]["value"] == 1
    other = SqliteStore(db_path)  # e.g. `cityhub import --db` on the same file
    EntityService(other).batch_upsert("", [bin_(7)], ContextCache().core, "update")
    other.close()
    assert (await get_entity(client, EID))["level"]["value"] == 7


async def test_tenants_and_media_types_get_their_own_bodies(client: httpx.AsyncClient) -> None:
    await create(client, bin_(1))
    await create(client, bin_(2), headers={"NGSILD-Tenant": "b"})
    for _ in range(2):
        assert (await get_entity(client, EID))["level"]["value"] == 1
        body = await get_entity(client, EID, headers={"NGSILD-Tenant": "b"})
        assert body["level"]["value"] == 2
        ld = await get_entity(client, EID, headers={"Accept": "application/ld+json"})
        assert "@context" in ld and ld["level"]["value"] == 1
        plain = await client.get(f"{BASE}/entities/{EID}")
        assert "@context" not in plain.json() and "rel=" in plain.headers["link"]


def test_the_memo_is_bounded_and_exact() -> None:
    core = ContextCache().core
    other = ContextCache().compile({"level": "https://example.org/level"})
    memo = ReadMemo(size=2)
    memo.put("a", '{"v":1}', core, b"A")
    memo.put("b", '{"v":1}', core, b"B")
    assert memo.get("a", '{"v":1}', core) == b"A"
    assert memo.get("a", '{"v":2}', core) is None, "another stored text"
    assert memo.get("a", '{"v":1}', other) is None, "another @context"
    memo.put("c", '{"v":1}', core, b"C")  # evicts the oldest, "a"
    assert len(memo) == 2 and memo.get("a", '{"v":1}', core) is None
    assert memo.get("c", '{"v":1}', core) == b"C"


async def test_large_entities_read_by_id_hold_a_bounded_amount_of_memory(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    """The memo held 4,096 entries whatever their size: 100 plain reads of entities with a
    4 MB string took the hub from 263 to 1,107 MB RSS (probe races), 4,096 would hold 32 GB."""
    blob = "x" * 1_000_000
    for i in range(40):
        doc = {"id": f"{EID}:{i}", "type": "Bin", "blob": {"type": "Property", "value": blob}}
        await create(client, doc)
        for _ in range(2):
            assert (await get_entity(client, f"{EID}:{i}"))["blob"]["value"] == blob
    memo: ReadMemo = app.state.read_memo
    held = sum(len(text) + len(body) for text, _, body in memo._entries.values())
    assert held <= 32 * 2**20, f"{held:,} bytes of texts and bodies held"
    await create(client, bin_(1))  # small entities are still reused
    for _ in range(2):
        assert (await get_entity(client, EID))["level"]["value"] == 1
    assert memo.get(("", EID, "application/json"), memo_text(app, EID), app.state.contexts.core)


def memo_text(app: Starlette, eid: str) -> str:
    """The stored JSON text of an entity, as a plain read compares it."""
    text = app.state.store.get_json("", eid)
    assert text is not None
    return text


def test_the_memo_keeps_at_most_its_bytes_and_skips_what_would_take_most_of_them() -> None:
    core = ContextCache().core
    text = "t" * 100
    one = sys.getsizeof(text) + 200  # what an entry of this text and a 200-byte body takes
    memo = ReadMemo(size=100, max_bytes=3 * one, entry_max=2 * one)
    for key in "abc":
        memo.put(key, text, core, key.encode() * 200)
    assert memo.bytes == 3 * one and memo.get("a", text, core) == b"a" * 200
    memo.put("d", text, core, b"d" * 200)  # past the bytes: the oldest, "a", goes
    assert memo.get("a", text, core) is None and memo.get("d", text, core) == b"d" * 200
    assert memo.bytes == 3 * one and len(memo) == 3
    memo.put("b", text, core, b"x" * (2 * one))  # larger than entry_max: not kept, nor the old
    assert memo.get("b", text, core) is None
    assert memo.bytes == 2 * one and len(memo) == 2

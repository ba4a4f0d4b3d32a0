"""A batch holds at most MAX_BATCH_ITEMS items (decision 094): every item, however small,
earns its own line in a 207, so 500,000 two-byte items (a 1 MB body) came back as an 89 MB
answer built on the event loop. A larger batch is refused whole, before anything is written."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from cityhub.api.body_limits import MAX_BATCH_ITEMS
from cityhub.cli import parser
from conftest import BASE, create, get_entity, problem

OPS = f"{BASE}/entityOperations"
EID = "urn:ngsi-ld:Lamp:1"


def lamp(value: int) -> dict[str, Any]:
    return {"id": EID, "type": "Lamp", "level": {"type": "Property", "value": value}}


def items(op: str, value: int) -> list[Any]:
    """One real item for op (an id for delete, else the lamp at value)."""
    return [EID] if op == "delete" else [lamp(value)]


def padded(first: list[Any], total: int) -> bytes:
    """A batch body of `total` items: `first`, then the smallest JSON values."""
    tail = b",1" * (total - len(first))
    return orjson.dumps(first)[:-1] + tail + b"]"


@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge", "delete"])
async def test_a_batch_past_the_bound_is_refused_whole(client: httpx.AsyncClient, op: str) -> None:
    if op != "create":
        await create(client, lamp(1))
    body = padded(items(op, 2), MAX_BATCH_ITEMS + 1)
    resp = await client.post(
        f"{OPS}/{op}", content=body, headers={"Content-Type": "application/json"}
    )
    detail = problem(resp, 413)["detail"]
    assert f"{MAX_BATCH_ITEMS:,}" in detail, detail
    # nothing of it was written: the lamp is as it was (absent for create)
    got = await client.get(f"{BASE}/entities/{EID}")
    if op == "create":
        assert got.status_code == 404, got.text
    else:
        assert (await get_entity(client, EID))["level"]["value"] == 1


async def test_a_batch_at_the_bound_is_answered_item_by_item(client: httpx.AsyncClient) -> None:
    await create(client, lamp(1))
    body = padded(items("upsert", 2), MAX_BATCH_ITEMS)
    resp = await client.post(
        f"{OPS}/upsert", content=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 207, resp.text[:300]
    result = resp.json()
    assert result["success"] == [EID]
    assert len(result["errors"]) == MAX_BATCH_ITEMS - 1
    assert (await get_entity(client, EID))["level"]["value"] == 2


def test_cityhub_import_sends_no_chunk_past_the_bound() -> None:
    args = ["import", "csv", "f.csv", "--type", "T", "--chunk-size"]
    ok = parser().parse_args([*args, str(MAX_BATCH_ITEMS)])
    assert ok.chunk_size == MAX_BATCH_ITEMS
    with pytest.raises(SystemExit):
        parser().parse_args([*args, str(MAX_BATCH_ITEMS + 1)])

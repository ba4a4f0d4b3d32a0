"""A batch whose items all fail keeps one error per item until it answers, and the 207 is
built from them on the event loop. Each full (generation 2) collection walks every object
alive, and the errors piling up set off one after another: 6-8 of them, about 3 s in all,
for 100,000 failed items, while every other request waited (probe batch.md)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from cityhub.api.body_limits import MAX_BATCH_ITEMS
from conftest import BASE


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """The full collections started while the test runs, counted by a gc callback."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(1)

    gc.collect()
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)


@pytest.mark.parametrize("op", ["delete", "create"])
async def test_a_batch_of_failing_items_sets_off_no_run_of_full_collections(
    client: httpx.AsyncClient, full_collections: list[int], op: str
) -> None:
    body = b"[" + b",".join([b"1" if op == "delete" else b"{}"] * MAX_BATCH_ITEMS) + b"]"
    resp = await client.post(
        f"{BASE}/entityOperations/{op}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    during = len(full_collections)  # before this test parses the answer
    assert resp.status_code == 207, resp.text[:300]
    result = orjson.loads(resp.content)
    assert result["success"] == []
    assert len(result["errors"]) == MAX_BATCH_ITEMS
    assert result["errors"][0]["error"]["status"] == 400
    # at most one full pass over the heap for the whole request, not one per growth of it
    assert during <= 1, f"{during} full collections"

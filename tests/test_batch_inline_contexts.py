"""The items of one ld+json batch bring at most 4 MiB of distinct inline @contexts in all
(MAX_CONTEXT_BYTES); an item past it fails alone, as an item with a bad @context does.
15 items of ~4 MiB each compiled on the loop for 5.9 s of CPU (hostile probe)."""

from __future__ import annotations

from typing import Any

import httpx

from cityhub.ngsild.context import MAX_CONTEXT_BYTES
from conftest import BASE, CORE, JSONLD

LD = {"Content-Type": JSONLD}


def item(i: int, terms: int) -> dict[str, Any]:
    """An entity whose inline @context holds `terms` terms of its own (~40 bytes each)."""
    own = {f"t{i}_{j}": f"https://example.org/{i}/{j}" for j in range(terms)}
    return {"id": f"urn:ngsi-ld:T:{i}", "type": "T", "@context": [own, CORE]}


async def test_items_past_the_batch_bound_fail_alone(client: httpx.AsyncClient) -> None:
    terms = MAX_CONTEXT_BYTES // 3 // 40  # three such contexts pass the bound, two do not
    body = [item(0, terms), item(1, terms), item(1, terms) | {"id": "urn:ngsi-ld:T:1b"}]
    body.append(item(2, terms))
    resp = await client.post(f"{BASE}/entityOperations/create", json=body, headers=LD)
    assert resp.status_code == 207, resp.text[:300]
    result = resp.json()
    assert result["success"] == ["urn:ngsi-ld:T:0", "urn:ngsi-ld:T:1", "urn:ngsi-ld:T:1b"]
    [error] = result["errors"]
    assert error["entityId"] == "urn:ngsi-ld:T:2"
    assert "distinct inline @contexts" in error["error"]["detail"]
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:T:2")).status_code == 404


async def test_one_shared_context_counts_once(client: httpx.AsyncClient) -> None:
    shared = item(0, MAX_CONTEXT_BYTES // 2 // 40)["@context"]
    body = [{"id": f"urn:ngsi-ld:T:{i}", "type": "T", "@context": shared} for i in range(5)]
    resp = await client.post(f"{BASE}/entityOperations/create", json=body, headers=LD)
    assert resp.status_code == 201, resp.text[:300]

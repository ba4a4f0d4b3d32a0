"""Temporal queries by type with q: pages in insertion order, the same page with and without
count=true (the walk without it stops at the page's end), over interleaved types."""

from __future__ import annotations

import httpx
import pytest

from conftest import BASE, page_links, walk_pages


async def _fleet(client: httpx.AsyncClient) -> None:
    """30 sensors with n = i, interleaved with 30 lamps that also have n."""
    batch = []
    for i in range(30):
        batch.append({"id": f"urn:ngsi-ld:Sensor:{i}", "type": "Sensor", "n": i})
        batch.append({"id": f"urn:ngsi-ld:Lamp:{i}", "type": "Lamp", "n": i})
    resp = await client.post(f"{BASE}/entityOperations/create", json=batch)
    assert resp.status_code == 201, resp.text


async def _page(client: httpx.AsyncClient, **params: str) -> tuple[list[str], str | None]:
    resp = await client.get(f"{BASE}/temporal/entities", params={"type": "Sensor", **params})
    assert resp.status_code == 200, resp.text
    return [e["id"] for e in resp.json()], resp.headers.get("NGSILD-Results-Count")


async def test_q_pages_in_order_with_and_without_count(client: httpx.AsyncClient) -> None:
    await _fleet(client)
    expected = [f"urn:ngsi-ld:Sensor:{i}" for i in range(15, 20)]
    ids, count = await _page(client, q="n>=10", limit="5", offset="5")
    assert ids == expected and count is None
    ids, count = await _page(client, q="n>=10", limit="5", offset="5", count="true")
    assert ids == expected and count == "20"
    ids, _ = await _page(client, q="n>=10", limit="5", offset="18")
    assert ids == ["urn:ngsi-ld:Sensor:28", "urn:ngsi-ld:Sensor:29"]


async def test_type_pages_in_insertion_order(client: httpx.AsyncClient) -> None:
    await _fleet(client)
    ids, count = await _page(client, limit="4", offset="26", count="true", lastN="1")
    assert ids == [f"urn:ngsi-ld:Sensor:{i}" for i in range(26, 30)] and count == "30"


@pytest.mark.parametrize("count", [True, False])
async def test_a_query_links_to_the_prev_and_next_page(
    client: httpx.AsyncClient, count: bool
) -> None:
    """5.5.9: GET /temporal/entities sent no next link, as GET /entities does, so a client
    that follows Link headers stopped after the first page."""
    await _fleet(client)
    params = {"type": "Sensor", "q": "n>=20", "limit": "4", "lastN": "1"}
    if count:
        params["count"] = "true"
    first = await client.get(f"{BASE}/temporal/entities", params=params)
    seen, resp = await walk_pages(client, first)
    assert seen == [f"urn:ngsi-ld:Sensor:{i}" for i in range(20, 30)]
    assert "lastN=1" in page_links(resp)["prev"], "the other parameters are kept"

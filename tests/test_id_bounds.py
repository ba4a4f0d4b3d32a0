"""Ids (any URI the hub keys on) are at most 1,024 characters in a URL: a 100,006-character
entity id was stored and echoed in a 100 KB Location header no proxy could then address."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from cityhub.ngsild.entity import MAX_URI_LENGTH
from conftest import BASE, create, problem

LONGEST = "urn:ngsi-ld:T:" + "x" * (MAX_URI_LENGTH - len("urn:ngsi-ld:T:"))
TOO_LONG = LONGEST + "x"
ENCODED_TOO_LONG = "urn:ngsi-ld:T:" + "é" * 170  # 184 characters, 1,034 percent-encoded


def entity(eid: str, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "T", "p": {"type": "Property", "value": 1}, **attrs}


async def test_an_entity_id_of_the_longest_length_is_stored_and_addressable(
    client: httpx.AsyncClient,
) -> None:
    resp = await create(client, entity(LONGEST))
    assert resp.headers["Location"] == f"{BASE}/entities/{quote(LONGEST, safe=':')}"
    assert (await client.get(resp.headers["Location"])).status_code == 200


@pytest.mark.parametrize("eid", [TOO_LONG, ENCODED_TOO_LONG, "urn:x:" + "y" * 100_000])
async def test_a_longer_entity_id_is_refused(client: httpx.AsyncClient, eid: str) -> None:
    resp = await client.post(f"{BASE}/entities", json=entity(eid))
    body = problem(resp, 400, "BadRequestData")
    assert "at most 1,024 characters" in body["detail"]
    assert len(body["detail"]) < 300  # the id is not echoed in full
    assert "Location" not in resp.headers
    batch = await client.post(f"{BASE}/entityOperations/upsert", json=[entity(eid)])
    assert batch.status_code in (400, 207)
    assert (await client.get(f"{BASE}/entities", params={"type": "T"})).json() == []
    if len(eid) < 10_000:  # httpx itself refuses a 100 KB URL
        problem(await client.get(f"{BASE}/entities/{quote(eid, safe=':')}"), 400)


async def test_other_keys_are_bounded_too(client: httpx.AsyncClient) -> None:
    """datasetId, subscription and registration ids, instanceId: every URI the hub keys on."""
    multi = entity("urn:ngsi-ld:T:1", q={"type": "Property", "value": 1, "datasetId": TOO_LONG})
    problem(await client.post(f"{BASE}/entities", json=multi), 400)
    sub = {
        "id": TOO_LONG,
        "type": "Subscription",
        "entities": [{"type": "T"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    problem(await client.post(f"{BASE}/subscriptions", json=sub), 400)
    problem(await client.get(f"{BASE}/subscriptions/{TOO_LONG}"), 400)
    reg = {
        "id": TOO_LONG,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "T"}]}],
        "endpoint": "http://127.0.0.1:9",
    }
    problem(await client.post(f"{BASE}/csourceRegistrations", json=reg), 400)
    await create(client, entity("urn:ngsi-ld:T:2"))
    path = f"{BASE}/temporal/entities/urn:ngsi-ld:T:2/attrs/p/{TOO_LONG}"
    problem(await client.delete(path), 400)

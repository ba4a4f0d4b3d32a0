"""The Location of a created entity, temporal entity or subscription names it percent-encoded
as quote(id, safe=":") encodes it; ids that need no encoding are written as they are
(http.created skips quote() for them)."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from tests.conftest import BASE

IDS = [
    "urn:ngsi-ld:Bin:1",
    "urn:ngsi-ld:Bin:a_b.c~d-e",
    "urn:ngsi-ld:Bin:a/b",
    "urn:ngsi-ld:Bin:a#b",
    "urn:ngsi-ld:Bin:100%25",
    "urn:ngsi-ld:Bin:caf\u00e9",
    "urn:ngsi-ld:Bin:a?b=c&d",
    "https://example.org/bins/1",
]


@pytest.mark.parametrize("eid", IDS)
async def test_a_created_entity_is_located_by_its_encoded_id(
    client: httpx.AsyncClient, eid: str
) -> None:
    resp = await client.post(f"{BASE}/entities", json={"id": eid, "type": "Bin"})
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"{BASE}/entities/{quote(eid, safe=':')}"
    temporal = await client.post(
        f"{BASE}/temporal/entities",
        json={"id": eid + ":t", "type": "Bin", "level": [{"type": "Property", "value": 1}]},
    )
    assert temporal.status_code == 201, temporal.text
    assert temporal.headers["Location"] == f"{BASE}/temporal/entities/{quote(eid + ':t', safe=':')}"


async def test_a_created_subscription_is_located_by_its_encoded_id(
    client: httpx.AsyncClient,
) -> None:
    sid = "urn:ngsi-ld:Subscription:a/b"
    resp = await client.post(
        f"{BASE}/subscriptions",
        json={
            "id": sid,
            "type": "Subscription",
            "entities": [{"type": "Bin"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"{BASE}/subscriptions/{quote(sid, safe=':')}"

"""A @context IRI that is no http(s) URL (`urn:ngsi-ld:null`, `ftp:`, `file:`) can never be
fetched. It is an absolute IRI, so JSON-LD dereferences it and fails with "loading remote
context failed", which NGSI-LD answers with LdContextNotAvailable (503) whatever the IRI
(decision 101). What the client must learn is that retrying will not help: the detail says
the hub fetches contexts over http and https only, wherever the IRI is read, and nothing of
the request is stored (probe batch.md, finding 6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, link, problem

EID = "urn:ngsi-ld:Lamp:nf1"
LAMP = {"id": EID, "type": "Lamp", "level": {"type": "Property", "value": 1}}
LD = {"Content-Type": "application/ld+json"}
SUB = {
    "type": "Subscription",
    "entities": [{"type": "Lamp"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
}


def _says_why(body: dict[str, Any], iri: str) -> None:
    assert body["type"].endswith("/LdContextNotAvailable"), body
    assert iri in body["detail"], body
    assert "http and https only" in body["detail"], body


@pytest.mark.parametrize("iri", ["urn:ngsi-ld:null", "ftp://example.org/c.jsonld"])
@pytest.mark.parametrize("where", ["body", "nested", "link", "batch", "temporal", "subscription"])
async def test_a_context_iri_no_one_can_fetch_says_so(
    client: httpx.AsyncClient, iri: str, where: str
) -> None:
    if where == "body":
        resp = await client.post(f"{BASE}/entities", json={**LAMP, "@context": iri}, headers=LD)
    elif where == "nested":
        ctx = [{"level": "http://example.org/level"}, iri]
        resp = await client.post(f"{BASE}/entities", json={**LAMP, "@context": ctx}, headers=LD)
    elif where == "link":
        resp = await client.post(f"{BASE}/entities", json=LAMP, headers={"Link": link(iri)})
    elif where == "batch":
        resp = await client.post(
            f"{BASE}/entityOperations/create", json=[{**LAMP, "@context": iri}], headers=LD
        )
    elif where == "temporal":
        body = {"id": EID, "type": "Lamp", "@context": iri}
        resp = await client.post(f"{BASE}/temporal/entities", json=body, headers=LD)
    else:
        resp = await client.post(f"{BASE}/subscriptions", json={**SUB, "jsonldContext": iri})
    if where == "batch":
        assert resp.status_code == 207, resp.text
        (error,) = resp.json()["errors"]
        assert error["error"]["status"] == 503
        _says_why(error["error"], iri)
    else:
        _says_why(problem(resp, 503), iri)
        assert "retry-after" not in resp.headers  # sent again, it fails again
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404
    assert (await client.get(f"{BASE}/temporal/entities/{EID}")).status_code == 404
    assert (await client.get(f"{BASE}/subscriptions")).json() == []

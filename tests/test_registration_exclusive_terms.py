"""A write refused because an exclusive registration holds the attribute (decision 083) names
the attribute in the request's own terms, as a registration's 409 does, on every write path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, problem
from test_registration_bounds import REGS
from test_registration_exclusive import ENTITIES, ROOM, reg, room

TEMPORAL = f"{BASE}/temporal/entities"
INST = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
PROP = {"type": "Property", "value": 22}
DEFAULT_T = "https://uri.etsi.org/ngsi-ld/default-context/t"


def _detail(resp: httpx.Response) -> str:
    detail: str = problem(resp, 409, "Conflict")["detail"]
    return detail


async def _claimed(client: httpx.AsyncClient) -> None:
    """An exclusive registration of Room 1's t, and Room 1 held here with u alone."""
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    assert (await client.post(ENTITIES, json=room(u=1))).status_code == 201


WRITES: list[Any] = [
    pytest.param("POST", f"{ENTITIES}/{ROOM}/attrs", {"t": PROP}, id="append"),
    pytest.param("PATCH", f"{ENTITIES}/{ROOM}/attrs", {"t": PROP}, id="plain-update"),
    pytest.param("PATCH", f"{ENTITIES}/{ROOM}", {"t": PROP}, id="merge"),
    pytest.param("PUT", f"{ENTITIES}/{ROOM}", room(t=1, u=2), id="replace"),
    pytest.param("POST", f"{TEMPORAL}/{ROOM}/attrs", {"t": [INST]}, id="temporal-append"),
    pytest.param("POST", TEMPORAL, {"id": ROOM, "type": "Room", "t": [INST]}, id="temporal"),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_an_entity_write_409_names_the_attribute_as_the_client_does(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    await _claimed(client)
    detail = _detail(await client.request(method, path, json=body))
    assert detail.startswith("t of entity "), detail
    assert DEFAULT_T not in detail


async def test_a_create_409_uses_the_client_s_terms(client: httpx.AsyncClient) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    assert _detail(await client.post(ENTITIES, json=room(t=21))).startswith("t of entity ")


async def test_batch_item_409s_use_the_client_s_terms(client: httpx.AsyncClient) -> None:
    await _claimed(client)
    for op in ("create", "upsert", "update", "merge"):
        items = [room(t=5)] if op != "create" else [{**room(t=5), "id": ROOM + "0"}, room(t=5)]
        if op == "create":
            assert (await client.delete(f"{ENTITIES}/{ROOM}")).status_code == 204
        resp = await client.post(f"{BASE}/entityOperations/{op}", json=items)
        assert resp.status_code == 207, (op, resp.text)
        error = resp.json()["errors"][-1]["error"]
        assert error["status"] == 409 and error["detail"].startswith("t of entity "), (op, error)
        if op == "create":
            assert (await client.post(ENTITIES, json=room(u=1))).status_code == 201


async def test_a_409_names_the_attribute_by_the_request_s_own_context(
    client: httpx.AsyncClient,
) -> None:
    ctx = {"@context": [{"temperature": "https://example.org/t"}]}
    ld = {"Content-Type": "application/ld+json"}
    doc = reg("a", "exclusive", names=["temperature"]) | ctx
    assert (await client.post(REGS, json=doc, headers=ld)).status_code == 201
    body = {"id": ROOM, "type": "Room", "temperature": PROP} | ctx
    detail = _detail(await client.post(ENTITIES, json=body, headers=ld))
    assert detail.startswith("temperature of entity "), detail
    # a client with another context (none) names it by its IRI, the only name it has
    plain = {"id": ROOM, "type": "Room", "https://example.org/t": PROP}
    detail = _detail(await client.post(ENTITIES, json=plain))
    assert detail.startswith("https://example.org/t of entity "), detail


@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge"])
async def test_ld_json_batch_items_409s_each_use_the_item_s_own_context(
    client: httpx.AsyncClient, op: str
) -> None:
    """Each ld+json item brings its @context, and its 409 names the attribute by that
    context's term (a batch's only context was the core one: the IRI came back)."""
    ld = {"Content-Type": "application/ld+json"}
    doc = reg("a", "exclusive", names=["temperature"])
    doc["@context"] = [{"temperature": "https://example.org/t"}]
    assert (await client.post(REGS, json=doc, headers=ld)).status_code == 201
    if op != "create":
        assert (await client.post(ENTITIES, json=room(u=1))).status_code == 201
    items = [
        {"id": ROOM, "type": "Room", term: PROP, "@context": [{term: "https://example.org/t"}]}
        for term in ("temperature", "warmth")
    ]
    resp = await client.post(f"{BASE}/entityOperations/{op}", json=items, headers=ld)
    assert resp.status_code == 207, resp.text
    details = [e["error"]["detail"] for e in resp.json()["errors"]]
    assert len(details) == 2, details
    assert details[0].startswith("temperature of entity "), details
    assert details[1].startswith("warmth of entity "), details

"""What a redirect registration asks of local writes (clause 4.3.6.3, decision 098): its
context sources hold the data it names and the hub forwards nothing, so an entity write of
that data is refused (409, nothing stored) rather than kept as a copy no reader of the source
sees; otherwise the hub let in the very data it refuses a redirect registration over
(5.9.2.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE, problem
from test_registration_bounds import REGS

ENTITIES = f"{BASE}/entities"
TEMPORAL = f"{BASE}/temporal/entities"
BUS = "urn:ngsi-ld:Bus:1"
CSR = "urn:ngsi-ld:ContextSourceRegistration:"


def redirect(rid: str, *entities: dict[str, Any], names: list[str] | None = None) -> Any:
    """A redirect registration of these EntityInfos (and Properties, if named)."""
    info: dict[str, Any] = {"entities": list(entities)}
    if names is not None:
        info["propertyNames"] = names
    return {
        "id": CSR + rid,
        "type": "ContextSourceRegistration",
        "mode": "redirect",
        "information": [info],
        "endpoint": "http://source.example",
    }


def entity(eid: str, etype: str, **attrs: Any) -> dict[str, Any]:
    """An entity with Properties of these values."""
    props = {k: {"type": "Property", "value": v} for k, v in attrs.items()}
    return {"id": eid, "type": etype, **props}


async def test_an_entity_a_redirect_registration_covers_is_not_stored_here(
    client: httpx.AsyncClient,
) -> None:
    """A redirect by type covers every entity of that type, with all its attributes."""
    assert (await client.post(REGS, json=redirect("a", {"type": "Bus"}))).status_code == 201
    body = problem(await client.post(ENTITIES, json=entity(BUS, "Bus", speed=3)), 409, "Conflict")
    assert CSR + "a" in body["detail"]
    assert (await client.get(f"{ENTITIES}/{BUS}")).status_code == 404
    assert (await client.get(ENTITIES, params={"type": "Bus"})).json() == []
    # an entity with no attribute is the source's too; another type is the hub's own
    problem(await client.post(ENTITIES, json=entity(BUS, "Bus")), 409, "Conflict")
    tram = entity("urn:ngsi-ld:Tram:1", "Tram", speed=3)
    assert (await client.post(ENTITIES, json=tram)).status_code == 201
    # batch items fail alone; temporal creates are refused too
    batch = await client.post(
        f"{BASE}/entityOperations/upsert",
        json=[entity(BUS, "Bus", speed=1), entity("urn:ngsi-ld:Car:1", "Car", speed=1)],
    )
    assert batch.status_code == 207, batch.text
    assert [e["entityId"] for e in batch.json()["errors"]] == [BUS]
    inst = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
    temporal = {"id": BUS, "type": "Bus", "speed": [inst]}
    problem(await client.post(TEMPORAL, json=temporal), 409, "Conflict")
    assert (await client.get(f"{TEMPORAL}/{BUS}")).status_code == 404
    # a second redirect over the same data stays possible: the hub holds none of it
    assert (await client.post(REGS, json=redirect("b", {"type": "Bus"}))).status_code == 201
    # once no registration covers it, the data is the hub's again
    for rid in ("a", "b"):
        assert (await client.delete(f"{REGS}/{CSR}{rid}")).status_code == 204
    assert (await client.post(ENTITIES, json=entity(BUS, "Bus", speed=3))).status_code == 201


async def test_a_redirect_naming_attributes_refuses_only_those(
    client: httpx.AsyncClient,
) -> None:
    tram = "urn:ngsi-ld:Tram:1"
    reg = redirect("a", {"type": "Tram", "id": tram}, names=["speed"])
    assert (await client.post(REGS, json=reg)).status_code == 201
    problem(await client.post(ENTITIES, json=entity(tram, "Tram", speed=3)), 409, "Conflict")
    assert (await client.post(ENTITIES, json=entity(tram, "Tram", color="red"))).status_code == 201
    attrs = f"{ENTITIES}/{tram}/attrs"
    speed = {"speed": {"type": "Property", "value": 4}}
    body = problem(await client.post(attrs, json=speed), 409, "Conflict")
    assert body["detail"].startswith("speed of entity "), body
    problem(await client.patch(f"{ENTITIES}/{tram}", json=speed), 409, "Conflict")
    color = {"color": {"type": "Property", "value": "blue"}}
    assert (await client.patch(attrs, json=color)).status_code == 204
    got = (await client.get(f"{ENTITIES}/{tram}")).json()
    assert "speed" not in got and got["color"]["value"] == "blue"
    # another id is not registered
    other = entity("urn:ngsi-ld:Tram:2", "Tram", speed=3)
    assert (await client.post(ENTITIES, json=other)).status_code == 201


async def test_a_redirect_by_id_pattern(client: httpx.AsyncClient) -> None:
    reg = redirect("a", {"type": "Bus", "idPattern": "^urn:ngsi-ld:Bus:north-"})
    assert (await client.post(REGS, json=reg)).status_code == 201
    north = entity("urn:ngsi-ld:Bus:north-1", "Bus", speed=1)
    problem(await client.post(ENTITIES, json=north), 409, "Conflict")
    south = entity("urn:ngsi-ld:Bus:south-1", "Bus", speed=1)
    assert (await client.post(ENTITIES, json=south)).status_code == 201
    # the pattern's type must match too
    car = entity("urn:ngsi-ld:Bus:north-2", "Car", speed=1)
    assert (await client.post(ENTITIES, json=car)).status_code == 201


async def test_a_write_that_brings_an_entity_under_a_redirect(client: httpx.AsyncClient) -> None:
    """A type added to a local entity makes it data the registration's sources hold."""
    assert (await client.post(ENTITIES, json=entity(BUS, "Car", speed=1))).status_code == 201
    assert (await client.post(REGS, json=redirect("a", {"type": "Bus"}))).status_code == 201
    resp = await client.patch(f"{ENTITIES}/{BUS}", json={"type": ["Car", "Bus"]})
    problem(resp, 409, "Conflict")
    assert (await client.get(f"{ENTITIES}/{BUS}")).json()["type"] == "Car"


async def test_redirect_claims_are_per_tenant_and_outlive_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    first: Starlette = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://hub"
    ) as c:
        assert (await c.post(REGS, json=redirect("a", {"type": "Bus"}))).status_code == 201
    first.state.store.close()
    second: Starlette = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second), base_url="http://hub"
    ) as c:
        problem(await c.post(ENTITIES, json=entity(BUS, "Bus", speed=1)), 409, "Conflict")
        east = {"NGSILD-Tenant": "east"}
        resp = await c.post(ENTITIES, json=entity(BUS, "Bus", speed=1), headers=east)
        assert resp.status_code == 201, resp.text
    second.state.store.close()


async def test_temporal_appends_under_a_redirect_by_type(client: httpx.AsyncClient) -> None:
    """A temporal entity made before the registration (5.9.2.4 looks at current entities)
    gets no more instances of what the registration covers."""
    inst = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
    body = {"id": BUS, "type": "Bus", "speed": [inst]}
    assert (await client.post(TEMPORAL, json=body)).status_code == 201
    reg = redirect("a", {"type": "Bus"}, names=["speed"])
    assert (await client.post(REGS, json=reg)).status_code == 201
    later = {**inst, "observedAt": "2026-01-02T00:00:00Z"}
    attrs = f"{TEMPORAL}/{BUS}/attrs"
    problem(await client.post(attrs, json={"speed": [later]}), 409, "Conflict")
    got = (await client.get(f"{TEMPORAL}/{BUS}")).json()["speed"]
    first = (got if isinstance(got, list) else [got])[0]
    one = f"{attrs}/speed/{first['instanceId']}"
    problem(await client.patch(one, json={"value": 9}), 409, "Conflict")
    # another Attribute is the hub's own
    other = {"color": [{**later, "value": "red"}]}
    assert (await client.post(attrs, json=other)).status_code == 204

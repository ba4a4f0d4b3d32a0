"""What an exclusive registration claims (clause 4.3.6.3, 5.9.2.4): no second exclusive or
redirect registration of the same entity id and attributes, none over data the hub holds, and
no local write of an attribute registered exclusively (the hub forwards nothing, so it would
keep a stale second copy)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.ngsild.registration_claims import claimed
from cityhub.settings import Settings
from conftest import BASE, problem
from test_registration_bounds import REGS
from test_registration_discovery_reads import count_searches

ROOM = "urn:ngsi-ld:Room:1"
ENTITIES = f"{BASE}/entities"


def reg(rid: str, mode: str, *, eid: str = ROOM, names: list[str] | None = None) -> dict[str, Any]:
    """A registration of one Room by id (or by type alone when eid is empty)."""
    entity: dict[str, Any] = {"type": "Room"}
    if eid:
        entity["id"] = eid
    info: dict[str, Any] = {"entities": [entity]}
    if names is not None:
        info["propertyNames"] = names
    return {
        "id": f"urn:ngsi-ld:ContextSourceRegistration:{rid}",
        "type": "ContextSourceRegistration",
        "mode": mode,
        "information": [info],
        "endpoint": "http://source.example",
    }


def by_pattern(rid: str, pattern: str) -> dict[str, Any]:
    """A redirect registration of the Rooms whose ids the pattern finds."""
    doc = reg(rid, "redirect", eid="")
    doc["information"][0]["entities"][0]["idPattern"] = pattern
    return doc


def room(**attrs: Any) -> dict[str, Any]:
    """Room 1 with Properties of these values."""
    return {
        "id": ROOM,
        "type": "Room",
        **{k: {"type": "Property", "value": v} for k, v in attrs.items()},
    }


async def _absent(client: httpx.AsyncClient, rid: str) -> None:
    got = await client.get(f"{REGS}/urn:ngsi-ld:ContextSourceRegistration:{rid}")
    assert got.status_code == 404, got.text


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(reg("b", "exclusive", names=["t"]), id="exclusive-same"),
        pytest.param(reg("b", "exclusive", names=["t", "u"]), id="exclusive-superset"),
        pytest.param(reg("b", "redirect", names=["t"]), id="redirect-same"),
        pytest.param(reg("b", "redirect"), id="redirect-all-attributes"),
        pytest.param(reg("b", "redirect", eid=""), id="redirect-by-type"),
        pytest.param(by_pattern("b", "^urn:ngsi-ld:Room:"), id="redirect-by-idPattern"),
    ],
)
async def test_a_second_registration_over_an_exclusive_one_is_409(
    client: httpx.AsyncClient, second: dict[str, Any]
) -> None:
    """4.3.6.3: once an exclusive registration exists, no further exclusive or redirect one
    for that entity id and attributes (5.9.2.4: Conflict)."""
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    body = problem(await client.post(REGS, json=second), 409, "Conflict")
    # the registration in the way, and the attribute as the client named it
    assert "urn:ngsi-ld:ContextSourceRegistration:a" in body["detail"]
    assert f" t of entity {ROOM}" in body["detail"]
    await _absent(client, "b")


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(reg("a", "redirect", eid=""), id="by-type"),
        pytest.param(reg("a", "redirect", names=["t"]), id="by-id"),
        pytest.param(by_pattern("a", "Room:1$"), id="by-idPattern"),
    ],
)
async def test_an_exclusive_registration_over_a_redirect_one_is_409(
    client: httpx.AsyncClient, first: dict[str, Any]
) -> None:
    assert (await client.post(REGS, json=first)).status_code == 201
    problem(await client.post(REGS, json=reg("b", "exclusive", names=["t"])), 409, "Conflict")
    await _absent(client, "b")


async def test_redirects_that_select_none_of_the_claim(client: httpx.AsyncClient) -> None:
    others = [
        by_pattern("r1", "Room:2$"),
        reg("r2", "redirect", names=["u"]),
        {**reg("r3", "redirect", eid=""), "information": [{"entities": [{"type": "Hall"}]}]},
    ]
    for other in others:
        assert (await client.post(REGS, json=other)).status_code == 201
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    assert (await client.post(REGS, json=by_pattern("r4", "Room:[2-9]$"))).status_code == 201


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(reg("b", "exclusive", names=["u"]), id="exclusive-other-attribute"),
        pytest.param(
            reg("b", "exclusive", eid="urn:ngsi-ld:Room:2", names=["t"]), id="exclusive-other-id"
        ),
        pytest.param(reg("b", "inclusive", names=["t"]), id="inclusive-same"),
        pytest.param(reg("b", "auxiliary", names=["t"]), id="auxiliary-same"),
    ],
)
async def test_registrations_beside_an_exclusive_one(
    client: httpx.AsyncClient, second: dict[str, Any]
) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    resp = await client.post(REGS, json=second)
    assert resp.status_code == 201, resp.text


async def test_redirect_registrations_may_overlap(client: httpx.AsyncClient) -> None:
    """4.3.6.3: overlapping redirect registrations each receive the operations."""
    assert (await client.post(REGS, json=reg("a", "redirect", names=["t"]))).status_code == 201
    assert (await client.post(REGS, json=reg("b", "redirect", eid=""))).status_code == 201


async def test_a_patch_into_an_overlap_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    assert (await client.post(REGS, json=reg("b", "inclusive", names=["t"]))).status_code == 201
    path = f"{REGS}/urn:ngsi-ld:ContextSourceRegistration:b"
    before = (await client.get(path)).json()
    problem(await client.patch(path, json={"mode": "exclusive"}), 409, "Conflict")
    assert (await client.get(path)).json() == before
    # an exclusive registration is not in its own way when it is patched
    a = f"{REGS}/urn:ngsi-ld:ContextSourceRegistration:a"
    assert (await client.patch(a, json={"description": "d"})).status_code == 204
    assert (await client.patch(a, json={"mode": "exclusive"})).status_code == 204


@pytest.mark.parametrize(
    ("registration", "status"),
    [
        pytest.param(reg("a", "exclusive", names=["t"]), 409, id="exclusive-held-attribute"),
        pytest.param(reg("a", "exclusive", names=["u"]), 201, id="exclusive-other-attribute"),
        pytest.param(reg("a", "redirect"), 409, id="redirect-held-entity"),
        pytest.param(reg("a", "redirect", eid=""), 409, id="redirect-held-type"),
        pytest.param(reg("a", "redirect", names=["u"]), 201, id="redirect-other-attribute"),
        pytest.param(reg("a", "inclusive", names=["t"]), 201, id="inclusive"),
    ],
)
async def test_registrations_over_local_entities(
    client: httpx.AsyncClient, registration: dict[str, Any], status: int
) -> None:
    """5.9.2.4: an exclusive registration of an attribute the hub holds, or a redirect one
    that an entity the hub holds matches, is a Conflict."""
    assert (await client.post(ENTITIES, json=room(t=21))).status_code == 201
    resp = await client.post(REGS, json=registration)
    if status == 409:
        problem(resp, 409, "Conflict")
        await _absent(client, "a")
    else:
        assert resp.status_code == status, resp.text


async def test_local_writes_of_an_exclusive_attribute_are_409(client: httpx.AsyncClient) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    problem(await client.post(ENTITIES, json=room(t=21)), 409, "Conflict")
    assert (await client.get(f"{ENTITIES}/{ROOM}")).status_code == 404
    # the entity's other attributes are the hub's own
    assert (await client.post(ENTITIES, json=room(u=1))).status_code == 201
    attrs = f"{ENTITIES}/{ROOM}/attrs"
    prop = {"type": "Property", "value": 22}
    problem(await client.post(attrs, json={"t": prop}), 409, "Conflict")
    problem(await client.patch(f"{ENTITIES}/{ROOM}", json={"t": prop}), 409, "Conflict")
    problem(await client.put(f"{ENTITIES}/{ROOM}", json=room(t=1, u=2)), 409, "Conflict")
    assert (
        await client.patch(attrs, json={"u": {"type": "Property", "value": 2}})
    ).status_code == 204
    got = (await client.get(f"{ENTITIES}/{ROOM}")).json()
    assert "t" not in got and got["u"]["value"] == 2
    # batch items fail alone
    batch = await client.post(
        f"{BASE}/entityOperations/upsert",
        json=[room(t=5), {**room(t=5), "id": "urn:ngsi-ld:Room:2"}],
    )
    assert batch.status_code == 207, batch.text
    errors = batch.json()["errors"]
    assert [e["entityId"] for e in errors] == [ROOM]
    assert errors[0]["error"]["status"] == 409
    creates = await client.post(
        f"{BASE}/entityOperations/create",
        json=[{**room(t=5), "id": "urn:ngsi-ld:Room:3"}, {**room(t=5), "id": ROOM}],
    )
    assert creates.status_code == 207, creates.text
    # once the registration is gone the hub holds the attribute again
    path = f"{REGS}/urn:ngsi-ld:ContextSourceRegistration:a"
    assert (await client.delete(path)).status_code == 204
    assert (await client.post(attrs, json={"t": prop})).status_code == 204


async def test_a_patch_moving_the_claim_frees_the_old_attribute(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    path = f"{REGS}/urn:ngsi-ld:ContextSourceRegistration:a"
    info = [{"entities": [{"type": "Room", "id": ROOM}], "propertyNames": ["u"]}]
    assert (await client.patch(path, json={"information": info})).status_code == 204
    assert (await client.post(ENTITIES, json=room(t=1))).status_code == 201
    problem(await client.post(f"{ENTITIES}/{ROOM}/attrs", json=room(u=1)), 409, "Conflict")
    assert (await client.patch(path, json={"mode": "inclusive"})).status_code == 204
    assert (await client.post(f"{ENTITIES}/{ROOM}/attrs", json=room(u=1))).status_code == 204


async def test_claims_are_per_tenant(client: httpx.AsyncClient) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    other = {"NGSILD-Tenant": "east"}
    assert (await client.post(ENTITIES, json=room(t=1), headers=other)).status_code == 201
    resp = await client.post(REGS, json=reg("a", "exclusive", names=["t"]), headers=other)
    problem(resp, 409, "Conflict")  # over east's own Room 1


async def test_claims_outlive_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "hub.db")
    first: Starlette = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://hub"
    ) as c:
        assert (await c.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    first.state.store.close()
    second: Starlette = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second), base_url="http://hub"
    ) as c:
        problem(await c.post(ENTITIES, json=room(t=21)), 409, "Conflict")
        problem(await c.post(REGS, json=reg("b", "redirect", names=["t"])), 409, "Conflict")
    second.state.store.close()


async def test_temporal_instances_of_an_exclusive_attribute_are_409(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    inst = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
    temporal = f"{BASE}/temporal/entities"
    body = {"id": ROOM, "type": "Room", "t": [inst]}
    problem(await client.post(temporal, json=body), 409, "Conflict")
    assert (await client.get(f"{temporal}/{ROOM}")).status_code == 404
    assert (
        await client.post(temporal, json={"id": ROOM, "type": "Room", "u": [inst]})
    ).status_code == 201
    problem(await client.post(f"{temporal}/{ROOM}/attrs", json={"t": [inst]}), 409, "Conflict")


async def test_redirect_patterns_are_searched_once_per_registration(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each redirect idPattern was searched entity id by entity id (and, past the 1,024
    compiled patterns kept, compiled again each time): an exclusive registration of 500 ids
    beside 2,000 redirect registrations by idPattern held the loop 41 s."""
    for r in range(20):
        assert (await client.post(REGS, json=by_pattern(f"r{r}", f"^urn:Hall:{r}$"))).status_code
    searches = count_searches(monkeypatch)
    big = reg("a", "exclusive", names=["t"])
    big["information"][0]["entities"] = [
        {"type": "Room", "id": f"urn:Room:{i}"} for i in range(500)
    ]
    assert (await client.post(REGS, json=big)).status_code == 201
    assert searches == [], f"{len(searches)} searches of one id"
    # a redirect pattern the claim meets is then searched id by id to name the entity
    resp = await client.post(REGS, json=by_pattern("b", "^urn:Room:499$"))
    body = problem(resp, 409, "Conflict")
    assert "urn:Room:499" in body["detail"]


def test_an_import_meets_the_claims_of_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cityhub import` writes with its own store: it stored an exclusively registered
    attribute the hub itself refuses."""
    db = tmp_path / "hub.db"
    shop = reg("a", "exclusive", names=["name"])
    shop["information"][0]["entities"] = [{"type": "Shop", "id": "urn:ngsi-ld:Shop:s1"}]

    async def register() -> None:
        app: Starlette = create_app(Settings(db=str(db)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            assert (await c.post(REGS, json=shop)).status_code == 201
        app.state.store.close()

    asyncio.run(register())
    csv = tmp_path / "shops.csv"
    csv.write_text("id,name\ns1,Corner Shop\ns2,Bakery\n")
    argv = ["import", "csv", str(csv), "--type", "Shop", "--db", str(db), "--no-progress"]
    assert main(argv) == 1
    out = capsys.readouterr()
    assert "rejected line 2 urn:ngsi-ld:Shop:s1: Conflict:" in out.err, out.err
    assert "1 created, 0 updated, 0 unchanged, 1 rejected" in out.out


async def test_a_temporal_instance_of_an_exclusive_attribute(client: httpx.AsyncClient) -> None:
    """PATCH of one instance writes the claimed Attribute's value, so it is refused as every
    other write is (4.3.6.3); DELETE of one takes away a copy the hub should not hold, so it
    stays allowed (as DELETE of the whole Attribute is)."""
    temporal = f"{BASE}/temporal/entities"
    inst = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
    later = {**inst, "observedAt": "2026-01-02T00:00:00Z"}
    body = {"id": ROOM, "type": "Room", "t": [inst, later]}
    assert (await client.post(temporal, json=body)).status_code == 201
    got = (await client.get(f"{temporal}/{ROOM}")).json()
    first, second = (i["instanceId"] for i in got["t"])
    assert (await client.post(REGS, json=reg("a", "exclusive", names=["t"]))).status_code == 201
    one = f"{temporal}/{ROOM}/attrs/t/{first}"
    body = problem(await client.patch(one, json={"value": 9}), 409, "Conflict")
    assert body["detail"].startswith("t of entity "), body
    values = [i["value"] for i in (await client.get(f"{temporal}/{ROOM}")).json()["t"]]
    assert values == [1, 1]  # nothing of the PATCH stored
    assert (await client.delete(one)).status_code == 204
    left = (await client.get(f"{temporal}/{ROOM}")).json()["t"]
    assert [i["instanceId"] for i in (left if isinstance(left, list) else [left])] == [second]


def test_one_entity_s_earlier_names_do_not_spill_onto_the_next() -> None:
    """An id named in two information items gets the names of both; the id after it in the
    second item gets that item's names only (the joined set was carried on to it)."""
    doc = {
        "id": "urn:ngsi-ld:ContextSourceRegistration:spill",
        "information": [
            {"entities": [{"id": "urn:A", "type": "T"}], "propertyNames": ["x"]},
            {
                "entities": [{"id": "urn:A", "type": "T"}, {"id": "urn:B", "type": "U"}],
                "propertyNames": ["y"],
            },
        ],
    }
    held = claimed(doc)
    assert held["urn:A"].names == {"x", "y"}
    assert (held["urn:B"].names, held["urn:B"].types) == ({"y"}, {"U"})

"""Members of a registration checked as Table 5.2.9-1 and 5.2.34-1 type them, and discovery by
scopeQ (5.10.2.4: matched against the registration's scope)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import problem
from test_registration_bounds import REGS, body


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"endpoint": "file:///etc/passwd"}, id="file-endpoint"),
        pytest.param({"endpoint": "javascript:alert(1)"}, id="javascript-endpoint"),
        pytest.param({"endpoint": "urn:foo"}, id="urn-endpoint"),
        pytest.param({"management": {"cacheDuration": "banana"}}, id="cacheDuration"),
        pytest.param({"management": {"cacheDuration": 5}}, id="cacheDuration-number"),
        # a misspelt member was stored, shown and never meant anything (Table 5.2.34-1)
        pytest.param({"management": {"timout": 3000}}, id="management-unknown-member"),
        pytest.param({"refreshRate": "banana"}, id="refreshRate"),
        pytest.param({"expiresAt": "2030-01-01T00:00:00"}, id="expiresAt-no-zone"),
        # an object or array among the operations was a 500 (unhashable in the set lookup)
        pytest.param({"operations": [{"op": "retrieveOps"}]}, id="operations-object"),
        pytest.param({"operations": [["retrieveOps"]]}, id="operations-array"),
        pytest.param({"operations": [1]}, id="operations-number"),
    ],
)
async def test_bad_members_are_400(client: httpx.AsyncClient, members: dict[str, Any]) -> None:
    problem(await client.post(REGS, json=body(**members)), 400, "BadRequestData")
    resp = await client.post(REGS, json=body())
    assert resp.status_code == 201, resp.text
    problem(await client.patch(f"{REGS}/{body()['id']}", json=members), 400, "BadRequestData")


async def test_good_members_are_kept(client: httpx.AsyncClient) -> None:
    members = {
        "endpoint": "https://csource.example:8443/ngsi-ld",
        "management": {"cacheDuration": "PT5M", "timeout": 3000, "localOnly": True},
        "refreshRate": "PT1H",
        "expiresAt": "2030-01-01T00:00:00+02:00",
    }
    resp = await client.post(REGS, json=body(**members))
    assert resp.status_code == 201, resp.text
    got = (await client.get(f"{REGS}/{body()['id']}")).json()
    assert {k: got[k] for k in members} == members


async def test_discovery_by_scope(client: httpx.AsyncClient) -> None:
    for i, scope in enumerate(["/Madrid/Gran_Via", "/Berlin", None]):
        doc = body(id=f"urn:ngsi-ld:ContextSourceRegistration:s{i}")
        if scope is not None:
            doc["scope"] = scope
        resp = await client.post(REGS, json=doc)
        assert resp.status_code == 201, resp.text
    resp = await client.get(REGS, params={"type": "Room", "scopeQ": "/Madrid/#"})
    assert resp.status_code == 200, resp.text
    assert [d["id"] for d in resp.json()] == ["urn:ngsi-ld:ContextSourceRegistration:s0"]
    resp = await client.get(REGS, params={"scopeQ": "/Berlin"})
    assert [d["id"] for d in resp.json()] == ["urn:ngsi-ld:ContextSourceRegistration:s1"]
    problem(await client.get(REGS, params={"scopeQ": "Madrid"}), 400)


# TimeInterval.startAt/endAt are DateTimes as expiresAt is (5.2.11, 5.2.9): a naive one was
# compared as if UTC, so the intervals need their time zone as expiresAt-no-zone above does.
@pytest.mark.parametrize("member", ["observationInterval", "managementInterval"])
@pytest.mark.parametrize(
    "interval",
    [
        pytest.param({"startAt": "2020-01-01T00:00:00"}, id="start"),
        pytest.param({"startAt": "2020-01-01T00:00:00Z", "endAt": "2021-01-01T00:00:00"}, id="end"),
    ],
)
async def test_interval_needs_time_zone(
    client: httpx.AsyncClient, member: str, interval: dict[str, str]
) -> None:
    problem(await client.post(REGS, json=body(**{member: interval})), 400, "BadRequestData")
    good = {"startAt": "2020-01-01T00:00:00+01:00", "endAt": "2021-01-01T00:00:00Z"}
    assert (await client.post(REGS, json=body(**{member: good}))).status_code == 201
    rid = body()["id"]
    problem(await client.patch(f"{REGS}/{rid}", json={member: interval}), 400, "BadRequestData")
    assert (await client.get(f"{REGS}/{rid}")).json()[member] == good

"""Registration-time rules of a registration's mode (clause 4.3.6) that need no forwarding:
checked on create, and on an update naming mode, operations or information."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import problem
from test_registration_bounds import REGS, body

RID = body()["id"]
ONE_ROOM = [{"entities": [{"type": "Room", "id": "urn:ngsi-ld:Room:1"}], "propertyNames": ["t"]}]


async def _stored(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.get(f"{REGS}/{RID}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize(
    "members",
    [
        # the ETSI extension TP 5922_01_01's registration
        pytest.param({"mode": "auxiliary", "operations": ["updateEntity"]}, id="aux-updateEntity"),
        pytest.param({"mode": "auxiliary", "operations": ["updateOps"]}, id="aux-updateOps"),
        pytest.param(
            {"mode": "auxiliary", "operations": ["retrieveOps", "redirectionOps"]},
            id="aux-redirectionOps",
        ),
        pytest.param({"mode": "exclusive"}, id="exclusive-type-only"),
        pytest.param(
            {
                "mode": "exclusive",
                "information": [{"entities": [{"type": "Room", "id": "urn:x:1"}]}],
            },
            id="exclusive-no-attributes",
        ),
        pytest.param(
            {
                "mode": "exclusive",
                "information": [
                    {"entities": [{"type": "Room", "idPattern": "^urn:x"}], "propertyNames": ["t"]}
                ],
            },
            id="exclusive-idPattern",
        ),
        pytest.param(
            {"mode": "exclusive", "information": [{"propertyNames": ["t"]}]},
            id="exclusive-no-entities",
        ),
    ],
)
async def test_mode_rules_are_400(client: httpx.AsyncClient, members: dict[str, Any]) -> None:
    problem(await client.post(REGS, json=body(**members)), 400, "BadRequestData")
    assert (await client.get(f"{REGS}/{RID}")).status_code == 404
    # the same registration reached by an update is refused and leaves the stored one as it was
    assert (await client.post(REGS, json=body())).status_code == 201
    before = await _stored(client)
    problem(await client.patch(f"{REGS}/{RID}", json=members), 400, "BadRequestData")
    assert await _stored(client) == before


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"mode": "auxiliary"}, id="aux-default-federationOps"),
        pytest.param(
            {"mode": "auxiliary", "operations": ["retrieveOps", "createSubscription"]},
            id="aux-retrieveOps",
        ),
        pytest.param(
            {"mode": "exclusive", "information": ONE_ROOM, "operations": ["updateOps"]},
            id="exclusive-id-and-attributes",
        ),
        pytest.param(
            {"mode": "redirect", "operations": ["redirectionOps"]}, id="redirect-type-only"
        ),
        pytest.param({"mode": "inclusive", "operations": ["updateOps"]}, id="inclusive-writes"),
    ],
)
async def test_mode_rules_accept(client: httpx.AsyncClient, members: dict[str, Any]) -> None:
    resp = await client.post(REGS, json=body(**members))
    assert resp.status_code == 201, resp.text
    got = await _stored(client)
    assert {k: got[k] for k in members} == members


async def test_patch_checks_the_merged_registration(client: httpx.AsyncClient) -> None:
    exclusive = body(mode="exclusive", information=ONE_ROOM)
    assert (await client.post(REGS, json=exclusive)).status_code == 201
    # a fragment dropping the attribute names leaves an exclusive registration without them
    info = [{"entities": ONE_ROOM[0]["entities"]}]
    problem(await client.patch(f"{REGS}/{RID}", json={"information": info}), 400, "BadRequestData")
    # an inclusive one may hold it; with operations, a move to auxiliary is checked as a whole
    resp = await client.patch(f"{REGS}/{RID}", json={"mode": "inclusive", "information": info})
    assert resp.status_code == 204, resp.text
    assert (
        await client.patch(f"{REGS}/{RID}", json={"operations": ["updateOps"]})
    ).status_code == 204
    problem(await client.patch(f"{REGS}/{RID}", json={"mode": "auxiliary"}), 400, "BadRequestData")
    # a fragment naming none of mode, operations, information is not checked against them
    assert (await client.patch(f"{REGS}/{RID}", json={"description": "d"})).status_code == 204

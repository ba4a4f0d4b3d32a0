"""PATCH /csourceRegistrations/{id}: `management` merged member by member in application/json
and merge-patch+json alike (decision 075)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import problem
from test_registration_bounds import REGS, body

RID = body()["id"]


async def _stored(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.get(f"{REGS}/{RID}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize("media", ["application/json", "application/merge-patch+json"])
async def test_patch_merges_management(client: httpx.AsyncClient, media: str) -> None:
    mgmt = {"timeout": 100, "cacheDuration": "PT1M", "localOnly": True}
    assert (await client.post(REGS, json=body(management=mgmt))).status_code == 201
    url = f"{REGS}/{RID}"
    headers = {"Content-Type": media}
    resp = await client.patch(url, json={"management": {"timeout": 5}}, headers=headers)
    assert resp.status_code == 204, resp.text
    assert (await _stored(client))["management"] == {**mgmt, "timeout": 5}
    # null removes one member; removing the last removes management
    resp = await client.patch(url, json={"management": {"localOnly": None}}, headers=headers)
    assert resp.status_code == 204, resp.text
    assert (await _stored(client))["management"] == {"timeout": 5, "cacheDuration": "PT1M"}
    resp = await client.patch(
        url, json={"management": {"timeout": None, "cacheDuration": None}}, headers=headers
    )
    assert resp.status_code == 204, resp.text
    assert "management" not in await _stored(client)
    # a member given to a registration without management starts one; null drops it whole
    resp = await client.patch(url, json={"management": {"cooldown": 7}}, headers=headers)
    assert resp.status_code == 204, resp.text
    assert (await _stored(client))["management"] == {"cooldown": 7}
    resp = await client.patch(url, json={"management": None}, headers=headers)
    assert resp.status_code == 204, resp.text
    assert "management" not in await _stored(client)


async def test_patch_management_still_validated(client: httpx.AsyncClient) -> None:
    assert (await client.post(REGS, json=body(management={"timeout": 1}))).status_code == 201
    for bad in ({"timeout": -1}, {"timout": None}, {"cacheDuration": "soon"}, [1]):
        resp = await client.patch(f"{REGS}/{RID}", json={"management": bad})
        problem(resp, 400, "BadRequestData")
    assert (await _stored(client))["management"] == {"timeout": 1}

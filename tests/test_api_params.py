"""Every operation refuses query parameters it does not know (6.3.7): 400 InvalidRequest."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import problem

ENTITY = {"id": "urn:ngsi-ld:T:1", "type": "T", "n": 1}


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:T:1"),
        ("GET", "/ngsi-ld/v1/entities"),
        ("GET", "/ngsi-ld/v1/entities/"),
        ("GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:T:1"),
        ("GET", "/ngsi-ld/v1/types"),
        ("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:T:1"),
    ],
)
async def test_unknown_parameter_is_invalid_request(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await client.post("/ngsi-ld/v1/entities", json=ENTITY)
    resp = await client.request(method, path, params={"type": "T", "bogus": "1"})
    problem(resp, 400, "InvalidRequest")


async def test_get_with_trailing_slash_is_the_collection(client: httpx.AsyncClient) -> None:
    await client.post("/ngsi-ld/v1/entities", json=ENTITY)
    resp = await client.get("/ngsi-ld/v1/entities/", params={"type": "T"})
    assert resp.status_code == 200, resp.text
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:T:1"]

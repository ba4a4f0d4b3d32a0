"""A `limit` above the hub's most per page is TooManyResults (403), not bad data (400).

Clause 5.5.9 lets an implementation refuse a page bigger than its hard limit "by issuing an
error of type TooManyResults", clause 5.5.6 leaves the threshold to the implementation, and
clause 6.3.2 maps TooManyResults to 403. A limit that is no whole number stays 400.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.conftest import problem

from cityhub.ngsild.params import MAX_LIMIT

BASE = "/ngsi-ld/v1"
ENTITY = {"id": "urn:ngsi-ld:T:1", "type": "T", "n": {"type": "Property", "value": 1}}
TEMPORAL = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}

# (method, path, query parameters besides limit, body)
PAGED: list[tuple[str, str, dict[str, str], Any]] = [
    ("GET", "/entities", {"type": "T"}, None),
    ("POST", "/entityOperations/query", {}, {"type": "Query", "entities": [{"type": "T"}]}),
    ("GET", "/temporal/entities", {"type": "T", **TEMPORAL}, None),
    (
        "POST",
        "/temporal/entityOperations/query",
        {},
        {
            "type": "Query",
            "entities": [{"type": "T"}],
            "temporalQ": {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"},
        },
    ),
    ("GET", "/subscriptions", {}, None),
    ("GET", "/csourceRegistrations", {"type": "T"}, None),
    ("GET", "/csourceSubscriptions", {}, None),
]


async def _get(
    client: httpx.AsyncClient, method: str, path: str, params: dict[str, str], body: Any
) -> httpx.Response:
    return await client.request(method, BASE + path, params=params, json=body)


@pytest.mark.parametrize("method,path,params,body", PAGED)
@pytest.mark.parametrize("limit", [str(MAX_LIMIT + 1), "99999999999999999999", "9" * 5000])
async def test_a_limit_above_the_most_per_page_is_too_many_results(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, str],
    body: Any,
    limit: str,
) -> None:
    """limit=1001 answered 400 BadRequestData: the request is well formed, the hub only
    declines to hold that many in one answer."""
    assert (await client.post(BASE + "/entities", json=ENTITY)).status_code == 201
    resp = await _get(client, method, path, {**params, "limit": limit}, body)
    detail = problem(resp, 403, "TooManyResults")["detail"]
    assert str(MAX_LIMIT) in detail, detail


@pytest.mark.parametrize("method,path,params,body", PAGED)
async def test_the_most_per_page_is_still_served(
    client: httpx.AsyncClient, method: str, path: str, params: dict[str, str], body: Any
) -> None:
    assert (await client.post(BASE + "/entities", json=ENTITY)).status_code == 201
    resp = await _get(client, method, path, {**params, "limit": str(MAX_LIMIT)}, body)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("method,path,params,body", PAGED)
@pytest.mark.parametrize("limit", ["-1", "x", "", "1e3"])
async def test_a_limit_that_is_no_whole_number_stays_bad_request_data(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, str],
    body: Any,
    limit: str,
) -> None:
    resp = await _get(client, method, path, {**params, "limit": limit}, body)
    problem(resp, 400, "BadRequestData")

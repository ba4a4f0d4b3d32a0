"""An error quotes a client's text only in part: the head may hold 256 KiB, and an Accept,
a Content-Type or a parameter name of that size came back whole in the 400/406/415 body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, problem

LONG = 100_000


async def test_a_long_accept_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    accept = ",".join(f"application/x{i}" for i in range(LONG // 16))
    body = problem(
        await client.get(f"{BASE}/entities", params={"type": "T"}, headers={"Accept": accept}),
        406,
        "NotAcceptable",
    )
    assert len(body["detail"]) < 1_000
    assert f"({len(accept):,} characters)" in body["detail"]


async def test_a_long_content_type_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    media = "application/" + "x" * LONG
    resp = await client.post(f"{BASE}/entities", content=b"{}", headers={"Content-Type": media})
    body = problem(resp, 415)
    assert len(body["detail"]) < 1_000


async def test_a_long_parameter_name_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{BASE}/entities", params={"type": "T", "p" * 60_000: "1"})
    body = problem(resp, 400, "InvalidRequest")
    assert len(body["detail"]) < 1_000


async def test_a_short_one_is_quoted_whole(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{BASE}/entities", params={"type": "T"}, headers={"Accept": "text/x"})
    assert "'text/x'" in problem(resp, 406, "NotAcceptable")["detail"]


# probe queryformats, finding 2 (2026-12-08): parameters of reads and of a Query body came back
# whole in their 400, a Query body's as large as the body (a 689 KB `lang`, a 689 KB detail)
LONG_TEXT = "x" * LONG
URL_TEXT = "x" * 50_000  # (httpx takes a query string of at most 64 KiB)


@pytest.mark.parametrize(
    "member",
    [
        {"format": LONG_TEXT},
        {"attrs": ["a", "", LONG_TEXT]},  # an empty item: the list was quoted
        {"attrs": [LONG_TEXT + "("]},  # a name with a "(": the name was quoted
        {"pick": ["a", LONG_TEXT + "("]},
        {"geometryProperty": LONG_TEXT + " "},
    ],
    ids=["format", "empty-item", "attrs-name", "pick-name", "geometryProperty"],
)
async def test_a_query_body_s_long_member_is_not_echoed_whole(
    client: httpx.AsyncClient, member: dict[str, Any]
) -> None:
    body = {"type": "Query", "entities": [{"type": "T"}], **member}
    headers = {"Accept": "application/geo+json"} if "geometryProperty" in member else {}
    resp = await client.post(f"{BASE}/entityOperations/query", json=body, headers=headers)
    assert len(bad_request(resp)["detail"]) < 1_000


@pytest.mark.parametrize(
    "params",
    [{"orderBy": f"a;{URL_TEXT}"}, {"orderBy": f"{URL_TEXT}("}, {"q": "a==0" + "1" * 50_000}],
    ids=["orderBy-direction", "orderBy-path", "q"],
)
async def test_a_long_query_parameter_is_not_echoed_whole(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    resp = await client.get(f"{BASE}/entities", params={"type": "T", **params})
    assert len(bad_request(resp)["detail"]) < 1_000


async def test_a_merge_s_long_lang_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    resp = await client.patch(
        f"{BASE}/entities/urn:ngsi-ld:T:1", params={"lang": URL_TEXT + "!"}, json={"a": 1}
    )
    assert len(bad_request(resp)["detail"]) < 1_000

"""An error quotes a client's text only in part: the head may hold 256 KiB, and an Accept,
a Content-Type or a parameter name of that size came back whole in the 400/406/415 body."""

from __future__ import annotations

import httpx

from conftest import BASE, problem

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

"""An error quotes a client's text only in part: the head may hold 256 KiB, and an Accept,
a Content-Type or a parameter name of that size came back whole in the 400/406/415 body."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
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


# probe batch.md, left: errors that quoted a client's value whole, as `got {value!r}`, in
# subscriptions, registrations, contexts, entity and temporal writes, q and geo parameters
SUB = {"type": "Subscription", "entities": [{"type": "T"}]}
HTTP_NOTIFY = {"endpoint": {"uri": "http://127.0.0.1:9/n"}}
LAMP = {"id": "urn:ngsi-ld:T:1", "type": "T"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/subscriptions", {**SUB, "notification": {"endpoint": {"uri": LONG_TEXT}}}),
        ("/subscriptions", {**SUB, "notification": HTTP_NOTIFY, "expiresAt": LONG_TEXT}),
        ("/subscriptions", {**SUB, "notification": HTTP_NOTIFY, "type": LONG_TEXT}),
        ("/subscriptions", {**SUB, "notification": {**HTTP_NOTIFY, LONG_TEXT: 1}}),
        (
            "/subscriptions",
            {**SUB, "notification": HTTP_NOTIFY, "notificationTrigger": [LONG_TEXT]},
        ),
        (
            "/csourceRegistrations",
            {
                "type": "ContextSourceRegistration",
                "information": [{"entities": [{"type": "T"}]}],
                "endpoint": "http://127.0.0.1:9",
                "operations": [LONG_TEXT],
            },
        ),
        ("/entities", {**LAMP, "p": {"type": LONG_TEXT, "value": 1}}),
        ("/entities", {**LAMP, "p": {"type": "Property", "value": 1, "datasetId": LONG_TEXT}}),
        ("/entities", {**LAMP, "scope": LONG_TEXT}),
        ("/entities", {**LAMP, "@context": {LONG_TEXT: 5}}),
        (
            "/temporal/entities",
            {**LAMP, "p": [{"type": "Property", "value": 1, "observedAt": LONG_TEXT}]},
        ),
    ],
    ids=[
        "endpoint-uri",
        "expiresAt",
        "subscription-type",
        "subscription-member",
        "notificationTrigger",
        "registration-operations",
        "attribute-type",
        "datasetId",
        "scope",
        "context-term",
        "observedAt",
    ],
)
async def test_a_long_value_in_a_body_is_not_echoed_whole(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    media = "application/ld+json" if "@context" in body else "application/json"
    resp = await client.post(
        f"{BASE}{path}", content=orjson.dumps(body), headers={"Content-Type": media}
    )
    assert resp.status_code == 400, resp.text[:300]
    assert len(resp.json()["detail"]) < 1_000, resp.text[:300]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (
            "/entities",
            {"type": "T", "georel": URL_TEXT, "geometry": "Point", "coordinates": "[0,0]"},
        ),
        ("/entities", {"type": "T", "scopeQ": URL_TEXT}),
        ("/entities", {"type": URL_TEXT + "("}),
        ("/temporal/entities", {"type": "T", "timerel": "after", "timeAt": URL_TEXT}),
        (
            "/temporal/entities/urn:ngsi-ld:T:1",
            {"options": "aggregatedValues", "aggrMethods": "sum", "aggrPeriodDuration": URL_TEXT},
        ),
        ("/temporal/entities/urn:ngsi-ld:T:1", {"format": URL_TEXT}),
    ],
    ids=["georel", "scopeQ", "type", "timeAt", "aggrPeriodDuration", "temporal-format"],
)
async def test_a_long_read_parameter_is_not_echoed_whole(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    resp = await client.get(f"{BASE}{path}", params=params)
    assert resp.status_code == 400, resp.text[:300]
    assert len(resp.json()["detail"]) < 1_000, resp.text[:300]


async def test_a_long_link_header_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{BASE}/entities", params={"type": "T"}, headers={"Link": URL_TEXT})
    assert resp.status_code == 400, resp.text[:300]
    assert len(resp.json()["detail"]) < 1_000, resp.text[:300]

"""Errors: always ProblemDetails, never a 500 for bad input, and a refused request changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.sqlite import SqliteStore
from conftest import BASE, CORE, ERRORS, JSONLD, bad_request, create, get_entity, link, problem

EID = "urn:ngsi-ld:Pump:p1"
ENTITY: dict[str, Any] = {
    "id": EID,
    "type": "Pump",
    "flow": {"type": "Property", "value": 3, "observedAt": "2024-01-01T00:00:00Z"},
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Org:1"},
    "speed": [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:x"},
    ],
}


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    """Everything a refused request could have touched."""
    entity = await client.get(f"{BASE}/entities/{EID}", params={"options": "sysAttrs"})
    history = await client.get(f"{BASE}/temporal/entities/{EID}")
    types = await client.get(f"{BASE}/types", params={"details": "true"})
    everything = await client.get(f"{BASE}/entities", params={"type": "Pump,Other", "limit": "100"})
    contexts = await client.get(f"{BASE}/jsonldContexts")
    return {
        "entity": entity.json(),
        "history": history.json(),
        "types": types.json(),
        "all": everything.json(),
        "contexts": contexts.json(),
    }


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> dict[str, Any]:
    await create(client, ENTITY)
    return await snapshot(client)


def assert_client_error(resp: httpx.Response, what: str) -> None:
    assert 400 <= resp.status_code < 500, f"{what}: {resp.status_code} {resp.text[:300]}"
    body = resp.json()
    assert body["type"].startswith(ERRORS) and body["status"] == resp.status_code, (what, body)
    assert isinstance(body.get("title"), str), (what, body)
    media = resp.headers["content-type"].split(";")[0]
    assert media in ("application/json", "application/problem+json"), (what, media)


# -- unknown paths and methods ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/nothing",
        "/ngsi-ld/v1/nothing",
        "/ngsi-ld/v2/entities",
        f"/ngsi-ld/v1/entities/{EID}/attrs/flow/extra",
        "/ngsi-ld/v1/subscriptionsX",
    ],
)
async def test_unknown_path_is_404_problem(client: httpx.AsyncClient, path: str) -> None:
    problem(await client.get(path), 404, "ResourceNotFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/entities"),
        ("PATCH", "/entities"),
        ("POST", f"/entities/{EID}"),
        ("GET", f"/entities/{EID}/attrs"),
        ("POST", "/types"),
        ("DELETE", "/types/Pump"),
        ("PUT", "/attributes"),
        ("GET", "/entityOperations/create"),
        ("DELETE", "/entityOperations/upsert"),
        ("PUT", f"/temporal/entities/{EID}"),
        ("PUT", "/jsonldContexts"),
    ],
)
async def test_wrong_method_is_405_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    resp = await client.request(method, BASE + path)
    body = problem(resp, 405)
    assert "Not" in body["title"] or "not" in body["title"], body


async def test_wrong_method_on_health(client: httpx.AsyncClient) -> None:
    problem(await client.post("/health"), 405)


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/types", {"GET"}),
        ("/temporal/entities", {"GET", "POST"}),
        (f"/temporal/entities/{EID}", {"GET", "DELETE"}),
        ("/entities", {"GET", "POST", "DELETE"}),
        (f"/entities/{EID}", {"GET", "PUT", "PATCH", "DELETE"}),
    ],
)
async def test_405_lists_every_allowed_method(
    client: httpx.AsyncClient, path: str, methods: set[str]
) -> None:
    """RFC 9110 15.5.6: Allow names every method of the path, not only one route's."""
    resp = await client.request("TRACE", BASE + path)
    assert resp.status_code == 405
    allow = {m.strip() for m in resp.headers.get("allow", "").split(",")}
    assert methods <= allow, resp.headers


async def test_health(client: httpx.AsyncClient, db_path: Path) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200 and resp.json()["status"] == "ok", resp.text
    storage = resp.json()["storage"]
    assert storage["databaseBytes"] == db_path.stat().st_size > 0
    assert storage["walBytes"] >= 0 and storage["diskFreeBytes"] > 0
    assert resp.json()["notifications"] == {
        "queued": 0,
        "held": 0,
        "delivered": 0,
        "failedAttempts": 0,
        "givenUp": 0,
        "droppedQueueFull": 0,
        "spilledToOutbox": 0,
        "droppedOutboxFull": 0,
        "renderFailed": 0,
        "cooldownSkipped": 0,
        "outboxRows": 0,
        "oldestPendingSeconds": None,
    }


# -- malformed bodies on every write endpoint -------------------------------------------------

WRITES: list[tuple[str, str]] = [
    ("POST", "/entities"),
    ("PUT", f"/entities/{EID}"),
    ("PATCH", f"/entities/{EID}"),
    ("POST", f"/entities/{EID}/attrs"),
    ("PATCH", f"/entities/{EID}/attrs"),
    ("PATCH", f"/entities/{EID}/attrs/flow"),
    ("PUT", f"/entities/{EID}/attrs/flow"),
    ("POST", "/entityOperations/create"),
    ("POST", "/entityOperations/upsert"),
    ("POST", "/entityOperations/update"),
    ("POST", "/entityOperations/merge"),
    ("POST", "/entityOperations/delete"),
    ("POST", "/entityOperations/query"),
    ("POST", "/temporal/entities"),
    ("POST", f"/temporal/entities/{EID}/attrs"),
    ("POST", "/temporal/entityOperations/query"),
    ("POST", "/jsonldContexts"),
]

BAD_BODIES: dict[str, bytes] = {
    "truncated": b'{"id": "urn:a:b", "type": ',
    "empty": b"",
    "not-json": b"hello",
    "trailing-garbage": b"{} {}",
    "deep-nesting": b"[" * 3000 + b"]" * 3000,
    "huge-number": b'{"id": "urn:a:b", "type": "T", "n": 1e400}',
    "bad-utf8": b'{"id": "urn:a:\xff\xfe", "type": "T"}',
    "lone-surrogate": b'{"id": "urn:a:\\ud800", "type": "T"}',
    "null": b"null",
    "number": b"42",
    "string": b'"urn:ngsi-ld:Pump:p1"',
    "empty-object": b"{}",
    "empty-array": b"[]",
    "array-of-junk": b"[1, null, [], {}]",
    "nul-in-name": b'{"id": "urn:ngsi-ld:Pump:p1", "type": "Pump", "fl\\u0000ow": 1}',
    # an attribute type that is not a string (found by tests/test_api_fuzz.py), as an entity
    # member and as the body of an attribute route
    "list-attr-type": b'{"id": "urn:a:b", "type": "T", "flow": {"type": ["Property"], "value": 1}}',
    "list-type-fragment": b'{"type": ["Property"], "value": 1, "flow": {"type": {}, "value": 2}}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_malformed_bodies_are_4xx_and_change_nothing(
    client: httpx.AsyncClient, stored: dict[str, Any], name: str
) -> None:
    raw = BAD_BODIES[name]
    for method, path in WRITES:
        resp = await client.request(
            method, BASE + path, content=raw, headers={"Content-Type": "application/json"}
        )
        if resp.status_code in (200, 201, 204, 207):
            # A few bodies are valid for some endpoints (e.g. {} as a no-op merge).
            assert name in ("empty-object", "empty-array", "array-of-junk"), (
                f"{method} {path} accepted {name}: {resp.status_code} {resp.text[:200]}"
            )
            continue
        assert_client_error(resp, f"{method} {path} with {name}")
    after = await snapshot(client)
    if name not in ("empty-object", "empty-array", "array-of-junk"):
        assert after == stored, f"refused {name} requests changed what was stored"


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_wrong_content_type_everywhere_is_415(
    client: httpx.AsyncClient, stored: dict[str, Any], media: str
) -> None:
    raw = json.dumps(ENTITY).encode()
    for method, path in WRITES:
        headers = {"Content-Type": media} if media else {}
        resp = await client.request(method, BASE + path, content=raw, headers=headers)
        problem(resp, 415, "UnsupportedMediaType")
    assert await snapshot(client) == stored


# -- malformed parameters and headers ---------------------------------------------------------

BAD_PARAMS: list[dict[str, str]] = [
    {"type": "Pump", "limit": "abc"},
    {"type": "Pump", "limit": "-5"},  # (digits above 1000 are 403: tests/test_page_limit.py)
    {"type": "Pump", "limit": "1.5"},
    {"type": "Pump", "offset": "-1"},
    {"type": "Pump", "q": "flow>"},
    {"type": "Pump", "q": "(" * 200 + "flow>1" + ")" * 200},
    {"type": "Pump", "q": "flow==\x00"},
    {"type": "Pump", "q": 'name=="unterminated'},
    {"type": "Pump", "q": "flow[a..b]>1"},
    {"type": "Pump", "q": "flow~=[unclosed"},
    {"type": "Pump", "q": "flow==1e999"},
    {
        "type": "Pump",
        "georel": "near;maxDistance==1e999",
        "geometry": "Point",
        "coordinates": "[1,1]",
    },
    {"type": "Pump", "georel": "within", "geometry": "Point", "coordinates": "[[[[[[1]]]]]]"},
    {"type": "Pump", "georel": "intersects", "geometry": "Point", "coordinates": "[1e999, 1]"},
    {"type": "Pump", "georel": "beyond", "geometry": "Point", "coordinates": "[1,1]"},
    {"type": "Pump", "georel": "near;maxDistance==-5", "geometry": "Point", "coordinates": "[1,1]"},
    {"type": "Pump", "scopeQ": "nope"},
    {"type": "Pump", "options": "unknownOption"},
    {"type": "Pump", "format": "xml"},
    {"type": "Pump", "count": "yes"},
    {"type": "Pump", "attrs": "a,,b"},
    {"type": "Pump", "attrs": "bad name"},
    {"type": "Pump", "idPattern": "(?P<x"},
    {"type": "Pump", "id": "not-a-uri"},
    {"type": "(Pump"},
    {"type": "Pump;;Other"},
    {"type": "Pu\x00mp"},
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=[str(i) for i in range(len(BAD_PARAMS))])
async def test_bad_query_parameters_are_400(
    client: httpx.AsyncClient, stored: dict[str, Any], params: dict[str, str]
) -> None:
    resp = await client.get(f"{BASE}/entities", params=params)
    problem(resp, 400)
    resp = await client.get(f"{BASE}/temporal/entities", params=params)
    problem(resp, 400)


@pytest.mark.parametrize(
    "params",
    [
        {"options": "sysAttrs,bogus"},
        {"format": "yaml"},
        {"pick": "a;b"},
        {"omit": ""},
        {"attrs": ","},
        {"datasetId": ","},
    ],
)
async def test_bad_retrieve_parameters_are_400(
    client: httpx.AsyncClient, stored: dict[str, Any], params: dict[str, str]
) -> None:
    problem(await client.get(f"{BASE}/entities/{EID}", params=params), 400)


async def test_pick_with_omit_is_400(client: httpx.AsyncClient, stored: dict[str, Any]) -> None:
    params = {"type": "Pump", "pick": "flow", "omit": "owner"}
    problem(await client.get(f"{BASE}/entities", params=params), 400)
    problem(await client.get(f"{BASE}/entities/{EID}", params=params), 400)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "<>",
        '<>; rel="http://www.w3.org/ns/json-ld#context"',
        '<:::>; rel="http://www.w3.org/ns/json-ld#context"',
        '<ftp://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
        '<urn:not:dereferenceable>; rel="http://www.w3.org/ns/json-ld#context"',
        ",,,",
        '<https://ex.org/a>; rel="http://www.w3.org/ns/json-ld#context", garbage',
    ],
)
async def test_bad_link_headers_are_4xx_or_503(
    client: httpx.AsyncClient, stored: dict[str, Any], header: str
) -> None:
    """Malformed context links are refused; a Link without the context rel may be ignored."""
    for method, path, kwargs in (
        ("GET", f"/entities/{EID}", {}),
        ("GET", "/entities", {"params": {"type": "Pump"}}),
        ("POST", "/entities", {"json": {"id": "urn:ngsi-ld:Pump:p2", "type": "Pump"}}),
        ("DELETE", "/entities/urn:ngsi-ld:Pump:p2", {}),
    ):
        resp = await client.request(method, BASE + path, headers={"Link": header}, **kwargs)
        if resp.status_code == 503:
            problem(resp, 503, "LdContextNotAvailable")
        elif resp.status_code >= 300:
            assert_client_error(resp, f"{method} {path} Link: {header}")
    assert (await snapshot(client))["entity"] == stored["entity"]


@pytest.mark.parametrize(
    "accept",
    [
        "application/json;q=abc",
        ";;;",
        "*/*;q=0",
        "application/json;q=0",
        "text/*",
        "application/ld+json;q=-1",
    ],
)
async def test_odd_accept_headers_never_500(
    client: httpx.AsyncClient, stored: Any, accept: str
) -> None:
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Accept": accept})
    assert resp.status_code in (200, 406), resp.text
    if resp.status_code == 406:
        problem(resp, 406, "NotAcceptable")


@pytest.mark.parametrize("tenant", ["a/b", "x" * 500, "../etc", "ünïcode", "tenant with spaces"])
async def test_odd_tenant_names_never_500(client: httpx.AsyncClient, tenant: str) -> None:
    headers: dict[str, Any]
    headers = {"NGSILD-Tenant": tenant.encode()}
    resp = await client.post(f"{BASE}/entities", json={"id": EID, "type": "Pump"}, headers=headers)
    assert resp.status_code in (201, 400), resp.text
    if resp.status_code == 400:
        problem(resp, 400)
        return
    resp = await client.get(f"{BASE}/entities/{EID}", headers=headers)
    assert resp.status_code == 200, resp.text
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")


# -- a refused request changes nothing --------------------------------------------------------


async def test_refused_writes_change_nothing(
    client: httpx.AsyncClient, stored: dict[str, Any]
) -> None:
    refused = [
        (
            "PUT",
            f"/entities/{EID}",
            {"type": "Pump", "flow": 1, "bad": {"type": "Relationship", "object": "x y"}},
        ),
        ("PATCH", f"/entities/{EID}", {"flow": 9, "owner": {"type": "Relationship", "object": 3}}),
        ("PATCH", f"/entities/{EID}", {"id": "urn:ngsi-ld:Pump:other", "flow": 9}),
        (
            "POST",
            f"/entities/{EID}/attrs",
            {
                "flow": 9,
                "speed": [
                    {"type": "Property", "value": 1, "datasetId": "urn:d:1"},
                    {"type": "Property", "value": 2, "datasetId": "urn:d:1"},
                ],
            },
        ),
        (
            "PATCH",
            f"/entities/{EID}/attrs",
            {"flow": 9, "location": {"type": "Property", "value": 1}},
        ),
        ("PATCH", f"/entities/{EID}/attrs/flow", {"value": 9, "observedAt": "not a time"}),
        ("PUT", f"/entities/{EID}/attrs/flow", {"type": "GeoProperty", "value": {"type": "Point"}}),
        ("POST", "/entities", {**ENTITY, "flow": 42}),
        (
            "POST",
            "/entities",
            {"id": "urn:ngsi-ld:Pump:p2", "type": "Pump", "x": {"type": "Nope", "value": 1}},
        ),
        (
            "POST",
            "/temporal/entities",
            {
                "id": EID,
                "type": "Pump",
                "flow": [{"type": "Property", "value": 1, "observedAt": "never"}],
            },
        ),
        ("POST", f"/temporal/entities/{EID}/attrs", {"flow": [{"type": "Property"}]}),
        ("POST", "/jsonldContexts", {"@context": 7}),
    ]
    for method, path, body in refused:
        resp = await client.request(method, BASE + path, json=body)
        assert_client_error(resp, f"{method} {path}")
    assert await snapshot(client) == stored


async def test_refused_ld_json_write_changes_nothing(
    client: httpx.AsyncClient, stored: dict[str, Any], closed_url: str
) -> None:
    body = {"flow": 5, "@context": [closed_url, CORE]}
    resp = await client.patch(f"{BASE}/entities/{EID}", json=body, headers={"Content-Type": JSONLD})
    problem(resp, 503, "LdContextNotAvailable")
    resp = await client.patch(
        f"{BASE}/entities/{EID}", json={"flow": 5}, headers={"Link": link(closed_url)}
    )
    problem(resp, 503, "LdContextNotAvailable")
    assert await snapshot(client) == stored


# -- unexpected failures --------------------------------------------------------------------


class BrokenStore(SqliteStore):
    """A store whose reads blow up, to see the last-resort error handler."""

    def get(self, tenant: str, eid: str) -> Any:
        raise RuntimeError("disk on fire: /secret/path/hub.db")

    def get_json(self, tenant: str, eid: str) -> Any:
        raise RuntimeError("disk on fire: /secret/path/hub.db")


async def test_unexpected_errors_are_problem_details_without_internals(tmp_path: Path) -> None:
    app = create_app(
        Settings(db=str(tmp_path / "broken.db")), store=BrokenStore(tmp_path / "broken.db")
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        resp = await c.get(f"{BASE}/entities/{EID}")
    body = problem(resp, 500, "InternalError")
    assert "secret" not in resp.text and "Traceback" not in resp.text, resp.text
    assert body["title"]
    app.state.store.close()


# URLs that parse as absolute URIs but that no HTTP or MQTT client can request
UNREQUESTABLE = ["http://127.0.0.1:80http:/c.jsonld", "http://[::1/c.jsonld", "mqtt://h:99x/t"]


@pytest.mark.parametrize("url", UNREQUESTABLE)
async def test_urls_no_client_can_request_are_problems_not_500(
    client: httpx.AsyncClient, url: str
) -> None:
    """A @context (Link header or body), a notification endpoint or a device's ldContext
    with a port that is no number or an unclosed IPv6 host: a ProblemDetails, never a 500."""
    entity = {"id": "urn:ngsi-ld:Pump:u", "type": "Pump"}
    problem(
        await client.post(f"{BASE}/entities", json=entity, headers={"Link": link(url)}),
        503,
        "LdContextNotAvailable",
    )
    problem(
        await client.post(
            f"{BASE}/entities",
            content=json.dumps({**entity, "@context": url}),
            headers={"Content-Type": JSONLD},
        ),
        503,
        "LdContextNotAvailable",
    )
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Pump"}],
        "notification": {"endpoint": {"uri": url}},
    }
    problem(await client.post(f"{BASE}/subscriptions", json=sub), 400, "BadRequestData")
    device = {"id": "d1", "entityType": "Pump", "ldContext": url}
    resp = await client.post("/iot/v1/devices", json=device)
    # refused as no http(s) URL (400), or fetched at provisioning and not to be had (503)
    problem(resp, 503 if url.startswith("http://127") else 400)
    assert (await client.get(f"{BASE}/entities", params={"type": "Pump"})).json() == []


QUERY_MEMBERS: list[dict[str, Any]] = [
    {"attrs": [5]},
    {"attrs": ["temperature", None]},
    {"attrs": "temperature"},
    {"pick": [["id"]]},
    {"omit": {"id": 1}},
    {"q": 5},
    {"scopeQ": ["/Berlin"]},
    {"lang": 5},
    {"joinLevel": "2"},
    {"geoQ": "near;maxDistance==1"},
    {"geoQ": {"georel": "near;maxDistance==1", "geometry": "Point", "geoproperty": 5}},
]
QUERIES = [("/entityOperations/query", m) for m in QUERY_MEMBERS] + [
    ("/temporal/entityOperations/query", m)
    for m in [*QUERY_MEMBERS, {"temporalQ": "x"}, {"temporalQ": {"timerel": ["after"]}}]
]


@pytest.mark.parametrize(("path", "member"), QUERIES)
async def test_a_query_member_of_the_wrong_type_is_400(
    client: httpx.AsyncClient, path: str, member: dict[str, Any]
) -> None:
    """Dropped, a malformed member would widen the query; it used to be a 500 or ignored."""
    body = {"type": "Query", "entities": [{"type": "Sensor"}], **member}
    bad_request(await client.post(BASE + path, json=body))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/entities/urn:ngsi-ld:Bin:o1", {"level": 2}),
        ("PATCH", "/entities/urn:ngsi-ld:Bin:o1/attrs", {"level": 2}),
        ("PATCH", "/entities/urn:ngsi-ld:Bin:o1/attrs/level", {"value": 2}),
        ("POST", "/entityOperations/merge", [{"id": "urn:ngsi-ld:Bin:o1", "level": 2}]),
        ("POST", "/entityOperations/create", [{"id": "urn:ngsi-ld:Bin:o2", "type": "Bin"}]),
    ],
)
async def test_an_unknown_option_is_refused_by_writes_too(
    client: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """options=bogus was a 400 on reads, append and upsert, and ignored elsewhere."""
    await create(client, {"id": "urn:ngsi-ld:Bin:o1", "type": "Bin", "level": 1})
    resp = await client.request(method, BASE + path, json=body, params={"options": "bogus"})
    problem(resp, 400)
    assert (await get_entity(client, "urn:ngsi-ld:Bin:o1"))["level"]["value"] == 1
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:o2"), 404)


@pytest.mark.parametrize(
    ("attrs", "named", "reason"),
    [
        ({"b": {"type": "Property", "value": 2, "observedAt": "yesterday"}}, "b", "observedAt"),
        ({"temp": {"type": "Property"}}, "temp", "non-null 'value'"),
        ({"d": {"type": "Property", "value": 1, "unitCode": 5}}, "d", "unitCode"),
        ({"e": {"type": "Propery", "value": 1}}, "e", "unknown attribute type"),
        (
            {"location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": 1}}},
            "location",
            "GeoJSON",
        ),
        (
            {"f": {"type": "Property", "value": 1, "s": {"type": "Property"}}},
            "f': sub-attribute 's",
            "non-null 'value'",
        ),
    ],
)
async def test_an_attribute_error_names_the_attribute(
    client: httpx.AsyncClient, attrs: dict[str, Any], named: str, reason: str
) -> None:
    """In a 30-attribute entity the reason alone leaves the writer to guess which one it was."""
    good = {"a": {"type": "Property", "value": 1}}
    body = {"id": "urn:ngsi-ld:Shop:n9", "type": "Shop", **good, **attrs}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert detail.startswith(f"attribute '{named}': ") and reason in detail, detail
    await create(client, {"id": "urn:ngsi-ld:Shop:n8", "type": "Shop", **good})
    patched = await client.patch(f"{BASE}/entities/urn:ngsi-ld:Shop:n8/attrs", json=attrs)
    assert bad_request(patched)["detail"] == detail
    temporal = {"id": "urn:ngsi-ld:Shop:n7", "type": "Shop", **attrs}
    posted = await client.post(f"{BASE}/temporal/entities", json=temporal)
    assert bad_request(posted)["detail"] == detail


async def test_a_polygon_value_one_level_too_shallow_says_so(client: httpx.AsyncClient) -> None:
    """The entity body gets the same explanation as a geoQ (it said "needs 4 positions")."""
    ring = [[145, -17], [146, -17], [146, -16], [145, -17]]
    polygon = {"type": "Polygon", "coordinates": ring}
    body = {"id": "urn:ngsi-ld:Zone:z1", "type": "Zone", "location": polygon}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert "one array level is missing" in detail and "[[[lon, lat], ...]]" in detail, detail
    query = {"type": "Zone", "georel": "within", "geometry": "Polygon", "coordinates": str(ring)}
    detail = bad_request(await client.get(f"{BASE}/entities", params=query))["detail"]
    assert "one array level is missing" in detail, detail


async def test_an_invalid_name_says_which_characters_are_not_allowed(
    client: httpx.AsyncClient,
) -> None:
    body = {"id": "urn:ngsi-ld:Shop:n6", "type": "Shop", "Floor Area (m2)": 3}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert detail.startswith("invalid attribute name: 'Floor Area (m2)' holds ' '"), detail
    assert "names cannot hold whitespace, control characters or <>\"'=;()\\" in detail


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Property", "value": list(range(10_001))},
        {"type": "ListProperty", "valueList": list(range(10_001))},
        {"type": "JsonProperty", "json": list(range(10_001))},
        {"type": "Relationship", "object": [f"urn:ngsi-ld:T:{n}" for n in range(10_001)]},
    ],
)
async def test_a_value_of_more_than_ten_thousand_items_is_400(
    client: httpx.AsyncClient, attr: dict[str, Any]
) -> None:
    """Each item is a row of the q index: 6,000,000 held every request for 40 s."""
    body = {"id": "urn:ngsi-ld:T:big", "type": "T", "big": attr}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert "at most 10,000 items" in detail and "big" in detail, detail
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:T:big"), 404)
    key = next(k for k in attr if k != "type")
    attr[key] = attr[key][:10_000]
    await create(client, body)


async def test_a_client_that_leaves_mid_body_is_routine(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """ClientDisconnect reached the last-resort handler: two ERROR tracebacks per client."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{BASE}/entities",
        "raw_path": f"{BASE}/entities".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"200")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 1026),
    }
    messages = iter(
        [
            {"type": "http.request", "body": b'{"id":', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        pass

    await app(scope, receive, send)  # raised ClientDisconnect on to the server
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]
    app.state.store.close()

"""GET /entities/{id} with no query and no Link is answered before Starlette's middleware and
routing (api/plain_read.py), with the same bytes as the whole path gives; anything else, and
every error, goes the whole way."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from bench.write_path import http_scope, messages
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import ASGIApp

from asgi_support import Record, Spy, whole_way
from cityhub.api.http import GEOJSON, JSON, JSONLD, BodyResponse
from cityhub.ngsild.context import ContextCache
from conftest import BASE, CORE, create, link

EID = "urn:ngsi-ld:Bin:plain"
PATH = f"{BASE}/entities/{EID}"
Messages = list[dict[str, Any]]


async def exchange(
    app: ASGIApp, path: str, headers: list[tuple[bytes, bytes]] | None = None, query: bytes = b""
) -> Messages:
    """Every message the app sends for one GET, as uvicorn hands the request over."""
    scope = http_scope("GET", path, [(b"host", b"127.0.0.1"), *(headers or [])], query)
    return await messages(app, scope)


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> None:
    await create(
        client,
        {
            "id": EID,
            "type": "Bin",
            "level": {"type": "Property", "value": 3, "unitCode": "C62"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
        },
    )
    await create(client, {"id": EID, "type": "Bin"}, headers={"NGSILD-Tenant": "north"})


STORED = (
    b'{"id":"urn:ngsi-ld:Bin:plain","type":"Bin","level":{"type":"Property","value":3,'
    b'"unitCode":"C62"},"location":{"type":"GeoProperty","value":{"type":"Point",'
    b'"coordinates":[1,2]}}'
)
LINKED = f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


@pytest.mark.parametrize(
    ("accept", "head", "body"),
    [
        (
            [],
            [(b"link", LINKED.encode()), (b"content-length", b"177"), (b"content-type", JSON)],
            STORED + b"}",
        ),
        (
            [(b"accept", JSONLD.encode())],
            [(b"content-length", b"255"), (b"content-type", JSONLD)],
            STORED + f',"@context":"{CORE}"}}'.encode(),
        ),
    ],
)
async def test_the_answer_bytes_are_pinned(
    stored: None, app: Starlette, accept: list[tuple[bytes, bytes]], head: Any, body: bytes
) -> None:
    """Status, header lines in order, and body, as the hub sent them before plain reads
    skipped the middleware."""
    head = [(k, v.encode() if isinstance(v, str) else v) for k, v in head]
    for _ in range(2):  # the second comes from the read memo
        assert await exchange(app, PATH, accept) == [
            {"type": "http.response.start", "status": 200, "headers": head},
            {"type": "http.response.body", "body": body},
        ]


HEADERS: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"accept", JSONLD.encode())],
    [(b"accept", b"application/json, application/ld+json;q=0.5")],
    [(b"accept", GEOJSON.encode())],
    [(b"accept", b"text/html")],  # 406
    [(b"ngsild-tenant", b"north")],
    [(b"ngsild-tenant", b"nowhere")],  # 404, no such tenant
    [(b"ngsild-tenant", b"north"), (b"ngsild-tenant", b"south")],  # 400
    [(b"link", link(CORE).encode())],
    [(b"link", b"<nonsense")],  # 400
]
PATHS = [
    PATH,
    f"{BASE}/entities/urn:ngsi-ld:Bin:missing",  # 404
    f"{BASE}/entities/not-a-uri",  # 400
    f"{BASE}/entities/{EID}/attrs",  # 405
    f"{BASE}/entities/urn:ngsi-ld:Bin:a%2Fb",
    f"{BASE}/entities/",  # the collection
    f"{BASE}/entities/urn:ngsi-ld:Bin:a\nb",  # (%0A, decoded) the route's pattern stops there
    f"{PATH}\n",  # ... and takes a last newline as the end
]


@pytest.mark.parametrize("headers", HEADERS)
async def test_every_header_case_answers_as_the_whole_way(
    stored: None, app: Starlette, headers: list[tuple[bytes, bytes]]
) -> None:
    for path in PATHS:
        assert await exchange(app, path, headers) == await exchange(whole_way(app), path, headers)


async def test_a_query_answers_as_the_whole_way(stored: None, app: Starlette) -> None:
    for query in (b"options=keyValues", b"attrs=level", b"bogus=1"):
        mine = await exchange(app, PATH, query=query)
        assert mine == await exchange(whole_way(app), PATH, query=query)


async def test_only_plain_reads_skip_the_middleware(stored: None, app: Starlette) -> None:
    spy = Spy(app)
    app.middleware_stack = spy
    assert (await exchange(app, PATH))[0]["status"] == 200
    assert (await exchange(app, PATH, [(b"accept", JSONLD.encode())]))[0]["status"] == 200
    assert (await exchange(app, f"{BASE}/entities/urn:ngsi-ld:Bin:missing"))[0]["status"] == 404
    assert (await exchange(app, f"{BASE}/entities/not-a-uri"))[0]["status"] == 400
    assert spy.calls == 0, "NGSI-LD errors are answered by their handler, without the stack"
    assert (await exchange(app, PATH, query=b"options=keyValues"))[0]["status"] == 200
    assert (await exchange(app, PATH, [(b"link", link(CORE).encode())]))[0]["status"] == 200
    assert (await exchange(app, PATH, [(b"accept", GEOJSON.encode())]))[0]["status"] == 200
    assert (await exchange(app, f"{PATH}\n"))[0]["status"] == 200
    assert spy.calls == 4


async def test_middleware_added_after_a_plain_read_sees_the_next(app: Starlette) -> None:
    """A plain read builds no middleware stack, so middleware may still be added after it."""
    app.state.entities.batch_upsert("", [{"id": EID, "type": "Bin"}], ContextCache().core, "update")
    assert (await exchange(app, PATH))[0]["status"] == 200
    seen: list[str] = []

    app.add_middleware(Record, seen=seen)
    assert (await exchange(app, PATH))[0]["status"] == 200
    assert seen == [PATH]
    app.state.store.close()


@pytest.mark.parametrize(
    ("media", "link_value"),
    [(JSON, f"<{CORE}>; rel=x"), (JSONLD, None), (GEOJSON, None), (GEOJSON, "<u>")],
)
def test_body_responses_have_starlettes_header_lines(media: str, link_value: str | None) -> None:
    body = b'{"id":"urn:x:1"}'
    mine = BodyResponse(body, media, link_value)
    theirs = Response(
        body, media_type=media, headers={"Link": link_value} if link_value is not None else {}
    )
    assert mine.raw_headers == theirs.raw_headers
    assert (mine.status_code, mine.body, mine.media_type) == (200, body, media)

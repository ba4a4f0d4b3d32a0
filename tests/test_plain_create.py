"""POST /entities with no query is answered before Starlette's middleware and routing
(api/plain_create.py), with the messages the whole way gives, errors included; anything else
goes the whole way."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
from bench.write_path import http_scope
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from asgi_support import Record, Spy, named, sent, whole_way
from cityhub.api.http import CreatedResponse
from cityhub.store.base import StoreBusy, StoreFull
from conftest import BASE, CORE, link

PATH = f"{BASE}/entities"
Headers = list[tuple[bytes, bytes]]
JSON_TYPE = (b"content-type", b"application/json")


async def exchange(
    app: ASGIApp, body: bytes, headers: Headers, path: str = PATH, query: bytes = b""
) -> tuple[list[Message], str | None]:
    """asgi_support.exchange of a POST."""
    return await sent("POST", app, body, headers, path, query)


def entity(eid: str, **more: Any) -> bytes:
    return orjson.dumps(
        {"id": eid, "type": "Bin", "level": {"type": "Property", "value": 3}, **more}
    )


# (body with WAY where each way puts its own name, headers): each asked of both ways in turn
CASES: list[tuple[bytes, Headers]] = [
    (entity("urn:ngsi-ld:Bin:WAY"), [JSON_TYPE]),  # 201
    (entity("urn:ngsi-ld:Bin:WAY"), [JSON_TYPE]),  # 409, the same id again
    (entity("urn:ngsi-ld:Bin:WAY-ä"), [JSON_TYPE]),  # 201, the Location percent-encoded
    (entity("urn:ngsi-ld:Bin:WAY-t"), [JSON_TYPE, (b"ngsild-tenant", b"north")]),
    (
        entity("urn:ngsi-ld:Bin:WAY-t"),
        [JSON_TYPE, (b"ngsild-tenant", b"a"), (b"ngsild-tenant", b"b")],
    ),
    (entity("urn:ngsi-ld:Bin:WAY-l"), [JSON_TYPE, (b"link", link(CORE).encode())]),
    (entity("urn:ngsi-ld:Bin:WAY-l2"), [JSON_TYPE, (b"link", b"<nonsense")]),
    (entity("urn:ngsi-ld:Bin:WAY-c", **{"@context": CORE}), [JSON_TYPE]),  # 400: JSON
    (
        entity("urn:ngsi-ld:Bin:WAY-ld", **{"@context": CORE}),
        [(b"content-type", b"application/ld+json")],
    ),
    (entity("urn:ngsi-ld:Bin:WAY-ld2"), [(b"content-type", b"application/ld+json")]),  # 400
    (entity("urn:ngsi-ld:Bin:WAY-x"), [(b"content-type", b"text/plain")]),  # 415
    (entity("urn:ngsi-ld:Bin:WAY-x"), [(b"content-type", b"application/json; charset=latin-1")]),
    (entity("urn:ngsi-ld:Bin:WAY-a"), [JSON_TYPE, (b"accept", b"text/html")]),
    (b'{"id": "urn:ngsi-ld:Bin:WAY-bad", ', [JSON_TYPE]),  # 400, not JSON
    (b"", [JSON_TYPE]),  # 400, empty
    (b'{"id": "urn:ngsi-ld:Bin:WAY-nt"}', [JSON_TYPE]),  # 400, no type
    (b'{"id": "not a uri WAY", "type": "Bin"}', [JSON_TYPE]),  # 400
    (b'["WAY"]', [JSON_TYPE]),  # 400, not an object
    (entity("urn:ngsi-ld:Bin:WAY-v", level={"type": "Property"}), [JSON_TYPE]),  # 400
]


async def both_ways(app: Starlette, body: bytes, headers: Headers, **kw: Any) -> tuple[Any, Any]:
    """The direct answer and the whole way's, each for its own copy of the request."""
    mine = await exchange(app, body.replace(b"WAY", b"direct"), headers, **kw)
    theirs = await exchange(whole_way(app), body.replace(b"WAY", b"entire"), headers, **kw)
    return (named(mine[0], "direct"), mine[1]), (named(theirs[0], "entire"), theirs[1])


async def test_every_case_answers_as_the_whole_way(app: Starlette) -> None:
    statuses = []
    for body, headers in CASES:
        mine, theirs = await both_ways(app, body, headers)
        assert mine == theirs, body
        statuses.append(mine[0][0]["status"])
    assert statuses == [201, 409, 201, 201, 400, 201, 400, 400, 201, 400, 415, 415, 406] + [400] * 6
    for eid in ("urn:ngsi-ld:Bin:direct", "urn:ngsi-ld:Bin:entire"):
        assert app.state.store.get("", eid)["attrs"]  # stored, with its history
        assert app.state.store.has_history("", eid)
    assert app.state.store.get("north", "urn:ngsi-ld:Bin:direct-t") is not None
    assert app.state.store.get("", "urn:ngsi-ld:Bin:direct-v") is None


async def test_a_body_past_the_bound_answers_as_the_whole_way(app: Starlette) -> None:
    app.state.settings.max_body = 64
    mine, theirs = await both_ways(app, entity("urn:ngsi-ld:Bin:WAY"), [JSON_TYPE])
    assert mine == theirs
    assert mine[0][0]["status"] == 413


@pytest.mark.parametrize(("error", "status"), [(StoreFull("full"), 503), (StoreBusy("busy"), 503)])
async def test_store_errors_answer_as_the_whole_way(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    def refuse(*args: Any) -> Any:
        raise error

    monkeypatch.setattr(app.state.entities, "create_expanded", refuse)
    mine, theirs = await both_ways(app, entity("urn:ngsi-ld:Bin:WAY"), [JSON_TYPE])
    assert mine == theirs
    assert mine[0][0]["status"] == status
    assert mine[1] is None


async def test_an_unexpected_error_is_answered_logged_and_raised_as_the_whole_way(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.entities, "create_expanded", fail)
    with caplog.at_level(logging.ERROR, logger="cityhub"):
        mine, theirs = await both_ways(app, entity("urn:ngsi-ld:Bin:WAY"), [JSON_TYPE])
    assert mine == theirs
    assert mine[0][0]["status"] == 500
    assert mine[1] == "RuntimeError: a bug"  # the server sees it too, as before
    logged = [r for r in caplog.records if r.message.startswith("unhandled error on POST")]
    assert len(logged) == 2


async def test_a_client_that_leaves_mid_body_answers_as_the_whole_way(app: Starlette) -> None:
    async def run(target: ASGIApp) -> list[Message]:
        out: list[Message] = []
        head = [(b"host", b"h"), JSON_TYPE, (b"content-length", b"100")]

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            out.append(message)

        await target(http_scope("POST", PATH, head), receive, send)
        return out

    assert await run(app) == await run(whole_way(app))


async def test_only_plain_creates_skip_the_middleware(app: Starlette) -> None:
    spy = Spy(app)
    app.middleware_stack = spy
    ok = [JSON_TYPE]
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:1"), ok))[0][0]["status"] == 201
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:1"), ok))[0][0]["status"] == 409
    assert (await exchange(app, b"{", ok))[0][0]["status"] == 400
    assert spy.calls == 0, "a plain create and its errors never reach the middleware"
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:2"), ok, PATH + "/"))[0][0]["status"] == 201
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:3"), ok, query=b"x=1"))[0][0][
        "status"
    ] == 400
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:4"), ok, PATH + "%2F"))[0][0]["status"] in (
        201,
        404,
    )
    assert spy.calls == 3


async def test_added_middleware_sees_every_create(app: Starlette) -> None:
    seen: list[str] = []

    assert (await exchange(app, entity("urn:ngsi-ld:Bin:1"), [JSON_TYPE]))[0][0]["status"] == 201
    app.add_middleware(Record, seen=seen)
    assert (await exchange(app, entity("urn:ngsi-ld:Bin:2"), [JSON_TYPE]))[0][0]["status"] == 201
    assert seen == [PATH]
    app.state.store.close()


async def test_the_created_answer_through_a_client(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{PATH}", content=entity("urn:ngsi-ld:Bin:c"), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 201
    assert resp.headers["location"] == f"{PATH}/urn:ngsi-ld:Bin:c"
    assert resp.content == b""


@pytest.mark.parametrize("location", [f"{PATH}/urn:x:1", f"{PATH}/urn:x:%C3%A4"])
def test_created_responses_have_starlettes_header_lines(location: str) -> None:
    mine = CreatedResponse(location)
    theirs = Response(status_code=201, headers={"Location": location})
    assert mine.raw_headers == theirs.raw_headers
    assert (mine.status_code, mine.body, mine.media_type) == (201, b"", None)

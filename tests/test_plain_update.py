"""PATCH /entities/{id}/attrs with no query is answered before Starlette's middleware
(api/plain_update.py, decision 091), with the messages the whole way gives, errors included;
anything the router sends elsewhere goes the whole way."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message

from asgi_support import Headers, Record, Spy, named, sent, whole_way
from cityhub.store.base import StoreBusy, StoreFull
from conftest import BASE, CORE, link

JSON_TYPE = (b"content-type", b"application/json")
LEVEL = orjson.dumps({"level": {"type": "Property", "value": 7}})


def path(eid: str) -> str:
    return f"{BASE}/entities/{eid}/attrs"


async def patch(
    app: ASGIApp, eid: str, body: bytes, headers: Headers, query: bytes = b""
) -> tuple[list[Message], str | None]:
    """asgi_support.sent of a PATCH of eid's attributes."""
    return await sent("PATCH", app, body, headers, path(eid), query)


async def make(app: Starlette, eid: str, tenant: bytes = b"") -> None:
    """A Bin with a level and a scope, in tenant ("" for the default)."""
    body = {"id": eid, "type": "Bin", "level": {"type": "Property", "value": 3}, "scope": "/a"}
    headers = [JSON_TYPE, (b"ngsild-tenant", tenant)] if tenant else [JSON_TYPE]
    out, _ = await sent("POST", app, orjson.dumps(body), headers, f"{BASE}/entities")
    assert out[0]["status"] == 201, out


# (entity id with WAY where each way puts its own name, body, headers): both ways in turn
CASES: list[tuple[str, bytes, Headers]] = [
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE]),  # 204
    ("urn:ngsi-ld:Bin:WAY", b'{"gone": "urn:ngsi-ld:null", "level": 1}', [JSON_TYPE]),  # 207
    ("urn:ngsi-ld:Bin:WAY", b'{"scope": "/b"}', [JSON_TYPE]),  # 204
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [(b"content-type", b"application/merge-patch+json")]),
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE, (b"link", link(CORE).encode())]),
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE, (b"link", b"<nonsense")]),
    (
        "urn:ngsi-ld:Bin:WAY",
        orjson.dumps({"level": 2, "@context": CORE}),
        [(b"content-type", b"application/ld+json")],
    ),
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [(b"content-type", b"application/ld+json")]),  # 400
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [(b"content-type", b"text/plain")]),  # 415
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE, (b"accept", b"text/html")]),  # 406
    ("urn:ngsi-ld:Bin:WAY", b'{"level": ', [JSON_TYPE]),  # 400, not JSON
    ("urn:ngsi-ld:Bin:WAY", b"", [JSON_TYPE]),  # 400, empty
    ("urn:ngsi-ld:Bin:WAY", b'["level"]', [JSON_TYPE]),  # 400, not an object
    ("urn:ngsi-ld:Bin:WAY", b'{"id": "urn:ngsi-ld:Bin:other"}', [JSON_TYPE]),  # 400
    ("urn:ngsi-ld:Bin:WAY", b'{"level": {"type": "Property"}}', [JSON_TYPE]),  # 400
    ("urn:ngsi-ld:Bin:WAY-absent", LEVEL, [JSON_TYPE]),  # 404
    ("not-a-uri-WAY", LEVEL, [JSON_TYPE]),  # 400
    ("urn:ngsi-ld:Bin:WAY-t", LEVEL, [JSON_TYPE, (b"ngsild-tenant", b"north")]),  # 204
    ("urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE, (b"ngsild-tenant", b"nowhere")]),  # 404
]
STATUSES = [204, 207, 204, 204, 204, 400, 204, 400, 415, 406] + [400] * 5 + [404, 400, 204, 404]


async def both_ways(
    app: Starlette, eid: str, body: bytes, headers: Headers, **kw: Any
) -> tuple[Any, Any]:
    """The direct answer and the whole way's, each for its own entity."""
    mine = await patch(app, eid.replace("WAY", "direct"), body, headers, **kw)
    theirs = await patch(whole_way(app), eid.replace("WAY", "entire"), body, headers, **kw)
    return (named(mine[0], "direct"), mine[1]), (named(theirs[0], "entire"), theirs[1])


async def test_every_case_answers_and_stores_as_the_whole_way(app: Starlette) -> None:
    for way in ("direct", "entire"):
        await make(app, f"urn:ngsi-ld:Bin:{way}")
        await make(app, f"urn:ngsi-ld:Bin:{way}-t", b"north")
    statuses = []
    for eid, body, headers in CASES:
        mine, theirs = await both_ways(app, eid, body, headers)
        assert mine == theirs, (eid, body, headers)
        statuses.append(mine[0][0]["status"])
    assert statuses == STATUSES
    store = app.state.store
    for tenant, eid in (("", "urn:ngsi-ld:Bin:{}"), ("north", "urn:ngsi-ld:Bin:{}-t")):
        direct, entire = (
            store.get(tenant, eid.format("direct")),
            store.get(tenant, eid.format("entire")),
        )
        for doc in (direct, entire):
            doc.pop("id"), doc.pop("createdAt"), doc.pop("modifiedAt")
            for instances in doc["attrs"].values():
                for inst in instances:
                    for key in ("createdAt", "modifiedAt", "instanceId"):
                        inst.pop(key, None)
        assert direct == entire


async def test_a_body_past_the_bound_answers_as_the_whole_way(app: Starlette) -> None:
    app.state.settings.max_body = 16
    mine, theirs = await both_ways(app, "urn:ngsi-ld:Bin:WAY", LEVEL * 2, [JSON_TYPE])
    assert mine == theirs
    assert mine[0][0]["status"] == 413


@pytest.mark.parametrize(("error", "status"), [(StoreFull("full"), 503), (StoreBusy("busy"), 503)])
async def test_store_errors_answer_as_the_whole_way(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    def refuse(*args: Any) -> Any:
        raise error

    monkeypatch.setattr(app.state.entities, "update", refuse)
    mine, theirs = await both_ways(app, "urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE])
    assert mine == theirs
    assert (mine[0][0]["status"], mine[1]) == (status, None)


async def test_an_unexpected_error_is_answered_logged_and_raised_as_the_whole_way(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app.state.entities, "update", fail)
    with caplog.at_level(logging.ERROR, logger="cityhub"):
        mine, theirs = await both_ways(app, "urn:ngsi-ld:Bin:WAY", LEVEL, [JSON_TYPE])
    assert mine == theirs
    assert (mine[0][0]["status"], mine[1]) == (500, "RuntimeError: a bug")
    logged = [r for r in caplog.records if r.message.startswith("unhandled error on PATCH")]
    assert len(logged) == 2


async def test_only_plain_updates_skip_the_middleware(app: Starlette) -> None:
    await make(app, "urn:ngsi-ld:Bin:1")
    spy = Spy(app)
    app.middleware_stack = spy
    ok = [JSON_TYPE]
    assert (await patch(app, "urn:ngsi-ld:Bin:1", LEVEL, ok))[0][0]["status"] == 204
    assert (await patch(app, "urn:ngsi-ld:Bin:2", LEVEL, ok))[0][0]["status"] == 404
    assert (await patch(app, "urn:ngsi-ld:Bin:1", b"{", ok))[0][0]["status"] == 400
    assert spy.calls == 0, "a plain update and its errors never reach the middleware"
    # a query, a percent-encoded path, the missing-id route: the whole way
    assert (await patch(app, "urn:ngsi-ld:Bin:1", LEVEL, ok, b"x=1"))[0][0]["status"] == 400
    assert (await patch(app, "urn:ngsi-ld:Bin:%31", LEVEL, ok))[0][0]["status"] == 404
    assert (await patch(app, "", LEVEL, ok))[0][0]["status"] == 400
    assert spy.calls == 3


async def test_added_middleware_sees_every_update(app: Starlette) -> None:
    seen: list[str] = []
    await make(app, "urn:ngsi-ld:Bin:1")
    app.add_middleware(Record, seen=seen)
    assert (await patch(app, "urn:ngsi-ld:Bin:1", LEVEL, [JSON_TYPE]))[0][0]["status"] == 204
    assert seen == [path("urn:ngsi-ld:Bin:1")]
    app.state.store.close()

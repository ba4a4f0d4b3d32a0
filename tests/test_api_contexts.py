"""@context handling: /jsonldContexts, Link headers, remote contexts (fetched once), expansion."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.api.http import BATCH_FETCHES
from cityhub.settings import Settings
from conftest import (
    BASE,
    CORE,
    JSONLD,
    VOCAB,
    ContextServer,
    bad_request,
    create,
    get_entity,
    link,
    problem,
)

CTX = f"{BASE}/jsonldContexts"
EID = "urn:ngsi-ld:Sensor:c1"
HOSTED_DOC: dict[str, Any] = {
    "@context": {
        "temp": VOCAB + "temperature",
        "Probe": VOCAB + "Sensor",
        "wetness": VOCAB + "humidity",
    }
}


def sensor() -> dict[str, Any]:
    return {
        "id": EID,
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 21},
        "humidity": {"type": "Property", "value": 50},
        "plain": {"type": "Property", "value": 1},
    }


async def host(client: httpx.AsyncClient, doc: dict[str, Any] = HOSTED_DOC) -> str:
    resp = await client.post(CTX, json=doc)
    assert resp.status_code == 201, resp.text
    location = resp.headers["location"]  # a path, like the Location of a created entity
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/"), location
    return "http://hub" + location


# -- /jsonldContexts ---------------------------------------------------------------------------


async def test_list_contains_the_core_context(client: httpx.AsyncClient) -> None:
    for path in (CTX, CTX + "/"):
        resp = await client.get(path)
        assert resp.status_code == 200, resp.text
        assert CORE in resp.json(), resp.json()


async def test_add_get_list_delete(client: httpx.AsyncClient) -> None:
    url = await host(client)
    cid = url.rsplit("/", 1)[-1]
    resp = await client.get(f"{CTX}/{cid}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == HOSTED_DOC
    assert url in (await client.get(CTX)).json()
    hosted = (await client.get(CTX, params={"kind": "Hosted"})).json()
    assert hosted == [url], hosted
    details = (await client.get(CTX, params={"details": "true", "kind": "Hosted"})).json()
    assert len(details) == 1 and details[0]["URL"] == url and details[0]["kind"] == "Hosted", (
        details
    )
    assert details[0]["localId"] == cid
    meta = await client.get(f"{CTX}/{cid}", params={"details": "true"})
    assert meta.status_code == 200 and meta.json()["kind"] == "Hosted", meta.text
    resp = await client.delete(f"{CTX}/{cid}")
    assert resp.status_code == 204, resp.text
    problem(await client.get(f"{CTX}/{cid}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{CTX}/{cid}"), 404, "ResourceNotFound")
    assert url not in (await client.get(CTX)).json()


async def test_details_of_every_entry(client: httpx.AsyncClient) -> None:
    await host(client)
    details = (await client.get(CTX, params={"details": "true"})).json()
    assert all({"URL", "localId", "kind"} <= set(d) for d in details), details
    assert {d["kind"] for d in details} <= {"Hosted", "Cached", "ImplicitlyCreated"}


async def test_get_core_context(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{CTX}/{quote(CORE, safe='')}")
    assert resp.status_code == 200, resp.text
    terms = resp.json()["@context"]
    assert terms["Property"].endswith("Property") and "@vocab" in terms, terms


async def test_core_context_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    bad_request(await client.delete(f"{CTX}/{quote(CORE, safe='')}"))
    assert CORE in (await client.get(CTX)).json()


async def test_unknown_kind_is_400(client: httpx.AsyncClient) -> None:
    bad_request(await client.get(CTX, params={"kind": "Borrowed"}))


@pytest.mark.parametrize(
    "body",
    [{"terms": {"a": "b"}}, {"@context": 5}, {"@context": None}, ["@context"]],
    ids=["no-context", "number", "null", "array"],
)
async def test_add_bad_context_is_400(client: httpx.AsyncClient, body: Any) -> None:
    resp = await client.post(CTX, json=body)
    problem(resp, 400)
    assert (await client.get(CTX, params={"kind": "Hosted"})).json() == []


async def test_add_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(CTX, content=b"{", headers={"Content-Type": "application/json"})
    problem(resp, 400, "InvalidRequest")


async def test_add_context_importing_an_unreachable_one_is_503(
    client: httpx.AsyncClient, closed_url: str
) -> None:
    resp = await client.post(CTX, json={"@context": [closed_url, {"a": "https://ex.org/a"}]})
    problem(resp, 503, "LdContextNotAvailable")
    assert (await client.get(CTX, params={"kind": "Hosted"})).json() == []


async def test_unknown_context_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{CTX}/no-such-context"), 404, "ResourceNotFound")


# -- hosted contexts in Link headers -----------------------------------------------------------


async def test_hosted_context_works_in_a_link_header(client: httpx.AsyncClient) -> None:
    url = await host(client)
    entity = {"id": EID, "type": "Probe", "temp": 21, "wetness": 50, "plain": 1}
    await create(client, entity, headers={"Link": link(url)})
    body = await get_entity(client, EID, headers={"Link": link(url)})
    assert body["temp"]["value"] == 21 and body["wetness"]["value"] == 50, body
    assert body["plain"]["value"] == 1, body
    core = await get_entity(client, EID)
    assert core[VOCAB + "temperature"]["value"] == 21 and core["type"] == VOCAB + "Sensor", core
    resp = await client.get(
        f"{BASE}/entities", params={"type": "Probe"}, headers={"Link": link(url)}
    )
    assert [e["id"] for e in resp.json()] == [EID], resp.text


async def test_hosted_contexts_survive_a_restart(client: httpx.AsyncClient, db_path: Path) -> None:
    url = await host(client)
    app2: Starlette = create_app(Settings(db=str(db_path)))
    transport = httpx.ASGITransport(app=app2)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c2:
        cid = url.rsplit("/", 1)[-1]
        resp = await c2.get(f"{CTX}/{cid}")
        assert resp.status_code == 200, resp.text
        await create(c2, {"id": EID, "type": "Probe", "temp": 3}, headers={"Link": link(url)})
        assert "https://vocab.example.org/temperature" in await get_entity(c2, EID)
    app2.state.store.close()


# -- the core context, any version, without network --------------------------------------------


@pytest.mark.parametrize("version", ["", "-v1.3", "-v1.6", "-v1.7", "-v1.8"])
async def test_core_context_of_any_version_needs_no_network(
    client: httpx.AsyncClient, version: str
) -> None:
    url = f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context{version}.jsonld"
    started = time.monotonic()
    await create(client, sensor(), headers={"Link": link(url)})
    body = await get_entity(client, EID, headers={"Link": link(url)})
    assert time.monotonic() - started < 2, "the core context must never be fetched"
    assert body["temperature"]["value"] == 21, body
    assert body["type"] == "Sensor"
    resp = await client.post(
        f"{BASE}/entities",
        json={"id": "urn:ngsi-ld:Sensor:c2", "type": "Sensor", "@context": url},
        headers={"Content-Type": JSONLD},
    )
    assert resp.status_code == 201, resp.text


# -- remote contexts ---------------------------------------------------------------------------


async def test_remote_context_is_fetched_once(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    path = "/ctx/fetched-once.jsonld"
    url = context_server.url(path)
    await create(client, sensor(), headers={"Link": link(url)})
    for _ in range(3):
        body = await get_entity(client, EID, headers={"Link": link(url)})
        assert body["temperature"]["value"] == 21
    resp = await client.get(
        f"{BASE}/entities", params={"type": "Sensor"}, headers={"Link": link(url)}
    )
    assert [e["id"] for e in resp.json()] == [EID]
    assert context_server.hits[path] == 1, f"fetched {context_server.hits[path]} times"
    cached = (await client.get(CTX, params={"kind": "Cached"})).json()
    assert url in cached, cached
    details = (await client.get(CTX, params={"kind": "Cached", "details": "true"})).json()
    local_id = next(d["localId"] for d in details if d["URL"] == url)
    resp = await client.get(f"{CTX}/{local_id}")
    assert resp.status_code == 200 and "@context" in resp.json(), resp.text
    assert context_server.hits[path] == 1, "reading the cached copy does not fetch it"


async def test_remote_context_in_ld_json_body(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/in-body.jsonld")
    resp = await client.post(
        f"{BASE}/entities",
        json={**sensor(), "@context": [url, CORE]},
        headers={"Content-Type": JSONLD},
    )
    assert resp.status_code == 201, resp.text
    assert (await get_entity(client, EID))[VOCAB + "temperature"]["value"] == 21


@pytest.mark.parametrize("path", ["/entityOperations/query", "/temporal/entityOperations/query"])
async def test_a_json_answer_links_the_context_url_of_an_ld_json_body(
    client: httpx.AsyncClient, context_server: ContextServer, path: str
) -> None:
    """The answer was compacted with the body's @context but linked the core one, so a
    client read "Sensor" as the default vocabulary's."""
    url = context_server.url("/ctx/query-body.jsonld")
    await create(client, sensor(), headers={"Link": link(url)})
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "@context": url}
    if path.startswith("/temporal"):
        body["temporalQ"] = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    resp = await client.post(
        f"{BASE}{path}",
        json=body,
        headers={"Content-Type": JSONLD, "Accept": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    assert [e["type"] for e in resp.json()] == ["Sensor"]
    assert resp.headers["Link"] == link(url)


@pytest.mark.parametrize("path", ["/entityOperations/query", "/temporal/entityOperations/query"])
async def test_a_json_answer_links_a_served_copy_of_an_inline_ld_json_context(
    client: httpx.AsyncClient, path: str
) -> None:
    """It linked the core context, under which "Chamber" means another type."""
    await create(client, sensor())
    inline = [{"Chamber": "https://uri.etsi.org/ngsi-ld/default-context/Sensor"}, CORE]
    body = {"type": "Query", "entities": [{"type": "Chamber"}], "@context": inline}
    if path.startswith("/temporal"):
        body["temporalQ"] = {"timerel": "after", "timeAt": "2000-01-01T00:00:00Z"}
    headers = {"Content-Type": JSONLD, "Accept": "application/json"}
    resp = await client.post(f"{BASE}{path}", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert [e["type"] for e in resp.json()] == ["Chamber"]
    url = resp.headers["Link"].split(">", 1)[0].lstrip("<")
    served = await client.get(url)
    assert served.status_code == 200 and served.json()["@context"] == inline, served.text
    again = await client.post(f"{BASE}{path}", json=body, headers=headers)
    assert again.headers["Link"] == resp.headers["Link"], "equal contexts share one copy"
    listed = await client.get(CTX, params={"kind": "ImplicitlyCreated"})
    assert len(listed.json()) == 1, listed.text


async def test_a_url_before_the_core_is_linked_as_itself(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/before-core.jsonld")
    await create(client, sensor(), headers={"Link": link(url)})
    body = {"type": "Query", "entities": [{"type": "Sensor"}], "@context": [url, CORE]}
    headers = {"Content-Type": JSONLD, "Accept": "application/json"}
    resp = await client.post(f"{BASE}/entityOperations/query", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Link"] == link(url)


async def test_nested_remote_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/nested/deep")
    await create(client, {**sensor(), "extra": 5}, headers={"Link": link(url)})
    body = await get_entity(client, EID)
    assert VOCAB + "temperature" in body and VOCAB + "extra" in body, body
    assert context_server.hits["/ctx/deep.jsonld"] == 1


async def test_cached_context_reload(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    path = "/ctx/reload.jsonld"
    url = context_server.url(path)
    await create(client, sensor(), headers={"Link": link(url)})
    resp = await client.delete(f"{CTX}/{quote(url, safe='')}", params={"reload": "true"})
    assert resp.status_code == 204, resp.text
    assert context_server.hits[path] == 2, "reload fetches the context again"
    resp = await client.delete(f"{CTX}/{quote(url, safe='')}")
    assert resp.status_code == 204, resp.text
    assert url not in (await client.get(CTX)).json()


async def test_unreachable_context_is_503_fast(client: httpx.AsyncClient, closed_url: str) -> None:
    started = time.monotonic()
    resp = await client.post(f"{BASE}/entities", json=sensor(), headers={"Link": link(closed_url)})
    elapsed = time.monotonic() - started
    problem(resp, 503, "LdContextNotAvailable")
    assert elapsed < 5, f"took {elapsed:.1f}s"
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")
    resp = await client.get(
        f"{BASE}/entities", params={"type": "Sensor"}, headers={"Link": link(closed_url)}
    )
    problem(resp, 503, "LdContextNotAvailable")


@pytest.mark.parametrize("path", ["/missing.jsonld", "/notjson", "/nocontext"])
async def test_broken_remote_context_is_503(
    client: httpx.AsyncClient, context_server: ContextServer, path: str
) -> None:
    resp = await client.post(
        f"{BASE}/entities", json=sensor(), headers={"Link": link(context_server.url(path))}
    )
    problem(resp, 503, "LdContextNotAvailable")


# -- expansion and compaction ------------------------------------------------------------------


async def test_user_context_names_expand_to_their_iris(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/expansion.jsonld")
    await create(client, sensor(), headers={"Link": link(url)})
    # With the core context only, user terms come back as full IRIs...
    plain = await get_entity(client, EID)
    assert plain[VOCAB + "temperature"]["value"] == 21, plain
    assert plain[VOCAB + "humidity"]["value"] == 50, plain
    assert plain["type"] == VOCAB + "Sensor", plain
    assert plain["plain"]["value"] == 1, "names the user context lacks use the default vocab"
    # ... with another context that names the same IRIs, they come back under its names ...
    hosted = await host(client)
    other = await get_entity(client, EID, headers={"Link": link(hosted)})
    assert other["temp"]["value"] == 21 and other["wetness"]["value"] == 50, other
    assert other["type"] == "Probe", other
    # ... and with the original context, under the original names.
    same = await get_entity(client, EID, headers={"Link": link(url)})
    assert same["temperature"]["value"] == 21 and same["type"] == "Sensor", same


async def test_queries_use_the_request_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/query.jsonld")
    await create(client, sensor(), headers={"Link": link(url)})
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor"})
    assert resp.json() == [], "Sensor in the core context is another type"
    resp = await client.get(
        f"{BASE}/entities",
        params={"type": "Sensor", "q": "temperature==21"},
        headers={"Link": link(url)},
    )
    assert [e["id"] for e in resp.json()] == [EID], resp.text
    resp = await client.get(f"{BASE}/entities", params={"type": VOCAB + "Sensor"})
    assert [e["id"] for e in resp.json()] == [EID], "a full IRI needs no context"


async def test_response_links_the_request_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/response.jsonld")
    await create(client, sensor(), headers={"Link": link(url)})
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Link": link(url)})
    assert f"<{url}>" in resp.headers["link"], resp.headers
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Link": link(url), "Accept": JSONLD})
    ctx = resp.json()["@context"]
    assert ctx == url or url in ctx, ctx


async def test_inline_context_with_vocab(client: httpx.AsyncClient) -> None:
    body = {**sensor(), "@context": [{"@vocab": "https://other.example/"}, CORE]}
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert resp.status_code == 201, resp.text
    plain = await get_entity(client, EID)
    assert "https://other.example/temperature" in plain, plain


@pytest.mark.parametrize(
    "header",
    [
        "not a link",
        '<relative/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"',
        '<https://ex.org/a.jsonld; rel="http://www.w3.org/ns/json-ld#context"',
    ],
)
async def test_bad_link_header_is_400(client: httpx.AsyncClient, header: str) -> None:
    bad_request(await client.post(f"{BASE}/entities", json=sensor(), headers={"Link": header}))
    bad_request(
        await client.get(f"{BASE}/entities", params={"type": "Sensor"}, headers={"Link": header})
    )


async def test_link_header_with_other_rel_is_ignored(client: httpx.AsyncClient) -> None:
    await create(client, sensor(), headers={"Link": '<https://ex.org/x>; rel="next"'})
    assert (await get_entity(client, EID))["temperature"]["value"] == 21


@pytest.mark.parametrize(
    "rel",
    [
        "http://www.w3.org/ns/json-ld#contextual",
        "http://evil.example/json-ld#context",
        "http://www.w3.org/ns/jsonld#context",
    ],
)
async def test_a_rel_that_only_holds_the_context_relation_is_another_link(
    client: httpx.AsyncClient, rel: str
) -> None:
    """The @context link is the one whose rel is http://www.w3.org/ns/json-ld#context (6.3.5),
    as one whole relation type: a substring test fetched rel="http://evil.example/json-ld#context"
    as the @context (an unreachable one: 503)."""
    header = {"Link": f'<http://127.0.0.1:1/x.jsonld>; rel="{rel}"'}
    await create(client, sensor(), headers=header)
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor"}, headers=header)
    assert resp.status_code == 200 and [e["id"] for e in resp.json()] == [EID], resp.text


async def test_the_context_relation_may_stand_among_others(client: httpx.AsyncClient) -> None:
    """rel holds space-separated relation types (RFC 8288 3.3): the context one among them
    still names the @context, and relation types compare without regard to case."""
    rel = "alternate HTTP://www.w3.org/ns/json-ld#context"
    header = {"Link": f'<http://127.0.0.1:1/x.jsonld>; rel="{rel}"'}
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor"}, headers=header)
    problem(resp, 503, "LdContextNotAvailable")


async def test_ld_json_with_link_header_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{BASE}/entities",
        json={**sensor(), "@context": CORE},
        headers={"Content-Type": JSONLD, "Link": link(CORE)},
    )
    problem(resp, 400, "BadRequestData")


async def test_inline_context_with_bad_shape_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{BASE}/entities", json={**sensor(), "@context": 42}, headers={"Content-Type": JSONLD}
    )
    problem(resp, 400, "BadRequestData")


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """A server that accepts connections and never answers; the accepted sockets are kept
    (and counted) until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    finally:
        listener.close()
        for conn in held:
            conn.close()


async def test_a_batch_fetches_its_contexts_together_within_one_timeout(
    tmp_path: Path, context_server: ContextServer, silent_server: tuple[str, list[socket.socket]]
) -> None:
    """One after another, each silent @context cost a whole timeout (20 took 60 s). Now a
    batch fetches at most BATCH_FETCHES at once and gives up on the rest when the timeout
    ends: those items fail alone, and no more connections are made."""
    base, held = silent_server
    app = create_app(Settings(db=str(tmp_path / "hub.db"), context_timeout=2.0))
    silent = [
        {**sensor(), "id": f"urn:ngsi-ld:Sensor:s{i}", "@context": f"{base}/c{i}.jsonld"}
        for i in range(3 * BATCH_FETCHES)
    ]
    good = {**sensor(), "@context": context_server.url("/ctx/batch.jsonld")}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as client:
        resp = await client.post(
            f"{BASE}/entityOperations/create",
            json=[good, *silent],
            headers={"Content-Type": JSONLD},
        )
    app.state.store.close()
    assert resp.status_code == 207, resp.text
    body = resp.json()
    assert body["success"] == [EID]
    assert len(body["errors"]) == len(silent)
    assert {e["error"]["type"].rsplit("/", 1)[-1] for e in body["errors"]} == {
        "LdContextNotAvailable"
    }
    assert len(held) <= BATCH_FETCHES + 1, "the rest were never asked for"


async def test_link_headers_name_at_most_one_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    """Two JSON-LD context links (in one header or two) are an error (JSON-LD 1.1 API 9.4.1,
    "multiple context link headers"); the first used to win silently. Other links are
    ignored, and a context URL may hold a comma."""
    await create(client, sensor())
    first, second = context_server.url("/ctx/one.jsonld"), context_server.url("/ctx/two.jsonld")
    for headers in (
        [("Link", f"{link(first)}, {link(second)}")],
        [("Link", link(first)), ("Link", link(second))],
    ):
        resp = await client.get(f"{BASE}/entities/{EID}", headers=headers)
        problem(resp, 400, "BadRequestData")
    other = f'<{context_server.url("/page2")}>; rel="next"'
    comma = context_server.url("/ctx/a,b.jsonld")
    resp = await client.get(
        f"{BASE}/entities/{EID}", headers=[("Link", other), ("Link", link(comma))]
    )
    assert resp.status_code == 200, resp.text
    assert context_server.hits["/ctx/a,b.jsonld"] == 1


@pytest.mark.parametrize("path", ["/jsonldContexts", "/jsonldContexts/"])
async def test_delete_on_the_collection_is_405(client: httpx.AsyncClient, path: str) -> None:
    """The collection cannot be deleted, with or without the trailing slash (not 404, which
    would say a context named '' was missing)."""
    problem(await client.delete(BASE + path), 405, "MethodNotAllowed")
    resp = await client.get(f"{BASE}/jsonldContexts")
    assert resp.status_code == 200 and resp.json(), resp.text


@pytest.mark.parametrize(
    "context",
    ["x", {"a": 5}, {"@vocab": 5}, {"a": {"@id": 5}}, ["https://ok.example/ctx.jsonld", 7]],
)
async def test_a_body_context_that_is_no_context_is_400(
    client: httpx.AsyncClient, context: Any
) -> None:
    """A relative reference was a 503 (as if unreachable), and a term mapped to 5 was
    ignored, its attribute landing in the default vocabulary; nothing is stored."""
    body = {"id": "urn:ngsi-ld:Bin:bc", "type": "Bin", "a": 1, "@context": context}
    resp = await client.post(
        f"{BASE}/entities", content=json.dumps(body), headers={"Content-Type": JSONLD}
    )
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Bin:bc"), 404)


async def test_deleting_a_context_a_subscription_names_keeps_the_subscription_working(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    url = await host(client)
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Probe"}],
        "watchedAttributes": ["temp"],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    resp = await client.post(f"{BASE}/subscriptions", json=sub, headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    sid = resp.headers["location"].rsplit("/", 1)[-1]
    local_id = url.rsplit("/", 1)[-1]
    assert (await client.delete(f"{CTX}/{local_id}")).status_code == 204
    problem(await client.get(f"{CTX}/{local_id}"), 404, "ResourceNotFound")
    assert url not in (await client.get(CTX)).json()
    problem(
        await client.get(f"{BASE}/entities", params={"type": "Probe"}, headers={"Link": link(url)}),
        503,
        "LdContextNotAvailable",
    )
    app2: Starlette = create_app(Settings(db=str(db_path)))  # a restart
    compiled = app2.state.notifier.get("", sid)
    assert compiled is not None, "the subscription compiles with the context it was made with"
    assert compiled.watched == {VOCAB + "temperature"}, compiled.watched
    transport = httpx.ASGITransport(app=app2)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c2:
        problem(await c2.get(f"{CTX}/{local_id}"), 404, "ResourceNotFound")
        assert (await c2.get(f"{BASE}/subscriptions/{sid}")).status_code == 200

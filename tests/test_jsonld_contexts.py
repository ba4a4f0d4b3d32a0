"""/jsonldContexts (clause 5.13): hosted, cached and implicitly created @contexts, their
details and usage counts, deletion and reload, and remote fetching (once, bounded, 503).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from cityhub.api.app import create_app
from cityhub.api.contexts import implicit_context
from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.errors import LdContextNotAvailable
from cityhub.settings import Settings
from conftest import BASE, CORE, free_port, link, problem

CTX = f"{BASE}/jsonldContexts"
HUB = "http://hub"
VOCAB = "https://terms.example.org/"
DETAIL_KEYS = {"URL", "localId", "kind", "createdAt", "lastUsage", "numberOfHits", "extraInfo"}
DOC_A: dict[str, Any] = {"@context": {"Lamp": VOCAB + "Lamp", "lux": VOCAB + "lux"}}
DOC_B: dict[str, Any] = {"@context": {"Lamp": VOCAB + "Lamp", "lumen": VOCAB + "lux"}}
LD_TYPE = "application/ld+json"
LD = {"Content-Type": LD_TYPE}
TIMEOUT = 0.5  # the hub's @context timeout in the tests about timing out, in seconds
PATIENT = 5.0  # the timeout elsewhere, so a loaded machine does not turn a fetch into a 503


# -- a controllable remote @context server -----------------------------------------------------


class Remote:
    """A stdlib HTTP server on 127.0.0.1 whose documents, delays and outages tests set.

    GET /<name> answers ``docs[name]`` as JSON-LD (404 when absent), after ``delays[name]``
    seconds; while ``down`` is true every request gets a 503. ``hits`` counts requests per path.
    """

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}
        self.delays: dict[str, float] = {}
        self.down = False
        self.hits: Counter[str] = Counter()
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                remote.hits[name] += 1
                time.sleep(remote.delays.get(name, 0.0))
                if remote.down:
                    self._send(503, b'{"error": "down"}')
                elif name in remote.docs:
                    self._send(200, json.dumps(remote.docs[name]).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/ld+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the hub gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._names = 0

    def serve(self, doc: Any = DOC_A, delay: float = 0.0) -> tuple[str, str]:
        """Publish doc under a fresh name; its (URL, name)."""
        self._names += 1
        name = f"ctx-{self._names}.jsonld"
        self.docs[name] = doc
        self.delays[name] = delay
        return f"{self.base}/{name}", name


@pytest.fixture(scope="module")
def remote_server() -> Iterator[Remote]:
    server = Remote()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def remote(remote_server: Remote) -> Iterator[Remote]:
    remote_server.down = False
    yield remote_server
    remote_server.down = False


@pytest.fixture
def hub_app(tmp_path: Path) -> Starlette:
    return create_app(Settings(db=str(tmp_path / "hub.db"), context_timeout=PATIENT))


@pytest.fixture
async def hub(hub_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hub_app)
    async with httpx.AsyncClient(transport=transport, base_url=HUB) as client:
        yield client
    hub_app.state.store.close()


# -- helpers -------------------------------------------------------------------------------------


def lamp(n: int = 1) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp", "lux": {"type": "Property", "value": n}}


async def add(hub: httpx.AsyncClient, doc: Any = DOC_A) -> str:
    """Host doc; its local id (checking the 201, the Location path and the empty body)."""
    resp = await hub.post(CTX, json=doc)
    assert resp.status_code == 201, resp.text
    assert resp.content == b""
    location = resp.headers["location"]
    assert location.startswith(f"{CTX}/"), location
    return location.rsplit("/", 1)[-1]


async def details(hub: httpx.AsyncClient, ident: str) -> dict[str, Any]:
    resp = await hub.get(f"{CTX}/{quote(ident, safe='')}", params={"details": "true"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    assert set(body) <= DETAIL_KEYS, body
    datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    return body


async def listing(hub: httpx.AsyncClient, **params: str) -> Any:
    resp = await hub.get(CTX, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


# -- hosted @contexts ----------------------------------------------------------------------------


async def test_hosted_context_add_serve_list_delete(hub: httpx.AsyncClient) -> None:
    local_id = await add(hub)
    url = f"{HUB}{CTX}/{local_id}"
    resp = await hub.get(f"{CTX}/{local_id}")
    assert resp.status_code == 200 and resp.json() == DOC_A, resp.text
    assert resp.headers["content-type"] == "application/json"
    meta = await details(hub, local_id)
    assert meta["URL"] == url and meta["localId"] == local_id and meta["kind"] == "Hosted", meta
    assert url in await listing(hub)
    assert await listing(hub, kind="Hosted") == [url]
    assert url not in await listing(hub, kind="Cached")
    assert await listing(hub, kind="ImplicitlyCreated") == []
    [entry] = await listing(hub, details="true", kind="Hosted")
    assert entry["URL"] == url and entry["kind"] == "Hosted", entry
    assert (await hub.delete(f"{CTX}/{local_id}")).status_code == 204
    problem(await hub.get(f"{CTX}/{local_id}"), 404, "ResourceNotFound")
    problem(await hub.delete(f"{CTX}/{local_id}"), 404, "ResourceNotFound")
    assert await listing(hub, kind="Hosted") == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"A1": "urn:a1"}, "InvalidRequest"),
        ([{"@context": {}}], "InvalidRequest"),
        ({"@context": 7}, "BadRequestData"),
        ({"@context": True}, "BadRequestData"),
        ({"@context": None}, "BadRequestData"),
        ({"@context": ["https://ex.org/a.jsonld", 3]}, "BadRequestData"),
        ({"@context": [["https://ex.org/a.jsonld"]]}, "BadRequestData"),
        ({"@context": "relative/ctx.jsonld"}, "BadRequestData"),
        ({"@context": {"A1": 5}}, "BadRequestData"),
        ({"@context": {"A1": {"@id": 5}}}, "BadRequestData"),
    ],
    ids=[
        "no-member",
        "array-body",
        "number",
        "boolean",
        "null",
        "number-item",
        "nested-array",
        "relative-iri",
        "number-term",
        "number-id",
    ],
)
async def test_add_invalid_context_is_400(hub: httpx.AsyncClient, body: Any, error: str) -> None:
    resp = await hub.post(CTX, json=body)
    problem(resp, 400, error)
    assert "location" not in resp.headers
    assert await listing(hub, kind="Hosted") == []


async def test_add_needs_json(hub: httpx.AsyncClient) -> None:
    bad = await hub.post(
        CTX, content=b'{"@context": {', headers={"Content-Type": "application/json"}
    )
    problem(bad, 400, "InvalidRequest")
    text = await hub.post(CTX, content=b"{}", headers={"Content-Type": "text/plain"})
    problem(text, 415)


async def test_hosted_context_in_a_link_header_under_any_host_name(
    hub: httpx.AsyncClient,
) -> None:
    local_id = await add(hub)
    # The hub resolves its own contexts without a request to itself, whatever host name the
    # client used (here one that does not resolve at all).
    url = f"http://hub.invalid:9/ngsi-ld/v1/jsonldContexts/{local_id}"
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    body = (await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1")).json()
    assert body["type"] == VOCAB + "Lamp" and VOCAB + "lux" in body, body


async def test_hosted_contexts_survive_a_restart(
    hub: httpx.AsyncClient, hub_app: Starlette, tmp_path: Path
) -> None:
    local_id = await add(hub)
    before = await details(hub, local_id)
    implicit_url = implicit_context(_request(hub_app), ["https://ex.org/a.jsonld", {"x": "urn:x"}])
    app2 = create_app(Settings(db=str(tmp_path / "hub.db"), context_timeout=PATIENT))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app2), base_url=HUB) as c2:
        resp = await c2.get(f"{CTX}/{local_id}")
        assert resp.status_code == 200 and resp.json() == DOC_A, resp.text
        after = await details(c2, local_id)
        assert after["kind"] == "Hosted" and after["URL"] == before["URL"], after
        assert after["createdAt"] == before["createdAt"], (before, after)
        assert await listing(c2, kind="ImplicitlyCreated") == [implicit_url]
    app2.state.store.close()


# -- the core @context ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["", "-v1.6", "-v1.8"])
async def test_core_context_is_served_and_listed(hub: httpx.AsyncClient, version: str) -> None:
    url = f"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context{version}.jsonld"
    resp = await hub.get(f"{CTX}/{quote(url, safe='')}")
    assert resp.status_code == 200 and "@vocab" in resp.json()["@context"], resp.text
    assert (await details(hub, url))["kind"] == "Cached"
    assert CORE in await listing(hub, kind="Cached")


async def test_core_context_cannot_be_deleted_but_reloads(hub: httpx.AsyncClient) -> None:
    path = f"{CTX}/{quote(CORE, safe='')}"
    problem(await hub.delete(path), 400, "BadRequestData")
    problem(await hub.delete(path, params={"reload": "false"}), 400, "BadRequestData")
    assert (await hub.delete(path, params={"reload": "true"})).status_code == 204
    assert CORE in await listing(hub)


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "other"},
        {"details": "other"},
        {"details": "other", "kind": "other"},
        {"details": "true", "kind": "other"},
        {"details": "other", "kind": "Hosted"},
        {"kind": "hosted"},
    ],
)
async def test_list_with_bad_parameters_is_400(
    hub: httpx.AsyncClient, params: dict[str, str]
) -> None:
    problem(await hub.get(CTX, params=params), 400, "BadRequestData")


async def test_unknown_parameters_are_400_and_change_nothing(hub: httpx.AsyncClient) -> None:
    # a misspelt reload deleted the context instead of reloading it; a misspelt details
    # answered the plain list
    local_id = await add(hub)
    for method, path, params in [
        ("GET", CTX, {"detail": "true"}),
        ("GET", CTX, {"limit": "1"}),
        ("POST", CTX, {"kind": "Hosted"}),
        ("GET", f"{CTX}/{local_id}", {"kind": "Hosted"}),
        ("DELETE", f"{CTX}/{local_id}", {"relaod": "true"}),
    ]:
        body = DOC_A if method == "POST" else None
        resp = await hub.request(method, path, params=params, json=body)
        problem(resp, 400, "InvalidRequest")
    assert await listing(hub, kind="Hosted") == [f"{HUB}{CTX}/{local_id}"]


async def test_delete_rules(hub: httpx.AsyncClient) -> None:
    problem(await hub.delete(f"{CTX}/no-such-id"), 404, "ResourceNotFound")
    problem(await hub.delete(f"{CTX}/no-such-id", params={"reload": "false"}), 404)
    problem(await hub.delete(f"{CTX}/no-such-id", params={"reload": "true"}), 400)
    problem(await hub.delete(f"{CTX}/no-such-id", params={"reload": "xxx"}), 400)
    unknown = quote("https://unknown.example/ctx.jsonld", safe="")
    problem(await hub.delete(f"{CTX}/{unknown}", params={"reload": "true"}), 404)
    local_id = await add(hub)
    problem(await hub.delete(f"{CTX}/{local_id}", params={"reload": "true"}), 400, "BadRequestData")
    problem(await hub.delete(f"{CTX}/{local_id}", params={"reload": "maybe"}), 400)
    assert (await hub.delete(f"{CTX}/{local_id}", params={"reload": "false"})).status_code == 204


# -- remote (cached) @contexts -------------------------------------------------------------------


async def test_remote_context_is_fetched_once_and_listed_as_cached(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    url, name = remote.serve()
    for n in range(1, 4):
        resp = await hub.post(f"{BASE}/entities", json=lamp(n), headers={"Link": link(url)})
        assert resp.status_code == 201, resp.text
    resp = await hub.get(f"{BASE}/entities", params={"type": "Lamp"}, headers={"Link": link(url)})
    assert len(resp.json()) == 3, resp.text
    assert remote.hits[name] == 1, f"fetched {remote.hits[name]} times"
    assert url in await listing(hub, kind="Cached")
    meta = await details(hub, url)
    assert meta["kind"] == "Cached" and meta["URL"] == url, meta
    by_id = await hub.get(f"{CTX}/{meta['localId']}")
    by_url = await hub.get(f"{CTX}/{quote(url, safe='')}")
    assert by_id.json() == by_url.json() == DOC_A
    assert remote.hits[name] == 1


async def test_concurrent_requests_share_one_download(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    url, name = remote.serve(delay=0.2)
    responses = await asyncio.gather(
        *(hub.post(f"{BASE}/entities", json=lamp(n), headers={"Link": link(url)}) for n in range(6))
    )
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert remote.hits[name] == 1, f"fetched {remote.hits[name]} times"


async def test_nested_remote_contexts_are_cached_too(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    inner, inner_name = remote.serve()
    outer, _ = remote.serve({"@context": [inner, {"extra": VOCAB + "extra"}]})
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(outer)})
    assert resp.status_code == 201, resp.text
    assert {inner, outer} <= set(await listing(hub, kind="Cached"))
    assert remote.hits[inner_name] == 1


async def test_number_of_hits_and_last_usage(hub: httpx.AsyncClient, remote: Remote) -> None:
    # Every request that uses a context counts one hit, and so does serving it; the details
    # show the count from before the request that asks for them.
    local_id = await add(hub)
    first = await details(hub, local_id)
    assert first["numberOfHits"] == 0 and "lastUsage" not in first, first
    resp = await hub.post(
        f"{BASE}/entities", json=lamp(), headers={"Link": link(f"{HUB}{CTX}/{local_id}")}
    )
    assert resp.status_code == 201, resp.text
    second = await details(hub, local_id)
    assert second["numberOfHits"] == 2 and second["lastUsage"] >= second["createdAt"], second

    url, _ = remote.serve()
    await hub.post(f"{BASE}/entities", json=lamp(2), headers={"Link": link(url)})
    assert (await details(hub, url))["numberOfHits"] == 1
    await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:2", headers={"Link": link(url)})
    assert (await details(hub, url))["numberOfHits"] == 3
    # a HEAD is answered without the document: no use of the context
    assert (await hub.head(f"{CTX}/{local_id}")).status_code == 200
    assert (await details(hub, local_id))["numberOfHits"] == 3


async def test_unreachable_context_is_503_fast(
    hub: httpx.AsyncClient, hub_app: Starlette, remote: Remote
) -> None:
    hub_app.state.contexts.timeout = TIMEOUT
    closed = f"http://127.0.0.1:{free_port()}/ctx.jsonld"
    slow, _ = remote.serve(delay=5.0)
    for url in (closed, slow):
        started = time.monotonic()
        resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
        elapsed = time.monotonic() - started
        problem(resp, 503, "LdContextNotAvailable")
        assert elapsed < TIMEOUT + 1.0, f"{url} took {elapsed:.2f}s"
        assert url not in await listing(hub)
    problem(await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1"), 404, "ResourceNotFound")


@pytest.mark.parametrize(
    "doc",
    [{"no": "context"}, {"@context": 5}, ["@context"], {"@context": ["relative.jsonld"]}],
    ids=["no-member", "number", "array", "relative-import"],
)
async def test_remote_document_without_a_valid_context_is_503(
    hub: httpx.AsyncClient, remote: Remote, doc: Any
) -> None:
    url, _ = remote.serve(doc)
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    problem(resp, 503, "LdContextNotAvailable")


async def test_hosted_context_naming_an_unreachable_one_is_503(hub: httpx.AsyncClient) -> None:
    closed = f"http://127.0.0.1:{free_port()}/ctx.jsonld"
    problem(await hub.post(CTX, json={"@context": [closed]}), 503, "LdContextNotAvailable")
    assert await listing(hub, kind="Hosted") == []


async def test_hosted_context_naming_remote_ones_caches_them(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    url, _ = remote.serve()
    local_id = await add(hub, {"@context": [url]})
    assert url in await listing(hub, kind="Cached")
    assert (await details(hub, local_id))["kind"] == "Hosted"
    resp = await hub.post(
        f"{BASE}/entities", json=lamp(), headers={"Link": link(f"{HUB}{CTX}/{local_id}")}
    )
    assert resp.status_code == 201, resp.text
    assert VOCAB + "lux" in (await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1")).json()


async def test_reload_fetches_again_and_a_failed_one_keeps_the_copy(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    url, name = remote.serve(DOC_A)
    await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    path = f"{CTX}/{quote(url, safe='')}"
    remote.docs[name] = DOC_B
    assert (await hub.delete(path, params={"reload": "true"})).status_code == 204
    assert remote.hits[name] == 2
    assert (await hub.get(path)).json() == DOC_B
    # the reloaded terms are the ones in use
    body = await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1", headers={"Link": link(url)})
    assert "lumen" in body.json(), body.text

    remote.down = True
    problem(await hub.delete(path, params={"reload": "true"}), 503, "LdContextNotAvailable")
    assert (await details(hub, url))["kind"] == "Cached"
    assert (await hub.get(path)).json() == DOC_B
    assert (await hub.delete(path)).status_code == 204
    problem(await hub.get(path), 404, "ResourceNotFound")


async def test_deleted_cached_context_is_fetched_again_when_used(
    hub: httpx.AsyncClient, remote: Remote
) -> None:
    url, name = remote.serve()
    await hub.post(f"{BASE}/entities", json=lamp(1), headers={"Link": link(url)})
    assert (await hub.delete(f"{CTX}/{quote(url, safe='')}")).status_code == 204
    assert url not in await listing(hub)
    resp = await hub.post(f"{BASE}/entities", json=lamp(2), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    assert remote.hits[name] == 2


async def test_only_the_context_member_of_a_fetched_document_is_kept_and_served(
    hub: httpx.AsyncClient, hub_app: Starlette, remote: Remote
) -> None:
    url, _ = remote.serve({**DOC_A, "db_password": "hunter2", "internal": {"x": 1}})
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    local_id = (await details(hub, url))["localId"]
    for ident in (local_id, quote(url, safe="")):
        assert (await hub.get(f"{CTX}/{ident}")).json() == DOC_A
    stored = {u: doc for u, doc, _kind, _at in hub_app.state.store.contexts()}
    assert stored[url] == DOC_A, "nothing else of the document is stored either"


async def test_a_copy_stored_whole_before_is_served_as_its_context_only(tmp_path: Path) -> None:
    url = "https://contexts.invalid/old.jsonld"
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    app.state.store.put_context(url, {**DOC_A, "db_password": "hunter2"}, "Cached")
    app.state.store.close()
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HUB) as c:
        assert (await c.get(f"{CTX}/{quote(url, safe='')}")).json() == DOC_A
    app.state.store.close()


@pytest.mark.parametrize(
    "doc",
    [{"@context": {"hunter2": 5}}, {"@context": {"@vocab": "hunter2/"}}, {"@context": "hunter2"}],
    ids=["term", "vocab", "relative"],
)
async def test_a_refused_remote_document_is_not_quoted_in_the_answer(
    hub: httpx.AsyncClient, remote: Remote, doc: Any
) -> None:
    url, _ = remote.serve(doc)
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    body = problem(resp, 503, "LdContextNotAvailable")
    assert "hunter2" not in resp.text and "not a valid JSON-LD @context" in body["detail"], body


async def test_an_unreachable_context_says_so_and_nothing_of_the_connection(
    hub: httpx.AsyncClient,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/ctx.jsonld"
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(closed)})
    body = problem(resp, 503, "LdContextNotAvailable")
    assert body["detail"] == f"@context {closed} is not reachable", body


async def test_a_fragment_makes_no_other_context(hub: httpx.AsyncClient, remote: Remote) -> None:
    # The hub's own /entities/{id}#k1..#k1000 were 1,000 contexts, enough to flush the cache.
    url, name = remote.serve()
    for n, frag in enumerate(("#a", "#b", "")):
        resp = await hub.post(f"{BASE}/entities", json=lamp(n), headers={"Link": link(url + frag)})
        assert resp.status_code == 201, resp.text
    assert remote.hits[name] == 1
    cached = await listing(hub, kind="Cached")
    assert url in cached and not any(u.startswith(url + "#") for u in cached), cached
    assert (await details(hub, url + "#c"))["numberOfHits"] == 3


async def test_a_flood_of_new_contexts_leaves_others_their_stored_copies(
    hub: httpx.AsyncClient, hub_app: Starlette, remote: Remote
) -> None:
    # Probe 1, finding 6: 11 requests naming 100 new URLs each evicted a tenant's context and
    # its stored copy; with its site down, that tenant's requests were 503.
    hub_app.state.contexts.max_cached = 5  # 1,000 in production
    victim, name = remote.serve()
    for n in range(2):
        resp = await hub.post(f"{BASE}/entities", json=lamp(n), headers={"Link": link(victim)})
        assert resp.status_code == 201, resp.text
    del remote.docs[name]  # the victim's site goes down (404)
    flood = [remote.serve({"@context": {f"t{i}": f"{VOCAB}t{i}"}})[0] for i in range(12)]
    for start in range(0, len(flood), 3):
        for _ in range(2):  # used twice each, not merely fetched once
            body = {"type": "Query", "entities": [{"type": "X"}], "@context": flood[start:][:3]}
            resp = await hub.post(f"{BASE}/entityOperations/query", json=body, headers=LD)
            assert resp.status_code == 200, resp.text
    assert hub_app.state.contexts.document(victim) is None, "it left memory"
    resp = await hub.get(
        f"{BASE}/entities", params={"type": "Lamp"}, headers={"Link": link(victim)}
    )
    assert resp.status_code == 200 and len(resp.json()) == 2, resp.text
    assert (await hub.get(f"{CTX}/{quote(victim, safe='')}")).json() == DOC_A


# -- implicitly created @contexts ----------------------------------------------------------------


async def test_implicitly_created_context(hub: httpx.AsyncClient, hub_app: Starlette) -> None:
    spec = [{"Lamp": VOCAB + "Lamp"}, CORE]
    url = implicit_context(_request(hub_app), spec)
    assert implicit_context(_request(hub_app), spec) == url, "equal contexts share one entry"
    assert await listing(hub, kind="ImplicitlyCreated") == [url]
    local_id = url.rsplit("/", 1)[-1]
    assert (await hub.get(f"{CTX}/{local_id}")).json() == {"@context": spec}
    meta = await details(hub, local_id)
    assert meta["kind"] == "ImplicitlyCreated" and meta["URL"] == url, meta
    resp = await hub.post(f"{BASE}/entities", json=lamp(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    assert (await hub.get(f"{BASE}/entities/urn:ngsi-ld:Lamp:1")).json()["type"] == VOCAB + "Lamp"
    problem(await hub.delete(f"{CTX}/{local_id}", params={"reload": "true"}), 400)
    assert (await hub.delete(f"{CTX}/{local_id}")).status_code == 204
    assert await listing(hub, kind="ImplicitlyCreated") == []


async def test_a_subscription_with_a_compound_context_names_an_implicit_one(
    hub: httpx.AsyncClient,
) -> None:
    """A subscription created with an inline or multi-part @context gets a jsonldContext: the
    URL of an ImplicitlyCreated context holding that @context (5.13); one given keeps its own,
    and a single URL needs none."""
    spec = [{"Lamp": VOCAB + "Lamp"}, CORE]
    sub = {
        "id": "urn:ngsi-ld:Subscription:compound",
        "type": "Subscription",
        "entities": [{"type": "Lamp"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        "@context": spec,
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=sub, headers=LD)
    assert resp.status_code == 201, resp.text
    got = await hub.get(f"{BASE}/subscriptions/{sub['id']}", headers={"Accept": LD_TYPE})
    url = got.json()["jsonldContext"]
    assert await listing(hub, kind="ImplicitlyCreated") == [url]
    local_id = url.rsplit("/", 1)[-1]
    # made by the hub, loaded by its notifier: no client has used it yet
    assert (await details(hub, local_id))["numberOfHits"] == 0
    assert (await hub.get(f"{CTX}/{local_id}")).json() == {"@context": spec}

    single = {**sub, "id": "urn:ngsi-ld:Subscription:single", "@context": [CORE]}
    assert (await hub.post(f"{BASE}/subscriptions", json=single, headers=LD)).status_code == 201
    got = await hub.get(f"{BASE}/subscriptions/{single['id']}")
    assert "jsonldContext" not in got.json()


# -- the cache on its own ------------------------------------------------------------------------


async def test_oversized_remote_context_is_refused(remote: Remote) -> None:
    url, _ = remote.serve({"@context": {f"t{i}": f"urn:t{i}" for i in range(100)}})
    cache = ContextCache(timeout=TIMEOUT, max_bytes=500)
    with pytest.raises(LdContextNotAvailable, match="larger than"):
        await cache.prefetch(url)
    assert cache.document(url) is None


async def test_stale_copy_is_kept_when_a_refresh_fails(remote: Remote) -> None:
    url, name = remote.serve()
    cache = ContextCache(timeout=TIMEOUT, ttl=0.05)
    await cache.prefetch(url)
    await asyncio.sleep(0.1)
    remote.down = True
    await cache.prefetch(url)  # expired, refresh fails: the stale copy still serves
    assert cache.document(url) == DOC_A
    assert cache.compile(url).expand("lux") == VOCAB + "lux"
    assert remote.hits[name] == 2


# -- helpers -------------------------------------------------------------------------------------


def _request(app: Starlette) -> Request:
    """A bare request on the app, as an endpoint would see it."""
    scope = {
        "type": "http",
        "app": app,
        "scheme": "http",
        "server": ("hub", 80),
        "method": "POST",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"hub")],
    }
    return Request(scope)

"""Shared fixtures for the HTTP API tests: an in-process app + client, and a local @context server.

Helpers (``problem``, ``link``, constants) live here too; test modules import them with
``from conftest import ...`` (pytest puts this directory on sys.path).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.settings import Settings
from receivers import Receiver, ServerThread

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
JSONLD = "application/ld+json"

# The vocabulary every test @context served by the local server defines.
VOCAB = "https://vocab.example.org/"
TEST_CONTEXT: dict[str, Any] = {
    "@context": {
        "ex": VOCAB,
        "Sensor": "ex:Sensor",
        "Room": "ex:Room",
        "temperature": "ex:temperature",
        "humidity": "ex:humidity",
        "label": "ex:label",
        "isIn": {"@id": "ex:isIn", "@type": "@id"},
    }
}


def link(url: str) -> str:
    """A Link header value naming a JSON-LD @context."""
    return f"<{url}>; {LINK_REL}"


def problem(resp: httpx.Response, status: int, kind: str | None = None) -> dict[str, Any]:
    """Assert resp is a ProblemDetails error of the given status (and NGSI-LD error type)."""
    assert resp.status_code == status, (
        f"expected HTTP {status} {kind or ''}, got {resp.status_code}: {resp.text[:500]}"
    )
    try:
        body = resp.json()
    except ValueError:  # pragma: no cover - only on failure
        raise AssertionError(f"error body is not JSON: {resp.text[:300]!r}") from None
    assert isinstance(body, dict), f"ProblemDetails must be an object, got {body!r}"
    for key in ("type", "title", "status"):
        assert key in body, f"ProblemDetails lacks {key!r}: {body}"
    assert body["status"] == status, f"ProblemDetails status {body['status']} != HTTP {status}"
    assert isinstance(body["title"], str) and body["title"], f"empty title: {body}"
    assert body["type"].startswith(ERRORS), f"error type is not an NGSI-LD error URI: {body}"
    if kind is not None:
        assert body["type"] == ERRORS + kind, f"expected error {kind}, got {body['type']}: {body}"
    return body


def bad_request(resp: httpx.Response) -> dict[str, Any]:
    """Assert a 400 for a malformed request (NGSI-LD uses InvalidRequest or BadRequestData)."""
    body = problem(resp, 400)
    kind = body["type"].rsplit("/", 1)[-1]
    assert kind in ("InvalidRequest", "BadRequestData"), body
    return body


# -- the app under test --------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's hub keeps its SQLite database."""
    return tmp_path / "hub.db"


@pytest.fixture
def app(db_path: Path) -> Starlette:
    """A fresh hub on its own database (short @context timeout keeps failure tests fast)."""
    return create_app(Settings(db=str(db_path), context_timeout=2.0))


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        yield c
    app.state.store.close()


@pytest.fixture
async def hub(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The in-process hub for notification tests: its notifier is stopped cleanly at the end."""
    yield client
    await app.state.notifier.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerThread]:
    """Notification receivers (real HTTP servers on their own thread) for one test module."""
    threads = ServerThread()
    yield threads
    threads.close()


@pytest.fixture
def receiver(servers: ServerThread) -> Receiver:
    """A fresh recording notification receiver."""
    return servers.receiver()


class SyncHub:
    """One in-process hub on its own event loop, so that synchronous code (hypothesis's
    examples) can call it."""

    def __init__(self, db: Path, **settings: Any) -> None:
        self.db = db
        self.loop = asyncio.new_event_loop()
        self.app = create_app(Settings(db=str(db), **settings))
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://hub")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Send one request, wait for its answer, and give background work a few turns."""
        resp = self.loop.run_until_complete(self.client.request(method, url, **kw))
        self.loop.run_until_complete(asyncio.sleep(0.001))
        return resp

    def close(self) -> None:
        """Stop the client, the notifier and the store, then the loop."""
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.notifier.close())
        self.app.state.store.close()
        self.loop.close()


# -- a local @context server ----------------------------------------------------------------


@dataclass
class ContextServer:
    """A stdlib HTTP server on 127.0.0.1 serving JSON-LD @context documents.

    GET /ctx/<anything>.jsonld  -> TEST_CONTEXT (each path counted in ``hits``)
    GET /nested/<anything>      -> a context that imports /ctx/<anything>.jsonld by URL
    GET /notjson                -> 200 with a non-JSON body
    GET /nocontext              -> 200 JSON without an @context member
    anything else               -> 404
    """

    base: str
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        """The absolute URL of a path on this server."""
        return self.base + path


def _handler(server: ContextServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.hits[self.path] += 1
            if self.path.startswith("/ctx/"):
                self._send(200, json.dumps(TEST_CONTEXT).encode(), JSONLD)
            elif self.path.startswith("/nested/"):
                name = self.path.rsplit("/", 1)[-1]
                doc = {"@context": [server.url(f"/ctx/{name}.jsonld"), {"extra": "ex:extra"}]}
                self._send(200, json.dumps(doc).encode(), JSONLD)
            elif self.path == "/notjson":
                self._send(200, b"<html>not json</html>", "text/html")
            elif self.path == "/nocontext":
                self._send(200, b'{"hello": "world"}', "application/json")
            else:
                self._send(404, b'{"error": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, media: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture(scope="session")
def context_server() -> Iterator[ContextServer]:
    """The local @context server, shared by the whole session (random free port)."""
    holder = ContextServer(base="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(holder))
    holder.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def closed_url() -> str:
    """A context URL on a port with no listener: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/context.jsonld"


# -- small request helpers ------------------------------------------------------------------


async def create(
    client: httpx.AsyncClient, entity: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST an entity as application/json and assert it was created."""
    resp = await client.post(f"{BASE}/entities", json=entity, headers=headers)
    assert resp.status_code == 201, (
        f"create {entity.get('id')} failed: {resp.status_code} {resp.text}"
    )
    return resp


async def get_entity(
    client: httpx.AsyncClient,
    eid: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """GET one entity and assert 200."""
    resp = await client.get(f"{BASE}/entities/{eid}", params=params, headers=headers)
    assert resp.status_code == 200, f"GET {eid} failed: {resp.status_code} {resp.text}"
    body: dict[str, Any] = resp.json()
    return body


async def get_temporal(client: httpx.AsyncClient, eid: str, **params: str) -> dict[str, Any]:
    """GET one temporal entity and assert 200."""
    resp = await client.get(f"{BASE}/temporal/entities/{eid}", params=params)
    assert resp.status_code == 200, f"GET temporal {params}: {resp.status_code} {resp.text}"
    body: dict[str, Any] = resp.json()
    return body


def instance_values(body: dict[str, Any], attr: str) -> list[Any]:
    """The values of an attribute's instances in a temporal answer (one instance or a list)."""
    insts = body.get(attr, [])
    insts = insts if isinstance(insts, list) else [insts]
    return [i["value"] for i in insts]


# -- the discovery counts ------------------------------------------------------------------------


def type_attrs_from_docs(conn: Any) -> list[tuple[str, str, int, str, int]]:
    """What store/sqlite/typestats should hold, recounted from the stored documents in Python
    (an independent count: the store keeps its own as entities are written)."""
    nids = dict(conn.execute("SELECT name, nid FROM attr_names"))
    counts: Counter[tuple[str, str, int, str]] = Counter()
    for tenant, text in conn.execute("SELECT tenant, doc FROM entities"):
        doc = json.loads(text)
        for typ in doc["type"]:
            counts[(tenant, typ, 0, "")] += 1
        for name, instances in doc["attrs"].items():
            nid = nids[name]
            counts[(tenant, "", nid, "")] += len(instances)  # attributeCount: instances
            for kind in {i["type"] for i in instances}:
                for typ in doc["type"]:
                    counts[(tenant, typ, nid, kind)] += 1
    return sorted((*key, n) for key, n in counts.items())


def stored_type_attrs(conn: Any) -> list[tuple[str, str, int, str, int]]:
    """The discovery counts as the store holds them."""
    return sorted(conn.execute("SELECT tenant, type, nid, kind, n FROM type_attrs"))


def page_links(resp: httpx.Response) -> dict[str, str]:
    """rel -> URL of a response's prev/next Link headers."""
    out = {}
    for part in resp.headers.get("link", "").split(","):
        for rel in ("prev", "next"):
            if f'rel="{rel}"' in part:
                out[rel] = part.split(">", 1)[0].strip().lstrip("<")
    return out


async def walk_pages(
    client: httpx.AsyncClient, resp: httpx.Response
) -> tuple[list[str], httpx.Response]:
    """Follow next links from a first page: the ids of every page, and the last response
    (each later page links back to a previous one; the first does not)."""
    assert "prev" not in page_links(resp)
    seen = [e["id"] for e in resp.json()]
    while "next" in page_links(resp):
        resp = await client.get(page_links(resp)["next"])
        assert resp.status_code == 200, resp.text
        assert "prev" in page_links(resp)
        seen += [e["id"] for e in resp.json()]
    return seen, resp

"""A fetched @context is stored, so a restart while its site is down still understands it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import httpx

from cityhub.api.app import create_app
from cityhub.ngsild.context import ContextCache
from cityhub.settings import Settings

REMOTE = "https://contexts.invalid/city.jsonld"  # reached through a mirror file we control
LINK = {"Link": f'<{REMOTE}>; rel="http://www.w3.org/ns/json-ld#context"'}
LAMP = "https://city.example/Lamp"


@asynccontextmanager
async def hub(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """One hub process's life on the test's database (the remote site is the mirror file)."""
    settings = Settings(
        db=str(tmp_path / "hub.db"), context_mirrors={REMOTE: str(tmp_path / "city.jsonld")}
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client
    app.state.store.close()


def site(tmp_path: Path, lamp_iri: str | None) -> None:
    """Put the remote context up (with Lamp mapped to lamp_iri), or take it down (None)."""
    path = tmp_path / "city.jsonld"
    if lamp_iri is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(json.dumps({"@context": {"Lamp": lamp_iri}}))


async def lamp_type(client: httpx.AsyncClient) -> str | int:
    """The expanded type of urn:x:1 read with the remote context, or the status code."""
    resp = await client.get("/ngsi-ld/v1/entities", params={"type": "Lamp"}, headers=LINK)
    if resp.status_code != 200:
        return resp.status_code
    plain = await client.get("/ngsi-ld/v1/entities/urn:x:1")
    return str(plain.json()["type"])


async def test_a_restart_while_the_site_is_down_uses_the_stored_copy(tmp_path: Path) -> None:
    site(tmp_path, LAMP)
    async with hub(tmp_path) as c:
        body = {"id": "urn:x:1", "type": "Lamp"}
        assert (await c.post("/ngsi-ld/v1/entities", json=body, headers=LINK)).status_code == 201
    site(tmp_path, None)
    async with hub(tmp_path) as c:
        assert await lamp_type(c) == LAMP, "the stored copy stood in for the missing site"
        listed = await c.get("/ngsi-ld/v1/jsonldContexts", params={"kind": "Cached"})
        assert REMOTE in listed.json(), listed.text


async def test_a_changed_site_is_fetched_again_after_a_restart(tmp_path: Path) -> None:
    site(tmp_path, LAMP)
    async with hub(tmp_path) as c:
        body = {"id": "urn:x:1", "type": "Lamp"}
        assert (await c.post("/ngsi-ld/v1/entities", json=body, headers=LINK)).status_code == 201
    site(tmp_path, "https://city.example/v2/Lamp")
    async with hub(tmp_path) as c:  # the stored copy is expired: the new document wins
        resp = await c.get("/ngsi-ld/v1/entities", params={"type": "Lamp"}, headers=LINK)
        assert resp.json() == [], "Lamp now means v2/Lamp, which no entity has"
    site(tmp_path, None)
    async with hub(tmp_path) as c:  # and the new document is what was stored
        resp = await c.get("/ngsi-ld/v1/entities", params={"type": "Lamp"}, headers=LINK)
        assert resp.status_code == 200 and resp.json() == [], resp.text


async def test_deleting_a_cached_context_deletes_its_stored_copy(tmp_path: Path) -> None:
    site(tmp_path, LAMP)
    async with hub(tmp_path) as c:
        body = {"id": "urn:x:1", "type": "Lamp"}
        assert (await c.post("/ngsi-ld/v1/entities", json=body, headers=LINK)).status_code == 201
        resp = await c.delete(f"/ngsi-ld/v1/jsonldContexts/{quote(REMOTE, safe='')}")
        assert resp.status_code == 204, resp.text
    site(tmp_path, None)
    async with hub(tmp_path) as c:
        assert await lamp_type(c) == 503, "nothing of it was left to stand in"


def test_the_least_recently_used_fetched_context_goes_first(tmp_path: Path) -> None:
    urls = [f"https://contexts.invalid/{n}.jsonld" for n in "abc"]
    for n in "abc":
        (tmp_path / f"{n}.jsonld").write_text(json.dumps({"@context": {n: f"https://x/{n}"}}))
    mirrors = {url: str(tmp_path / f"{n}.jsonld") for n, url in zip("abc", urls, strict=True)}
    stored: set[str] = set()
    cache = ContextCache(
        mirrors=mirrors,
        max_cached=2,
        on_fetch=lambda e: stored.add(e.url),
        on_evict=lambda e: stored.discard(e.url),
    )
    a, b, c = urls

    async def use(url: str) -> None:
        await cache.prefetch(url)

    asyncio.run(use(a))
    asyncio.run(use(b))
    asyncio.run(use(a))  # a is now the more recently used
    asyncio.run(use(c))  # one must go: b
    assert cache.document(b) is None and cache.document(a) and cache.document(c)
    assert stored == {a, c}, "the evicted context's stored copy is deleted too"

"""A fetched @context is stored, so a restart while its site is down still understands it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.ngsild import context as ctxmod
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


class Copies:
    """The store's contexts table, as the cache's hooks see it."""

    def __init__(self) -> None:
        self.docs: dict[str, Any] = {}

    def cache(self, tmp_path: Path, names: str, **bounds: Any) -> tuple[ContextCache, list[str]]:
        """A cache whose remote sites are mirror files (one per letter of names)."""
        urls = [f"https://contexts.invalid/{n}.jsonld" for n in names]
        for n in names:
            (tmp_path / f"{n}.jsonld").write_text(json.dumps({"@context": {n: f"https://x/{n}"}}))
        cache = ContextCache(
            mirrors={
                url: str(tmp_path / f"{n}.jsonld") for n, url in zip(names, urls, strict=True)
            },
            on_fetch=lambda e: self.docs.__setitem__(e.url, e.document),
            on_evict=lambda e: self.docs.pop(e.url, None),
            on_recall=self.docs.get,
            **bounds,
        )
        return cache, urls


def use(cache: ContextCache, *urls: str) -> None:
    """One request using each URL in turn."""
    for url in urls:
        asyncio.run(cache.prefetch(url))


def test_a_context_that_leaves_memory_keeps_its_stored_copy(tmp_path: Path) -> None:
    # A flood of new URLs (probe 1, finding 6) pushed the victim's context out of memory and
    # deleted its stored copy with it: with its site down, the victim's requests were 503.
    copies = Copies()
    cache, (a, b, c, d) = copies.cache(tmp_path, "abcd", max_cached=2)
    use(cache, a, a)
    (tmp_path / "a.jsonld").unlink()  # its site goes down
    use(cache, b, b, c, c, d, d)  # each used twice: a is the least recently used
    assert cache.document(a) is None, "a left memory"
    assert set(copies.docs) == {a, b, c, d}, "its stored copy stayed"
    use(cache, a)  # not in memory, site down: read back from the stored copy
    assert cache.compile(a).expand("a") == "https://x/a"


def test_contexts_used_once_leave_memory_first(tmp_path: Path) -> None:
    cache, (a, b, c) = Copies().cache(tmp_path, "abc", max_cached=2)
    use(cache, a, a, b, c)  # b is newer than a, but only a is used again
    assert cache.document(a) is not None and cache.document(b) is None


@pytest.mark.parametrize("bound", ["max_copies", "max_copy_bytes"])
def test_a_stored_copy_in_use_is_never_dropped_for_a_newcomer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: str
) -> None:
    copies = Copies()
    size = len(json.dumps({"@context": {"a": "https://x/a"}}, separators=(",", ":")))
    cache, (a, b, c, d) = copies.cache(
        tmp_path, "abcd", **{bound: 2 if bound == "max_copies" else 2 * size}
    )
    use(cache, a, a, b)
    use(cache, c)  # no room but among copies used within IN_USE: c is not stored
    assert set(copies.docs) == {a, b}
    assert cache.document(c) is not None, "c is used all the same"
    monkeypatch.setattr(ctxmod, "IN_USE", 0.0)  # a week later, nothing used since
    use(cache, d)  # b, used by one request only, goes before a
    assert set(copies.docs) == {a, d}


def test_stored_copies_beyond_memory_are_loaded_as_copies(tmp_path: Path) -> None:
    copies = Copies()
    cache, (a, b, c) = copies.cache(tmp_path, "abc", max_cached=2)
    for url in (a, b, c):
        copies.docs[url] = {"@context": {"t": url}}
    rows = [
        (url, doc, "Cached", f"2026-12-0{i + 1}T00:00:00Z")
        for i, (url, doc) in enumerate(copies.docs.items())
    ]
    cache.load(rows)
    assert cache.document(a) is None and cache.document(c) is not None, "the newest in memory"
    entry = cache.find(a)  # read back from the store when asked for
    assert entry is not None and entry.document == {"@context": {"t": a}}
    assert a in [e.url for e in cache.entries()]


def test_a_copy_stored_under_a_fragment_is_stored_under_its_url_again(tmp_path: Path) -> None:
    copies = Copies()
    cache, (a,) = copies.cache(tmp_path, "a")
    copies.docs[f"{a}#v1"] = {"@context": {"t": "https://x/t"}}
    cache.load([(f"{a}#v1", copies.docs[f"{a}#v1"], "Cached", "2026-12-01T00:00:00Z")])
    assert copies.docs == {a: {"@context": {"t": "https://x/t"}}}
    assert cache.document(f"{a}#v2") == {"@context": {"t": "https://x/t"}}

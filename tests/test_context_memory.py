"""The @contexts held in memory that may leave it are bounded by bytes, not only by count:
120 inline @contexts of 1.5 MB each grew a hub by 600 MB under the count of 1,000."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cityhub.jsonbytes import dumps_kept
from cityhub.ngsild.context import CACHED, CORE_CONTEXT_URL, ContextCache
from test_implicit_contexts_bounded import implicit, query

TERMS = 300  # terms of each large @context: about 15 KB of JSON


def large(i: int) -> dict[str, Any]:
    return {f"t{i}x{k}": f"http://example.org/{i}/{k}" for k in range(TERMS)}


async def test_inline_contexts_are_held_within_the_byte_budget(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    cache: ContextCache = app.state.contexts
    one = len(dumps_kept({"@context": [large(0), CORE_CONTEXT_URL]}))
    cache.max_memory_bytes = 3 * one + one // 2  # three of them, far below the count's 1,000

    ids = []
    for i in range(8):
        body = {"type": "Query", "entities": [{"type": "Nothing"}], "@context": [large(i)]}
        body["@context"].append(CORE_CONTEXT_URL)
        resp = await client.post(
            "/ngsi-ld/v1/entityOperations/query",
            json=body,
            headers={"Content-Type": "application/ld+json", "Accept": "application/json"},
        )
        assert resp.status_code == 200, resp.text
        ids.append(resp.headers["Link"].split(">", 1)[0].rsplit("/", 1)[-1])
    assert await implicit(client) == set(ids[-3:]), "the 3 most recently used stay"
    assert (await client.get(f"/ngsi-ld/v1/jsonldContexts/{ids[-1]}")).status_code == 200

    cache.max_memory_bytes = one // 2  # one larger than the whole budget is still served
    newest = await query(client, 1000)
    assert await implicit(client) == {newest}


async def test_fetched_contexts_are_held_within_the_byte_budget(tmp_path: Path) -> None:
    urls = [f"https://contexts.example.org/{i}.jsonld" for i in range(6)]
    mirrors = {}
    for i, url in enumerate(urls):
        path = tmp_path / f"{i}.jsonld"
        path.write_text(json.dumps({"@context": large(i)}))
        mirrors[url] = str(path)
    one = len(dumps_kept(large(0)))
    cache = ContextCache(mirrors=mirrors, max_memory_bytes=2 * one + one // 2)
    for url in urls:
        await cache.prefetch(url)
    held = [e.url for e in cache.entries() if e.kind == CACHED and e.document is not None]
    assert held == [CORE_CONTEXT_URL, *urls[-2:]], "the core and the 2 most recent stay"
    await cache.prefetch(urls[0])  # one that left memory is fetched again when used
    assert urls[0] in [e.url for e in cache.entries() if e.document is not None]

"""ImplicitlyCreated @contexts made for answers are bounded; those subscriptions name are kept.

A soak left one permanent context (in memory and in the `contexts` table) per read request
with a new inline @context, 5,314 in 29 minutes, and each emptied the compiled-context memo
for every client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.ngsild.context import ContextCache
from cityhub.settings import Settings
from conftest import BASE, CORE, JSONLD, link

CTX = f"{BASE}/jsonldContexts"
ANSWER = {"Content-Type": JSONLD, "Accept": "application/json"}
SUB = {
    "type": "Subscription",
    "entities": [{"type": "Probe"}],
    "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
}


def inline(i: int) -> list[Any]:
    """A compound @context with a term of its own (as clients that generate contexts send)."""
    return [{f"t{i}": f"http://example.org/t{i}"}, CORE]


async def query(client: httpx.AsyncClient, i: int) -> str:
    """POST /entityOperations/query with a new inline @context: the local id its answer links."""
    body = {"type": "Query", "entities": [{"type": "Nothing"}], "@context": inline(i)}
    resp = await client.post(f"{BASE}/entityOperations/query", json=body, headers=ANSWER)
    assert resp.status_code == 200, resp.text
    return resp.headers["Link"].split(">", 1)[0].rsplit("/", 1)[-1]


async def implicit(client: httpx.AsyncClient) -> set[str]:
    """The local ids of the listed ImplicitlyCreated contexts."""
    resp = await client.get(CTX, params={"kind": "ImplicitlyCreated"})
    return {u.rsplit("/", 1)[-1] for u in resp.json()}


def stored(app: Starlette) -> set[str]:
    """The local ids of the stored contexts, with their kinds."""
    return {f"{kind}:{url.rsplit('/', 1)[-1]}" for url, _d, kind, _c in app.state.store.contexts()}


@pytest.fixture
def small(app: Starlette) -> ContextCache:
    """The hub's context cache, keeping at most 5 ImplicitlyCreated contexts nothing names."""
    cache: ContextCache = app.state.contexts
    cache.max_implicit = 5
    return cache


async def test_answers_to_new_inline_contexts_leave_a_bounded_trail(
    client: httpx.AsyncClient, app: Starlette, small: ContextCache
) -> None:
    hosted = await client.post(CTX, json={"@context": {"Probe": "http://example.org/Probe"}})
    url = "http://hub" + hosted.headers["Location"]
    held = small.compile([url, CORE])
    ids = [await query(client, i) for i in range(20)]
    assert await implicit(client) == set(ids[-5:]), "the 5 most recently used stay"
    assert not [s for s in stored(app) if s.startswith("ImplicitlyCreated")], "a read writes none"
    assert small.compile([url, CORE]) is held, "new contexts left other compiled maps alone"
    # a kept one stays served and is used again: it is now the most recent
    assert (await client.get(f"{CTX}/{ids[15]}")).status_code == 200
    assert await query(client, 15) == ids[15]
    await query(client, 99)
    assert ids[15] in await implicit(client) and ids[16] not in await implicit(client)


async def test_a_context_a_subscription_names_is_never_evicted(
    hub: httpx.AsyncClient, app: Starlette, small: ContextCache
) -> None:
    """Named by a subscription made with a compound @context, or through a Link to an
    answer's copy: kept and stored; once the subscription is deleted it may go."""
    sub = {**SUB, "id": "urn:ngsi-ld:Subscription:compound", "@context": inline(1000)}
    assert (await hub.post(f"{BASE}/subscriptions", json=sub, headers=ANSWER)).status_code == 201
    got = await hub.get(f"{BASE}/subscriptions/{sub['id']}")
    own = got.json()["jsonldContext"].rsplit("/", 1)[-1]
    answer_id = await query(hub, 1001)  # an answer's copy, in memory only
    assert f"ImplicitlyCreated:{answer_id}" not in stored(app)
    linked = {**SUB, "id": "urn:ngsi-ld:Subscription:linked"}
    headers = {"Link": link(f"http://hub{CTX}/{answer_id}")}
    assert (
        await hub.post(f"{BASE}/subscriptions", json=linked, headers=headers)
    ).status_code == 201
    assert f"ImplicitlyCreated:{answer_id}" in stored(app), "named now: stored"
    for i in range(20):
        await query(hub, i)
    assert {own, answer_id} <= await implicit(hub)
    assert len(await implicit(hub)) == 7, "5 unnamed ones and the 2 named"
    for sid in (sub["id"], linked["id"]):
        assert (await hub.delete(f"{BASE}/subscriptions/{sid}")).status_code == 204
    await query(hub, 21)
    left = await implicit(hub)
    assert own not in left and answer_id not in left and len(left) == 5
    assert not [s for s in stored(app) if s.startswith("ImplicitlyCreated")], "their rows went"


async def test_a_retired_context_goes_with_the_last_subscription_naming_it(
    hub: httpx.AsyncClient, app: Starlette, db_path: Path
) -> None:
    sub = {**SUB, "id": "urn:ngsi-ld:Subscription:r", "@context": inline(7)}
    assert (await hub.post(f"{BASE}/subscriptions", json=sub, headers=ANSWER)).status_code == 201
    own = (await hub.get(f"{BASE}/subscriptions/{sub['id']}")).json()["jsonldContext"]
    local_id = own.rsplit("/", 1)[-1]
    assert (await hub.delete(f"{CTX}/{local_id}")).status_code == 204
    assert stored(app) == {f"Retired:{local_id}"}, "retired: kept for the subscription"
    again: Starlette = create_app(Settings(db=str(db_path)))  # a restart keeps it too
    assert again.state.contexts.named(local_id)
    again.state.store.close()
    assert (await hub.delete(f"{BASE}/subscriptions/{sub['id']}")).status_code == 204
    assert stored(app) == set(), "nothing names it any more: gone"


async def test_a_restart_drops_retired_contexts_nothing_names(
    client: httpx.AsyncClient, app: Starlette, db_path: Path
) -> None:
    """Left behind by hubs before the rule (a subscription deleted after its context)."""
    app.state.store.put_context(f"http://hub{CTX}/old", {"@context": {"a": "urn:a"}}, "Retired")
    for i in range(4):
        url = f"http://hub{CTX}/i{i}"
        app.state.store.put_context(url, {"@context": [{"a": f"urn:{i}"}]}, "ImplicitlyCreated")
    fresh: Starlette = create_app(Settings(db=str(db_path)))
    assert len(stored(fresh)) == 4, "the retired one went at start-up"
    fresh.state.contexts.max_implicit = 2
    fresh.state.contexts.settle()
    assert stored(fresh) == {"ImplicitlyCreated:i2", "ImplicitlyCreated:i3"}, "oldest first"
    fresh.state.store.close()


async def test_a_hosted_context_keeps_what_it_includes_from_the_hub(
    client: httpx.AsyncClient, small: ContextCache, app: Starlette
) -> None:
    """A client hosted a context that includes the Link it got in an answer; the included
    copy was later evicted (1,000 newer ones, or a restart), and every request using the
    hosted context was a 503 for good."""
    lid = await query(client, 0)
    included = f"http://hub{CTX}/{lid}"
    resp = await client.post(CTX, json={"@context": [included, {"extra": "urn:extra"}]})
    assert resp.status_code == 201, resp.text
    hosted = resp.headers["location"]
    for i in range(1, 20):  # far past the bound of 5
        await query(client, i)
    assert lid in await implicit(client)
    assert f"ImplicitlyCreated:{lid}" in stored(app), "kept for a restart too"
    body = {"type": "Query", "entities": [{"type": "Nothing"}]}
    resp = await client.post(
        f"{BASE}/entityOperations/query", json=body, headers={"Link": link(f"http://hub{hosted}")}
    )
    assert resp.status_code == 200, resp.text
    # deleting the hosted context lets the included copy go like the others
    assert (await client.delete(hosted)).status_code == 204
    for i in range(20, 30):
        await query(client, i)
    assert lid not in await implicit(client)

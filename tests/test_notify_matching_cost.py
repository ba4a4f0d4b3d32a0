"""Subscription matching work stays bounded on the event loop.

Matching runs inside the write transaction, once per (changed entity, candidate
subscription). A probe with 10,000 never-firing subscriptions on one type held every request
for 52 s during a 1,000-entity upsert; 2,000 type+idPattern subscriptions on another type
made every write 12x slower; DELETE /jsonldContexts read every stored subscription.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api import commit
from cityhub.ingest.agent.slices import message_slices
from cityhub.notify.subscription import Compiled
from conftest import BASE

UPSERT = f"{BASE}/entityOperations/upsert"
CTX = f"{BASE}/jsonldContexts"


def _sub(**members: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
        **members,
    }


async def _subscribe(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    resp = await client.post(f"{BASE}/subscriptions", json=body)
    assert resp.status_code == 201, resp.text
    return str(resp.headers["location"]).rsplit("/", 1)[-1]


def _entity(typ: str, n: int, **attrs: int) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:{typ}:{n}", "type": typ}
    body.update({k: {"type": "Property", "value": v} for k, v in attrs.items()})
    return body


@pytest.fixture
def selects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the subscriptions whose selection (entities, q, ...) matching tests."""
    calls: list[str] = []
    real = Compiled.selects

    def spy(self: Compiled, doc: dict[str, Any]) -> bool:
        calls.append(self.id)
        return real(self, doc)

    monkeypatch.setattr(Compiled, "selects", spy)
    return calls


def _outbox_rows(app: Starlette) -> int:
    conn = app.state.store._writer
    return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])


async def test_selectors_of_other_types_and_unwatched_attributes_are_not_tested(
    hub: httpx.AsyncClient, app: Starlette, selects: list[str]
) -> None:
    for i in range(50):
        await _subscribe(
            hub, _sub(entities=[{"type": "Lamp", "idPattern": f"^urn:ngsi-ld:Lamp:{i}$"}])
        )
        await _subscribe(hub, _sub(entities=[{"type": "Meter"}], watchedAttributes=[f"o{i}"]))
    await hub.post(f"{BASE}/entities", json=_entity("Meter", 1, t=1, o3=1))
    await hub.post(f"{BASE}/entities", json=_entity("Tree", 1, t=1))
    selects.clear()
    rows = _outbox_rows(app)
    for typ in ("Meter", "Tree"):
        resp = await hub.patch(f"{BASE}/entities/urn:ngsi-ld:{typ}:1/attrs", json={"t": 2})
        assert resp.status_code == 204, resp.text
    assert selects == [], "no pattern subscription (other type), no watcher of t"
    assert _outbox_rows(app) == rows
    resp = await hub.patch(f"{BASE}/entities/urn:ngsi-ld:Meter:1/attrs", json={"o3": 2})
    assert resp.status_code == 204
    assert len(selects) == 1, "only the one watching o3"
    assert _outbox_rows(app) == rows + 1
    selects.clear()
    assert (await hub.post(f"{BASE}/entities", json=_entity("Lamp", 7, t=1))).status_code == 201
    assert len(selects) == 50, "a Lamp meets the Lamp selectors; their patterns pick one"
    assert _outbox_rows(app) == rows + 2


def _jobs(app: Starlette, name: str) -> list[int]:
    """Record the size of each call of the entity service's method (one per slice)."""
    svc = app.state.entities
    real: Callable[..., Any] = getattr(svc, name)
    sizes: list[int] = []

    def wrapped(tenant: str, items: Any, *args: Any) -> Any:
        sizes.append(len(items))
        return real(tenant, items, *args)

    setattr(svc, name, wrapped)
    return sizes


async def test_a_batch_is_sliced_by_the_matching_it_costs(
    hub: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 never-firing subscriptions on Meter and a bound of 100 pairs: Meter entities go 3
    to a slice, Tree entities (no subscription) all in one, and all are stored."""
    monkeypatch.setattr(commit, "SLICE_MATCHES", 100)
    for i in range(30):
        await _subscribe(hub, _sub(entities=[{"type": "Meter"}], q=f"t>{1000 + i}"))
    sizes = _jobs(app, "batch_upsert")
    resp = await hub.post(UPSERT, json=[_entity("Meter", n, t=n) for n in range(10)])
    assert resp.status_code == 201, resp.text
    assert sizes == [3, 3, 3, 1]
    sizes.clear()
    resp = await hub.post(UPSERT, json=[_entity("Tree", n, t=n) for n in range(10)])
    assert resp.status_code == 201 and sizes == [10]
    ld = [
        {
            **_entity("Meter", n),
            "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
        }
        for n in range(20, 24)
    ]
    sizes.clear()
    resp = await hub.post(UPSERT, json=ld, headers={"Content-Type": "application/ld+json"})
    assert resp.status_code == 201 and sizes == [3, 1], "each item's own @context is read"
    purged = _jobs(app, "purge")
    resp = await hub.delete(f"{BASE}/entities", params={"type": "Meter"})
    assert resp.status_code == 204, resp.text
    assert purged == [3, 3, 3, 3, 2], "a purge's deletions are matched too"
    left = await hub.get(f"{BASE}/entities", params={"type": "Meter"})
    assert left.json() == []


class _Message:
    def __init__(self, *items: dict[str, Any]) -> None:
        self.items = list(items)


def test_device_messages_are_sliced_by_matching_work_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A message's fragments weigh together and a message is never split."""
    monkeypatch.setattr("cityhub.ingest.agent.slices.SLICE_MATCHES", 10)
    batch = [_Message({"n": 1}, {"n": 2}), _Message({"n": 3}), _Message({"n": 4}, {"n": 5})]
    weights = {1: 4, 2: 4, 3: 4, 4: 1, 5: 1}
    slices = list(message_slices(batch, lambda item: weights[item["n"]]))
    assert [len(part) for part, _ in slices] == [1, 2]
    assert [len(part) for part, _ in message_slices(batch)] == [3]


async def test_deleting_a_context_reads_no_stored_subscription(
    hub: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a subscription names a hosted context comes from memory: an unnamed one is
    deleted, a named one retired, and one a subscription stopped naming is deleted."""
    made = [await hub.post(CTX, json={"@context": {"t": f"http://ex.org/t{i}"}}) for i in range(3)]
    urls = ["http://hub" + r.headers["Location"] for r in made]
    sid = await _subscribe(hub, _sub(entities=[{"type": "Meter"}], jsonldContext=urls[1]))
    other = await _subscribe(hub, _sub(entities=[{"type": "Meter"}], jsonldContext=urls[2]))
    resp = await hub.patch(f"{BASE}/subscriptions/{other}", json={"jsonldContext": urls[0]})
    assert resp.status_code == 204, resp.text

    def refuse(*_: Any) -> Any:
        raise AssertionError("read every stored subscription")

    monkeypatch.setattr(app.state.store, "resource_every_tenant", refuse)
    kinds = {url.rsplit("/", 1)[-1]: kind for url, _d, kind, _c in app.state.store.contexts()}
    for url in urls:
        assert (await hub.delete(url.removeprefix("http://hub"))).status_code == 204
    after = {url.rsplit("/", 1)[-1]: kind for url, _d, kind, _c in app.state.store.contexts()}
    ids = [u.rsplit("/", 1)[-1] for u in urls]
    assert kinds[ids[1]] != "Retired" and after[ids[0]] == after[ids[1]] == "Retired"
    assert ids[2] not in after, "no longer named since the PATCH: deleted"
    assert sid

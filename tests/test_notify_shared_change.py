"""A change notified to many subscriptions is parsed once, and rendered once per rendering
they share (format, attributes, @context, ...), not once per subscription."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub import bigjson
from cityhub.api.app import create_app
from cityhub.notify import payload
from cityhub.settings import Settings
from conftest import BASE, create
from receivers import ServerThread, wait_for
from test_big_json_off_loop import _big_entity, _client

ALIKE = 4  # subscriptions rendering the change the same way


async def _subscribe(c: httpx.AsyncClient, uri: str, **notification: Any) -> None:
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Big"}],
        "notification": {"endpoint": {"uri": uri}, **notification},
    }
    assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201


@pytest.mark.parametrize("size", [10, bigjson.OFF_LOOP + 1000], ids=["small", "large"])
async def test_a_change_is_parsed_once_and_rendered_once_per_rendering(
    tmp_path: Path, servers: ServerThread, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    parsed: list[int] = []
    rendered: list[str] = []
    loads, render = bigjson.loads, payload.render_event_entity

    def counting_loads(raw: Any) -> Any:
        value = loads(raw)
        if isinstance(value, dict) and "changes" in value:  # a change's shared record
            parsed.append(len(raw))
        return value

    def counting_render(sub: Any, entity: Any, fetch: Any) -> Any:
        rendered.append(sub.notification.get("format", "normalized"))
        return render(sub, entity, fetch)

    monkeypatch.setattr(bigjson, "loads", counting_loads)
    monkeypatch.setattr(payload, "render_event_entity", counting_render)
    rec = servers.receiver()
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    try:
        async with _client(app) as c:
            for n in range(ALIKE):
                await _subscribe(c, rec.url(f"/n{n}"))
            await _subscribe(c, rec.url("/kv"), format="keyValues")
            await create(c, _big_entity(1, size))
            await wait_for(lambda: rec.total() == ALIKE + 1, timeout=20, what="notifications")
            notifier = app.state.notifier
            # once every item of the change is done, its parse and renderings are let go
            await wait_for(lambda: not notifier.dispatcher.size, timeout=5, what="the queues")
            cached = len(getattr(getattr(notifier, "shared", None), "entries", ()))
    finally:
        await app.state.notifier.close()
        app.state.store.close()
    assert len(parsed) == 1, f"the change was parsed {len(parsed)} times"
    assert sorted(rendered) == ["keyValues", "normalized"]
    assert cached == 0
    bodies = [rec.received(f"/n{n}")[0].body for n in range(ALIKE)]
    assert len({b["id"] for b in bodies}) == ALIKE  # each notification its own id
    assert len({b["subscriptionId"] for b in bodies}) == ALIKE
    for body in bodies:
        assert body["data"] == bodies[0]["data"]
        assert body["data"][0]["p"] == {"type": "Property", "value": "x" * size}
        assert body["triggerReason"] == "attributeCreated"
    kv = rec.received("/kv")[0].body
    assert kv["data"] == [{"id": "urn:ngsi-ld:Big:1", "type": "Big", "p": "x" * size}]


# -- rendering never changes the parse every subscription shares ----------------------------

EX = "https://vocab.example.org/"
NOW = "2026-01-01T00:00:00.000000Z"
LATER = "2026-01-02T00:00:00.000000Z"
FRIEND = "urn:ngsi-ld:Person:2"


def _instance(typ: str, content: Any, **meta: Any) -> dict[str, Any]:
    key = {"Property": "value", "GeoProperty": "value", "Relationship": "object"}.get(typ)
    key = (
        key
        or {
            "LanguageProperty": "languageMap",
            "VocabProperty": "vocab",
            "ListProperty": "valueList",
            "ListRelationship": "objectList",
            "JsonProperty": "json",
        }[typ]
    )
    return {"type": typ, key: content, "createdAt": NOW, "modifiedAt": NOW, **meta}


def _room(at: str, t: float, *, gone: bool) -> dict[str, Any]:
    """A stored Room with an attribute of every type, datasetIds, sub-attributes, nested
    values; gone: with the attributes an update deletes."""
    attrs: dict[str, list[dict[str, Any]]] = {
        "temperature": [
            _instance(
                "Property",
                t,
                observedAt=at,
                unitCode="CEL",
                sub={EX + "accuracy": _instance("Property", {"plusMinus": [0.1, t]})},
            ),
            _instance("Property", t + 1, datasetId="urn:ngsi-ld:Dataset:a"),
        ],
        "location": [_instance("GeoProperty", {"type": "Point", "coordinates": [t, 2.0]})],
        "name": [_instance("LanguageProperty", {"en": f"room {t}", "fr": f"salle {t}"})],
        "category": [_instance("VocabProperty", [EX + "office", EX + "lab"])],
        "tags": [_instance("ListProperty", [1, {"k": [t]}, [2, 3]])],
        "owner": [_instance("Relationship", FRIEND, objectType=EX + "Person")],
        "friends": [_instance("ListRelationship", [FRIEND, "urn:ngsi-ld:Person:3"])],
        "config": [_instance("JsonProperty", {"a": {"b": [t, {"c": None}]}})],
        "settings": [_instance("Property", {"mode": {"level": [t]}})],
    }
    if gone:
        attrs["gone"] = [_instance("Property", [1, {"x": 2}])]
        attrs["temperature"].append(_instance("Property", 0, datasetId="urn:ngsi-ld:Dataset:b"))
    return {
        "id": "urn:ngsi-ld:Room:1",
        "type": [EX + "Room"],
        "scope": ["/a/b"],
        "createdAt": NOW,
        "modifiedAt": at,
        "attrs": {EX + k: v for k, v in attrs.items()},
    }


def _options() -> list[dict[str, Any]]:
    """Subscription members over every rendering path: formats, sysAttrs, accept, attribute
    selection, joins, showChanges, lang and datasetId."""
    import itertools

    formats = ["normalized", "concise", "keyValues", "simplified"]
    accepts = [None, "application/ld+json", "application/geo+json"]
    selections: list[dict[str, Any]] = [
        {},
        {"attributes": [EX + "temperature", EX + "location", EX + "gone"]},
        {"pick": "id,temperature,owner"},
        {"omit": ["tags", "config"]},
    ]
    joins: list[dict[str, Any]] = [{}, {"join": "inline", "joinLevel": 2}, {"join": "flat"}]
    filters: list[dict[str, Any]] = [{}, {"lang": "fr"}, {"datasetId": ["urn:ngsi-ld:Dataset:a"]}]
    out = []
    for fmt, sys_attrs, accept, sel, join, show, flt in itertools.product(
        formats, [False, True], accepts, selections, joins, [False, True], filters
    ):
        endpoint: dict[str, Any] = {"uri": "http://127.0.0.1:9/n"}
        if accept:
            endpoint["accept"] = accept
        notification = {"format": fmt, "sysAttrs": sys_attrs, "showChanges": show, **sel, **join}
        out.append({"notification": {"endpoint": endpoint, **notification}, **flt})
    return out


def test_rendering_never_changes_the_shared_parse() -> None:
    """Every rendering path reads the one parsed record and leaves it as it was, and what a
    rendering key names renders alike: each option's data from the shared parse, after all
    the others, is the data of a parse of its own."""
    import copy

    import orjson

    from cityhub.ngsild.context import ContextCache
    from cityhub.notify.events import ChangeEvents
    from cityhub.notify.shared import SharedChanges
    from cityhub.notify.subscription import compile_subscription

    contexts = ContextCache()
    linked = {
        FRIEND: {
            "id": FRIEND,
            "type": [EX + "Person"],
            "createdAt": NOW,
            "modifiedAt": NOW,
            "attrs": {EX + "knows": [_instance("Relationship", "urn:ngsi-ld:Room:1")]},
        }
    }

    def fetch(ids: list[str]) -> dict[str, Any]:
        return {i: copy.deepcopy(linked[i]) for i in ids if i in linked}

    subs = []
    for members in _options():
        doc = {
            "id": f"urn:ngsi-ld:Subscription:{len(subs)}",
            "type": "Subscription",
            "entities": [{"type": EX + "Room"}],
            "notificationTrigger": [
                "entityCreated",
                "attributeUpdated",
                "attributeDeleted",
                "entityDeleted",
            ],
            **members,
        }
        subs.append(compile_subscription("", doc, contexts.compile, lambda *_: ""))
    before, after = _room(NOW, 20.5, gone=True), _room(LATER, 21.5, gone=False)
    checked = 0
    for old, new in [(None, before), (before, after), (before, None)]:
        change = ChangeEvents(old, new, LATER)
        shapes = [change.shape(s) for s in subs]
        body = orjson.dumps(change.record([s for s in shapes if s is not None]))
        shared = SharedChanges().change(body)
        kept = copy.deepcopy((shared.before, shared.after, shared.changes))
        seen: dict[Any, bytes] = {}
        for sub, shape in zip(subs, shapes, strict=True):
            if shape is None:
                continue
            events = [shared.event(shape)]
            data = orjson.dumps(payload.notification_data(sub, events, fetch))
            payload.notification(sub, [shared.event(shape)], fetch, "")
            assert (shared.before, shared.after, shared.changes) == kept, sub.doc
            own = ChangeEvents.from_record(orjson.loads(body)).event(shape)
            assert data == orjson.dumps(payload.notification_data(sub, [own], fetch)), sub.doc
            key = payload.rendering_key(sub)
            if key is not None:
                assert seen.setdefault((shape, key), data) == data, sub.doc
            checked += 1
    assert checked > 2 * len(subs)


def test_the_shared_parses_and_renderings_stay_within_their_bytes() -> None:
    """Entries go least recently used first past the bound; a change larger than the bound
    alone is not kept (parsed per item, as before); forget lets one go."""
    import orjson

    from cityhub.notify.events import ChangeEvents
    from cityhub.notify.shared import SharedChanges, parsed_size

    def record(n: int, size: int) -> bytes:
        after = {"id": f"urn:x:{n}", "type": ["T"], "attrs": {"p": [{"value": "x" * size}]}}
        return orjson.dumps(ChangeEvents(None, after, NOW).record([]))

    bodies = [record(n, 1000) for n in range(10)]
    one = parsed_size(bodies[0])
    cache = SharedChanges(limit=3 * one + 100)
    for body in bodies:
        cache.change(body)
        assert cache.size <= cache.limit
    assert len(cache.entries) == 3
    assert cache.change(bodies[-1]) is cache.change(bodies[-1])  # kept: parsed once
    cache.data(bodies[-1], "k", None, lambda: b"[" + b"1," * 100 + b"1]")
    assert cache.size <= cache.limit and len(cache.entries) == 2  # the oldest made room
    made: list[int] = []
    assert cache.data(bodies[-1], "k", None, lambda: made.append(1) or b"") == cache.data(
        bodies[-1], "k", None, lambda: b""
    )
    assert not made
    cache.forget(bodies[-1])
    assert len(cache.entries) == 1 and cache.size == one
    huge = record(99, 4 * one)
    cache.change(huge)
    assert id(huge) not in cache.entries and cache.size == one
    cache.forget(bodies[-2])
    assert not cache.entries and cache.size == 0
    equal = bytes(bytearray(bodies[0]))  # same bytes, another object: not the cached one
    cache.change(bodies[0])
    assert cache._entry(equal) is None


async def test_a_body_in_pieces_hands_the_loop_over_between_its_slices() -> None:
    """A socket that takes each write at once never suspends its sender: the 200
    notifications of a 5 MB change, ready together, held a GET 0.4 s (now 30-48 ms)."""
    import asyncio

    from cityhub.notify.pieces import SLICE, Pieces

    body = Pieces((b"x" * (3 * SLICE), b"y"))
    seen: list[int] = []
    ran: list[int] = []

    async def other() -> None:
        ran.append(len(seen))

    task = asyncio.create_task(other())
    async for piece in body.slices():
        seen.append(len(piece))
    await task
    assert seen == [SLICE] * 3 + [1]
    assert ran == [1]  # it ran right after the first slice, not after the last

"""A large change is rendered for each subscription on a thread, so a small read is answered
meanwhile, and the notifications of one subscription still go in order."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cityhub import bigjson
from cityhub.api.app import create_app
from cityhub.notify import payload
from cityhub.settings import Settings
from conftest import BASE, create
from receivers import Receiver, ServerThread, wait_for
from test_big_json_off_loop import SMALL, Held, _big_entity, _client, _started


async def _subscribe(c: httpx.AsyncClient, rec: Receiver) -> None:
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Big"}],
        "notification": {"endpoint": {"uri": rec.url("/big")}},
    }
    assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201


async def test_a_read_is_answered_while_a_large_change_is_rendered_for_a_subscription(
    tmp_path: Path, servers: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(
        payload.notification,
        lambda sub, events, fetch, tenant: len(str(events)) >= bigjson.OFF_LOOP,
    )
    monkeypatch.setattr(payload, "notification", held)
    rec = servers.receiver()
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    try:
        async with _client(app) as c:
            await create(c, SMALL)
            await _subscribe(c, rec)
            await create(c, _big_entity(1))
            await _started(held)
            read = await c.get(f"{BASE}/entities/{SMALL['id']}")
            held.released.set()
            assert read.status_code == 200
            await wait_for(lambda: rec.received("/big"), timeout=10, what="the notification")
    finally:
        await app.state.notifier.close()
        app.state.store.close()
    assert held.in_time == [True], "the read waited for the large notification's render"
    assert held.threads[0].startswith("cityhub-json")


async def test_large_changes_of_one_subscription_are_notified_in_order(
    tmp_path: Path, servers: ServerThread
) -> None:
    rec = servers.receiver()
    app = create_app(Settings(db=str(tmp_path / "hub.db")))
    try:
        async with _client(app) as c:
            await _subscribe(c, rec)
            sizes = [bigjson.OFF_LOOP + 1000 * n for n in range(1, 6)]
            for n, size in enumerate(sizes):
                big = _big_entity(n, size)
                if n % 2:
                    big["small"] = {"type": "Property", "value": n}  # a small one between
                    big["p"]["value"] = "x"
                await create(c, big)
            await wait_for(
                lambda: len(rec.received("/big")) == len(sizes),
                timeout=20,
                what="every notification",
            )
    finally:
        await app.state.notifier.close()
        app.state.store.close()
    got = [r.body["data"][0]["id"] for r in rec.received("/big")]
    assert got == [f"urn:ngsi-ld:Big:{n}" for n in range(len(sizes))]

"""What a waiting notification costs in memory: about its own size.

orjson 3.12+ returns bytes in a buffer it never trims (4 KiB at least, about 11 times a
1.4 KB body). Queues of a dead receiver hold up to CITYHUB_NOTIFY_QUEUE_MAX of them, so 20
dead receivers held 940 MB where 320 MB was due.
"""

from __future__ import annotations

import tracemalloc

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.read_memo import ReadMemo
from cityhub.ngsild.context import ContextCache
from cityhub.store.base import OutboxItem
from conftest import BASE, create

N = 300


async def test_a_queued_notification_holds_about_its_own_size(
    app: Starlette, hub: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept: list[OutboxItem] = []
    monkeypatch.setattr(app.state.notifier, "committed", kept.extend)  # nothing is sent
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Room"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/never"}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    await create(hub, {"id": "urn:ngsi-ld:Room:1", "type": "Room", "t": {"value": 0}})
    kept.clear()
    tracemalloc.start()
    try:
        for i in range(N):
            body = {"t": {"type": "Property", "value": i, "note": "x" * 1000}}
            resp = await hub.patch(f"{BASE}/entities/urn:ngsi-ld:Room:1/attrs", json=body)
            assert resp.status_code == 204
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert len(kept) == N
    payload = sum(len(item.payload) for item in kept) / N
    held = sum(
        s.size
        for s in snapshot.statistics("filename")
        if s.traceback[0].filename.endswith(("notify/notifier.py", "cityhub/jsonbytes.py"))
    )
    assert payload > 1000
    assert held / N < 1.5 * payload, f"{held / N:,.0f} bytes held per {payload:,.0f}-byte item"


def test_the_read_memo_keeps_bodies_at_their_own_size() -> None:
    import orjson

    tm = ContextCache().core
    memo = ReadMemo()
    body = {"id": "urn:ngsi-ld:Room:1", "type": "Room", "note": "x" * 1400}
    tracemalloc.start()
    try:
        for i in range(N):
            memo.put(
                ("", f"urn:ngsi-ld:Room:{i}", "application/json"), "{}", tm, orjson.dumps(body)
            )
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    size = len(orjson.dumps(body))
    held = sum(
        s.size
        for s in snapshot.statistics("filename")
        if s.traceback[0].filename.endswith(("test_notify_memory.py", "cityhub/jsonbytes.py"))
    )
    assert held / N < 1.5 * size, f"{held / N:,.0f} bytes held per {size:,}-byte body"

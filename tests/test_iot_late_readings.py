"""Device readings out of time order: a late one goes into the history only, and one dated
ahead of the hub's clock (past the drift it allows) is refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cityhub.ngsild.late import split_late
from conftest import BASE, get_entity, problem
from iot_support import IOT, provision, stats
from iot_support import wait_for as iot_wait
from receivers import Receiver, wait_for

EID = "urn:ngsi-ld:Meter:m1"
MAPPING: dict[str, Any] = {
    "attributes": {
        "v": {"name": "reading", "type": "number"},
        "s": {"name": "state", "type": "string"},
    },
    "observedAt": "ts",
}


async def meter(client: httpx.AsyncClient) -> str:
    body = {"id": "m1", "entityType": "Meter", "protocol": "http", "mapping": MAPPING}
    return str((await provision(client, body))["apikey"])


async def send(client: httpx.AsyncClient, key: str, payload: Any) -> httpx.Response:
    return await client.post(f"{IOT}/json", params={"k": key, "i": "m1"}, json=payload)


async def history(client: httpx.AsyncClient, attr: str = "reading") -> list[tuple[Any, str]]:
    resp = await client.get(
        f"{BASE}/temporal/entities/{EID}", params={"attrs": attr, "options": "temporalValues"}
    )
    assert resp.status_code == 200, resp.text
    return [(v, t) for v, t in resp.json()[attr]["values"]]


async def test_a_buffer_sent_newest_first_leaves_the_newest_reading_current(
    client: httpx.AsyncClient,
) -> None:
    key = await meter(client)
    readings = [
        {"v": 3, "ts": "2026-01-01T12:00:00Z"},
        {"v": 1, "ts": "2026-01-01T10:00:00Z"},
        {"v": 2, "ts": "2026-01-01T11:00:00Z"},
    ]
    assert (await send(client, key, readings)).status_code == 204
    entity = await get_entity(client, EID)
    assert entity["reading"]["value"] == 3
    assert entity["reading"]["observedAt"] == "2026-01-01T12:00:00.000000Z"
    assert await history(client) == [
        (1, "2026-01-01T10:00:00.000000Z"),
        (2, "2026-01-01T11:00:00.000000Z"),
        (3, "2026-01-01T12:00:00.000000Z"),
    ]


async def test_a_late_message_goes_to_the_history_only(client: httpx.AsyncClient) -> None:
    key = await meter(client)
    assert (await send(client, key, {"v": 5, "ts": "2026-01-02T00:00:00Z"})).status_code == 204
    before = await get_entity(client, EID, {"options": "sysAttrs"})
    # a reading from the day before, and one attribute the entity never held observed
    late = {"v": 4, "s": "ok", "ts": "2026-01-01T00:00:00Z"}
    assert (await send(client, key, late)).status_code == 204
    entity = await get_entity(client, EID, {"options": "sysAttrs"})
    assert entity["reading"] == before["reading"]  # value, observedAt and modifiedAt
    assert entity["state"]["value"] == "ok"  # nothing newer held: it is the current one
    assert await history(client) == [
        (4, "2026-01-01T00:00:00.000000Z"),
        (5, "2026-01-02T00:00:00.000000Z"),
    ]
    # a reading at the time the entity holds is no late one: it replaces it (a corrected
    # value, or a message the broker sent again)
    assert (await send(client, key, {"v": 6, "ts": "2026-01-02T00:00:00Z"})).status_code == 204
    assert (await get_entity(client, EID))["reading"]["value"] == 6


async def test_subscribers_hear_of_late_readings_no_more(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    key = await meter(hub)
    body = {
        "type": "Subscription",
        "entities": [{"type": "Meter"}],
        "watchedAttributes": ["reading"],
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=body)).status_code == 201
    await send(hub, key, {"v": 5, "ts": "2026-01-02T00:00:00Z"})
    await send(hub, key, {"v": 4, "ts": "2026-01-01T00:00:00Z"})
    await send(hub, key, {"v": 7, "ts": "2026-01-03T00:00:00Z"})
    got = await wait_for(lambda: len(receiver.received()) >= 2 and receiver.received())
    await asyncio.sleep(0.3)  # a third notification would have come by now
    values = [r.body["data"][0]["reading"]["value"] for r in receiver.received()]
    assert values == [5, 7], got


async def test_a_reading_dated_ahead_of_the_clock_is_refused(client: httpx.AsyncClient) -> None:
    key = await meter(client)

    async def letters(count: int) -> bool:
        held = (await client.get(f"{IOT}/deadletters")).json()
        return [d["reason"] for d in held] == ["bad_value"] * count

    ahead = datetime.now(UTC) + timedelta(hours=9)  # local time sent as UTC, east of it
    resp = await send(client, key, {"v": 1, "ts": ahead.isoformat()})
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert "ahead of the hub's clock" in detail and "'ts'" in detail
    resp = await send(client, key, {"v": 1, "ts": "9999-12-31T23:59:59Z"})
    problem(resp, 400, "BadRequestData")
    assert (await stats(client))["rejectedByReason"]["bad_value"] == 2
    await iot_wait(lambda: letters(2), "two dead letters")
    # a clock a little fast (within the drift allowed) is no refusal
    near = datetime.now(UTC) + timedelta(seconds=60)
    assert (await send(client, key, {"v": 2, "ts": near.isoformat()})).status_code == 204
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 200


async def test_times_another_client_wrote_are_compared_as_times(client: httpx.AsyncClient) -> None:
    key = await meter(client)
    # the API keeps a time as it was given: 01:00 at +01:00 is midnight UTC
    held = {"type": "Property", "value": 1, "observedAt": "2026-01-02T01:00:00+01:00"}
    resp = await client.post(f"{BASE}/entities/{EID}/attrs", json={"reading": held})
    assert resp.status_code == 204, resp.text
    assert (await send(client, key, {"v": 2, "ts": "2026-01-02T00:30:00Z"})).status_code == 204
    assert (await get_entity(client, EID))["reading"]["value"] == 2  # half an hour newer
    assert (await send(client, key, {"v": 3, "ts": "2026-01-02T00:10:00Z"})).status_code == 204
    assert (await get_entity(client, EID))["reading"]["value"] == 2  # twenty minutes late


async def test_a_clock_that_was_never_set_is_refused_not_hidden(
    client: httpx.AsyncClient,
) -> None:
    """A device whose clock lost power counts from 1970 (or from 2000, as many RTC chips
    do): kept as late readings, its every message went to the history alone, and its entity
    seemed stuck at the reading before the reset."""
    key = await meter(client)
    assert (await send(client, key, {"v": 5, "ts": "2026-01-02T00:00:00Z"})).status_code == 204
    for unset in (86_400, "2000-01-01T00:05:00Z", "1980-01-06T00:00:00Z"):
        resp = await send(client, key, {"v": 6, "ts": unset})
        detail = problem(resp, 400, "BadRequestData")["detail"]
        assert "clock" in detail and "'ts'" in detail, detail
    assert (await get_entity(client, EID))["reading"]["value"] == 5
    assert await history(client) == [(5, "2026-01-02T00:00:00.000000Z")]
    assert (await stats(client))["rejectedByReason"]["bad_value"] == 3


def test_times_of_one_length_with_other_offsets_are_compared_as_times() -> None:
    """Two 27-character times sorted as text only when both are UTC ("Z"): 10:00:00.1+02:00
    is 08:00 UTC, earlier than 09:00 UTC, though it sorts after it as text."""
    held = {
        "urn:x:t": [{"type": "Property", "value": 1, "observedAt": "2026-12-07T09:00:00.000000Z"}]
    }
    incoming = {
        "urn:x:t": [{"type": "Property", "value": 2, "observedAt": "2026-12-07T10:00:00.1+02:00"}]
    }
    assert split_late(held, incoming) == {
        "urn:x:t": [{"type": "Property", "value": 2, "observedAt": "2026-12-07T10:00:00.1+02:00"}]
    }
    assert incoming == {}


def test_a_refused_message_records_none_of_its_late_readings(tmp_path: Any) -> None:
    """A message with a late reading whose other readings took its entity past the byte
    bound (decision 074) was refused (a dead letter over MQTT, 400 over HTTP), yet its late
    reading stayed in the history: replaying the dead letter recorded it twice."""
    import sqlite3

    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.service import EntityService
    from cityhub.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "hub.db"), max_entity_bytes=3000)
    try:
        svc = EntityService(store)
        tm = ContextCache().core
        noon = {"type": "Property", "value": 1, "observedAt": "2024-01-01T12:00:00Z"}
        svc.batch_upsert("", [{"id": EID, "type": "Meter", "reading": noon}], tm, mode="update")
        late = {**noon, "value": 0, "observedAt": "2024-01-01T10:00:00Z"}
        big = {"type": "Property", "value": "x" * 5000}
        item = {"id": EID, "type": "Meter", "reading": late, "note": big}
        out = svc.batch_upsert("", [item], tm, mode="update", late=True)
        assert [eid for eid, _ in out.errors] == [EID]
        assert "bytes" in out.errors[0][1].detail
        # a late reading alone is still recorded, as decision 080 has it
        alone = svc.batch_upsert("", [{**item, "note": noon}], tm, mode="update", late=True)
        assert alone.success == [EID]
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "hub.db") as conn:
        rows = conn.execute("SELECT num FROM history WHERE num IS NOT NULL ORDER BY t_observed")
        assert [r[0] for r in rows] == [0.0, 1.0, 1.0], "the refused item's reading is kept"

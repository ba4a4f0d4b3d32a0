"""A client pattern's program and the work of one search are bounded (decision 014, addendum):
RE2 is linear in the text, but at up to ~50 ns per instruction per byte, so `.{999}.{999}Z`
on one long value held the event loop (subscriptions) or a reader thread for minutes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.ngsild.query import pattern as P
from cityhub.ngsild.query.evaluate import matches_q
from cityhub.ngsild.query.qlang import parse_q
from cityhub.settings import Settings
from conftest import BASE, bad_request
from receivers import Receiver, wait_for

BIG = ".{999}.{999}.{999}Z"  # 23,981 instructions: ~90 ms per KB searched
SINK = {"endpoint": {"uri": "http://127.0.0.1:9/none"}}
UUIDS = [f"urn:ngsi-ld:Sensor:{i:08x}-1f2e-4d3c-8b7a-{i * 7919:012x}" for i in range(200)]


def refused(r: httpx.Response) -> None:
    """A 400 that names the bound."""
    assert f"{P.MAX_PROGRAM}" in bad_request(r)["detail"], r.text


async def test_a_large_program_is_refused_wherever_a_client_sends_a_pattern(
    client: httpx.AsyncClient,
) -> None:
    """Queries (GET, POST, temporal, discovery), subscriptions, csource registrations and
    csource subscriptions alike: 400, nothing stored."""
    c = client
    refused(await c.get(f"{BASE}/entities", params={"type": "T", "idPattern": BIG}))
    refused(await c.get(f"{BASE}/entities", params={"type": "T", "q": f's~="{BIG}"'}))
    refused(await c.get(f"{BASE}/entities", params={"type": "T", "q": f's!~="{BIG}"'}))
    query = {"type": "Query", "entities": [{"idPattern": BIG, "type": "T"}]}
    refused(await c.post(f"{BASE}/entityOperations/query", json=query))
    refused(await c.get(f"{BASE}/temporal/entities", params={"type": "T", "idPattern": BIG}))
    refused(await c.get(f"{BASE}/csourceRegistrations", params={"type": "T", "idPattern": BIG}))
    sub = {"type": "Subscription", "entities": [{"type": "T"}], "notification": SINK}
    refused(await c.post(f"{BASE}/subscriptions", json={**sub, "q": f's~="{BIG}"'}))
    selector = {**sub, "entities": [{"type": "T", "idPattern": BIG}]}
    refused(await c.post(f"{BASE}/subscriptions", json=selector))
    refused(await c.post(f"{BASE}/csourceSubscriptions", json=selector))
    reg = {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "T", "idPattern": BIG}]}],
        "endpoint": "http://127.0.0.1:9/source",
    }
    refused(await c.post(f"{BASE}/csourceRegistrations", json=reg))
    assert (await c.get(f"{BASE}/subscriptions")).json() == []


async def test_realistic_patterns_pass_the_bound(client: httpx.AsyncClient) -> None:
    """A 200-id alternation, a case-insensitive prefix and the ETSI suite's patterns work."""
    c = client
    batch = [{"id": i, "type": "Sensor"} for i in UUIDS[:3]]
    assert (await c.post(f"{BASE}/entityOperations/create", json=batch)).status_code == 201
    for pattern, want in [
        ("|".join(reversed(UUIDS)), UUIDS[:3]),
        ("(?i)^URN:NGSI-LD:SENSOR:0*1-.*", [UUIDS[1]]),
        (".*downtown$", []),
        ("urn:ngsi-ld:Vehicle:*", []),
    ]:
        assert P.bounded_pattern(pattern).programsize <= P.MAX_PROGRAM
        r = await c.get(f"{BASE}/entities", params={"type": "Sensor", "idPattern": pattern})
        assert r.status_code == 200, r.text
        assert sorted(e["id"] for e in r.json()) == want


async def test_a_string_too_long_for_the_pattern_is_not_searched(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither `~=` nor `!~=` holds for it, in the SQL and in the evaluator alike; a shorter
    string under the same pattern is searched."""
    monkeypatch.setattr(P, "MAX_WORK", 100_000)
    pattern = "x.{50}Z"
    size = P.compile_pattern(pattern).programsize
    fits = P.MAX_WORK // size
    short = "x" + "a" * 50 + "Z"
    long_ = "a" * fits + short  # the match at its end is never looked for
    batch = [
        {"id": f"urn:ngsi-ld:Doc:{n}", "type": "Doc", "s": {"type": "Property", "value": v}}
        for n, v in (("long", long_), ("short", short))
    ]
    assert (await client.post(f"{BASE}/entityOperations/create", json=batch)).status_code == 201
    for q, want in [
        (f"s~={pattern}", ["urn:ngsi-ld:Doc:short"]),
        ("s!~=y.{50}Z", ["urn:ngsi-ld:Doc:short"]),  # as large a program
    ]:
        r = await client.get(f"{BASE}/entities", params={"type": "Doc", "q": q})
        assert [e["id"] for e in r.json()] == want, q
        for text, held in ((long_, False), (short, want == ["urn:ngsi-ld:Doc:short"])):
            doc = {"id": "d", "type": "Doc", "attrs": {"s": [{"type": "Property", "value": text}]}}
            assert matches_q(parse_q(q), doc) is held, (q, len(text))


async def test_a_one_megabyte_value_under_a_big_pattern_answers_at_once(
    client: httpx.AsyncClient,
) -> None:
    """Probe 3, finding 2: four such reads held every reader thread for 126 s (their deadline
    was 30 s); the pattern is now refused, and a smaller but costly one does not search 1 MB."""
    entity = {
        "id": "urn:ngsi-ld:Big:1",
        "type": "Big",
        "s": {"type": "Property", "value": "a" * 10**6},
    }
    assert (await client.post(f"{BASE}/entities", json=entity)).status_code == 201
    refused(await client.get(f"{BASE}/entities", params={"type": "Big", "q": f's~="{BIG}"'}))
    costly = "((a|b)(b|a)){999}Z"  # ~8,000 instructions: 140 ms per KB on a's
    assert P.bounded_pattern(costly).programsize <= P.MAX_PROGRAM
    r = await client.get(f"{BASE}/entities", params={"type": "Big", "q": f"s~={costly}"})
    assert r.status_code == 200 and r.json() == []


async def test_patterns_stored_before_the_bound_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    """A subscription and a registration accepted by a hub without the bound: the next hub
    starts, lists them, notifies for a short id and value, and skips a long value."""
    db = str(tmp_path / "hub.db")
    stored = "Z|.{999}.{999}Z"  # 15,993 instructions
    monkeypatch.setattr(P, "MAX_PROGRAM", 10**6)
    first = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://h"
    ) as c:
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Big", "idPattern": f"urn:.*|{stored}"}],
            "q": f's~="{stored}"',
            "notification": {"endpoint": {"uri": receiver.url()}},
        }
        assert (await c.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
        reg = {
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Big", "idPattern": stored}]}],
            "endpoint": "http://127.0.0.1:9/source",
        }
        assert (await c.post(f"{BASE}/csourceRegistrations", json=reg)).status_code == 201
    await first.state.notifier.close()
    first.state.store.close()
    monkeypatch.undo()

    again = create_app(Settings(db=db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=again), base_url="http://h"
    ) as c:
        assert len((await c.get(f"{BASE}/subscriptions")).json()) == 1
        found = await c.get(f"{BASE}/csourceRegistrations", params={"type": "Big"})
        assert found.status_code == 200 and len(found.json()) == 1
        for n, value in ((2, "a" * 10**6 + "Z"), (1, "aZ")):  # one queue: 2's would be first
            prop = {"type": "Property", "value": value}
            body = {"id": f"urn:ngsi-ld:Big:{n}", "type": "Big", "s": prop}
            assert (await c.post(f"{BASE}/entities", json=body)).status_code == 201
        got = await wait_for(lambda: receiver.received())
        assert [d["id"] for n in got for d in n.body["data"]] == ["urn:ngsi-ld:Big:1"]
    await again.state.notifier.close()
    again.state.store.close()

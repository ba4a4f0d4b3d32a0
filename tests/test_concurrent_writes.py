"""Many clients writing the same entities at once (group commit, decisions 004, 011, 019):
whatever the interleaving, the index rows match the documents (store_invariants), one create of
an id wins, and every acknowledged PATCH left one instance in the history."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from conftest import BASE
from store_invariants import problems

IDS = [f"urn:ngsi-ld:Race:{i}" for i in range(4)]


def _attr(rnd: random.Random) -> Any:
    """An attribute of a kind the index keeps in its own way."""
    return rnd.choice(
        [
            {"type": "Property", "value": rnd.randint(-5, 5)},
            {"type": "Property", "value": ["x", 2]},
            {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.5, rnd.random()]}},
            {"type": "Relationship", "object": "urn:ngsi-ld:Race:other"},
            [
                {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:ds:a"},
                {"type": "Property", "value": "b"},
            ],
        ]
    )


async def _write(client: httpx.AsyncClient, rnd: random.Random) -> int:
    """One random write to one of IDS; its status."""
    eid, name = rnd.choice(IDS), rnd.choice(["a", "b", "location"])
    kind = rnd.randrange(8)
    if kind == 0:
        doc = {"id": eid, "type": rnd.choice(["Race", "Other"]), name: _attr(rnd)}
        resp = await client.post(f"{BASE}/entities", json=doc)
    elif kind == 1:
        resp = await client.delete(f"{BASE}/entities/{eid}")
    elif kind == 2:
        resp = await client.put(f"{BASE}/entities/{eid}", json={"type": "Race", name: _attr(rnd)})
    elif kind == 3:
        body = {name: rnd.choice([_attr(rnd), "urn:ngsi-ld:null"]), "type": "Other"}
        resp = await client.patch(f"{BASE}/entities/{eid}", json=body)
    elif kind == 4:
        resp = await client.post(f"{BASE}/entities/{eid}/attrs", json={name: _attr(rnd)})
    elif kind == 5:
        resp = await client.delete(f"{BASE}/entities/{eid}/attrs/{name}")
    elif kind == 6:
        items = [{"id": i, "type": "Race", name: _attr(rnd)} for i in rnd.sample(IDS, 3)]
        resp = await client.post(f"{BASE}/entityOperations/upsert", json=items)
    else:
        resp = await client.post(f"{BASE}/entityOperations/delete", json=rnd.sample(IDS, 2))
    return resp.status_code


async def test_racing_writes_leave_every_index_row_as_the_documents_give_it(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    """Creates, deletes, replaces, merges and batches of the same ids arrive together (one
    group each round, some redone isolated): no round leaves an orphan or missing row."""
    rnd = random.Random(7)
    statuses: Counter[int] = Counter()
    for _ in range(12):
        statuses.update(await asyncio.gather(*(_write(client, rnd) for _ in range(40))))
        assert problems(db_path) == []
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[201] and statuses[204] and statuses[404], statuses  # the races did happen


async def test_one_of_twenty_creates_of_an_id_wins_and_each_patch_has_its_instance(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    """20 creates of one id at once: one 201, 19 AlreadyExists; then 30 PATCHes at once:
    the value left is the last one committed, and the history has one instance per 204."""
    doc = {"id": IDS[0], "type": "Race", "p": {"type": "Property", "value": -1}}
    answers = await asyncio.gather(*(client.post(f"{BASE}/entities", json=doc) for _ in range(20)))
    assert Counter(r.status_code for r in answers) == {201: 1, 409: 19}
    assert {r.json()["type"] for r in answers if r.status_code == 409} == {
        "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
    }
    url = f"{BASE}/entities/{IDS[0]}/attrs/p"
    answers = await asyncio.gather(
        *(client.patch(url, json={"type": "Property", "value": v}) for v in range(30))
    )
    assert [r.status_code for r in answers] == [204] * 30
    history = (await client.get(f"{BASE}/temporal/entities/{IDS[0]}?lastN=100")).json()["p"]
    assert sorted(i["value"] for i in history) == list(range(-1, 30))
    with sqlite3.connect(db_path) as conn:
        last = conn.execute("SELECT num FROM history ORDER BY t_modified DESC, hid DESC").fetchone()
    now = (await client.get(f"{BASE}/entities/{IDS[0]}")).json()["p"]["value"]
    assert now == last[0]
    assert problems(db_path) == []


async def test_the_checker_finds_rows_that_break_an_invariant(
    client: httpx.AsyncClient, db_path: Path
) -> None:
    """The invariants can fail: an orphan index row, a missing type row and a wrong count
    are each named."""
    doc = {"id": IDS[0], "type": "Race", "a": {"type": "Property", "value": 3}}
    assert (await client.post(f"{BASE}/entities", json=doc)).status_code == 201
    assert problems(db_path) == []
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO attr_index (pk, nid, seq, num) VALUES (999, 1, 0, 1.0)")
        conn.execute("DELETE FROM entity_types")
        conn.execute("UPDATE type_attrs SET n = n + 1")
    found = " ".join(problems(db_path))
    assert "attr_index: 1 rows no document gives" in found
    assert "entity_types: 1 rows missing" in found
    assert "type_attrs" in found

"""q on a VocabProperty: the hub stores its terms expanded by the request's @context, so a q
string is compared both as written and expanded as a vocabulary term (ETSI GS CIM 009 4.9).

The same rule holds for entity queries (SQL), temporal queries and subscriptions (Python)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE
from receivers import Receiver, wait_for

CTX_URL = f"{BASE}/jsonldContexts"
STATUS = "https://example.org/status#"
# a context that gives the term "ok" its own IRI instead of the core @vocab's
STATUS_CONTEXT = {"@context": {"ok": STATUS + "ok", "bad": STATUS + "bad"}}


def entity(n: int, cat: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Lamp:{n}", "type": "Lamp", "cat": cat}


async def create_all(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
    bodies = [
        entity(1, {"type": "VocabProperty", "vocab": "ok"}),
        entity(2, {"type": "Property", "value": "ok"}),
        entity(3, {"type": "VocabProperty", "vocab": ["bad", "worse"]}),
    ]
    for body in bodies:
        r = await client.post(f"{BASE}/entities", json=body, headers=headers or {})
        assert r.status_code == 201, r.text


async def ids(
    client: httpx.AsyncClient, q: str, headers: dict[str, str] | None = None, path: str = ""
) -> list[str]:
    r = await client.get(
        f"{BASE}{path}/entities", params={"type": "Lamp", "q": q}, headers=headers or {}
    )
    assert r.status_code == 200, r.text
    return sorted(e["id"].rsplit(":", 1)[1] for e in r.json())


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ('cat=="ok"', ["1", "2"]),  # the VocabProperty by its term, the Property by its text
        ('cat!="ok"', ["3"]),
        ('cat=="worse"', ["3"]),  # any term of a list
        ('cat=="bad","ok"', ["1", "2", "3"]),
        ('cat!="bad","ok"', []),  # 3 holds "bad": != holds only when no element equals
        ('cat=="https://uri.etsi.org/ngsi-ld/default-context/ok"', ["1"]),  # the stored IRI
        ('cat=="missing"', []),
    ],
)
async def test_entity_query_compares_vocab_terms(
    client: httpx.AsyncClient, q: str, want: list[str]
) -> None:
    await create_all(client)
    assert await ids(client, q) == want


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ("cat==ok", ["1", "2"]),  # clause 4.9 example 12: q=gender==Male&expandValues=gender
        ("cat!=ok", ["3"]),
        ("cat==bad,ok", ["1", "2", "3"]),
        ("cat==worse;cat!=ok", ["3"]),
        ("(cat==missing)", []),
    ],
)
async def test_expand_values_takes_bare_terms(
    client: httpx.AsyncClient, q: str, want: list[str]
) -> None:
    """When expandValues names the attribute, a bare term is a value, compared as the quoted
    string is: as written and expanded as a vocabulary term. Elsewhere it stays a 400."""
    await create_all(client)
    for named in ("cat", "other,cat"):
        r = await client.get(
            f"{BASE}/entities", params={"type": "Lamp", "q": q, "expandValues": named}
        )
        assert r.status_code == 200, r.text
        assert sorted(e["id"].rsplit(":", 1)[1] for e in r.json()) == want
    for params in ({}, {"expandValues": "other"}):
        r = await client.get(f"{BASE}/entities", params={"type": "Lamp", "q": q, **params})
        assert r.status_code == 400, r.text
        assert "bare term" in r.json()["detail"]


async def test_temporal_query_compares_vocab_terms(client: httpx.AsyncClient) -> None:
    """The temporal q runs in Python over the instances: the same rule."""
    await create_all(client)
    assert await ids(client, 'cat=="ok"', path="/temporal") == ["1", "2"]
    assert await ids(client, 'cat=="worse"', path="/temporal") == ["3"]


async def test_terms_expand_with_the_requests_own_context(client: httpx.AsyncClient) -> None:
    """With a context that maps "ok" elsewhere, the term finds what was written under that
    context, and the core context's "ok" no longer does."""
    r = await client.post(CTX_URL, json=STATUS_CONTEXT)
    assert r.status_code == 201, r.text
    link = {
        "Link": f'<http://hub{r.headers["location"]}>; rel="http://www.w3.org/ns/json-ld#context"'
    }
    await create_all(client, link)
    assert await ids(client, 'cat=="ok"', link) == ["1", "2"]
    # under the core context "ok" is <default-context>ok: only the plain Property's text matches
    assert await ids(client, 'cat=="ok"') == ["2"]
    assert await ids(client, f'cat=="{STATUS}bad"') == ["3"]


async def test_a_subscription_q_matches_a_vocab_term(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Subscriptions evaluate q in Python: a lamp turning "ok" is notified."""
    sub = {
        "type": "Subscription",
        "entities": [{"type": "Lamp"}],
        "q": 'cat=="ok"',
        "notification": {"endpoint": {"uri": receiver.url()}},
    }
    assert (await hub.post(f"{BASE}/subscriptions", json=sub)).status_code == 201
    bad = entity(9, {"type": "VocabProperty", "vocab": "bad"})
    assert (await hub.post(f"{BASE}/entities", json=bad)).status_code == 201
    r = await hub.patch(
        f"{BASE}/entities/urn:ngsi-ld:Lamp:9/attrs",
        json={"cat": {"type": "VocabProperty", "vocab": "ok"}},
    )
    assert r.status_code == 204, r.text
    await wait_for(lambda: bool(receiver.received()), timeout=10, what="the notification")
    got = receiver.received()
    assert len(got) == 1, [g.body for g in got]  # not for the create, when it was "bad"
    assert got[0].body["data"][0]["cat"]["vocab"] == "ok"


async def test_temporal_query_takes_expand_values(client: httpx.AsyncClient) -> None:
    """Query Temporal Evolution takes the same list of attributes whose q values are expanded
    (5.7.4.3, 5.7.4.4 in 1.9.1); it was refused as an unknown parameter (400)."""
    await create_all(client)
    q = {"type": "Lamp", "q": "cat==ok", "expandValues": "cat"}
    r = await client.get(f"{BASE}/temporal/entities", params=q)
    assert r.status_code == 200, r.text
    assert sorted(e["id"].rsplit(":", 1)[1] for e in r.json()) == ["1", "2"]
    body = {"type": "Query", "entities": [{"type": "Lamp"}], "q": "cat==ok"}
    r = await client.post(
        f"{BASE}/temporal/entityOperations/query", params={"expandValues": "cat"}, json=body
    )
    assert r.status_code == 200, r.text
    assert sorted(e["id"].rsplit(":", 1)[1] for e in r.json()) == ["1", "2"]
    r = await client.get(f"{BASE}/temporal/entities", params={"type": "Lamp", "q": "cat==ok"})
    assert r.status_code == 400 and "bare term" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("q", "want"),
    [
        ('cat~="^ok$"', ["2"]),  # the Property's text; the VocabProperty's IRI is no "ok"
        ('cat~="default-context/ok$"', ["1"]),  # the pattern written against the IRI
        ('cat~="/(bad|ok)$"', ["1", "3"]),
        ('cat!~="default-context/"', ["2"]),
        ('cat<"i"', ["1", "3"]),  # "https://..." orders before "i"; "ok" does not
    ],
)
async def test_patterns_and_orderings_read_the_stored_iri(
    client: httpx.AsyncClient, q: str, want: list[str]
) -> None:
    """Decision 052: the term a reader sees exists only per request, so `~=`, `!~=` and the
    orderings compare a VocabProperty's stored IRI (only == and != expand the literal); the
    evaluator (subscriptions, temporal q) agrees with SQL."""
    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.query.ast import expand_q
    from cityhub.ngsild.query.evaluate import matches_q
    from cityhub.ngsild.query.qlang import parse_q

    await create_all(client)
    assert await ids(client, q) == want
    tm = ContextCache().core
    iri = "https://uri.etsi.org/ngsi-ld/default-context/"
    stored = {
        "1": {"type": "VocabProperty", "vocab": iri + "ok"},
        "2": {"type": "Property", "value": "ok"},
        "3": {"type": "VocabProperty", "vocab": [iri + "bad", iri + "worse"]},
    }
    node = expand_q(parse_q(q), tm.expand)
    found = [n for n, inst in stored.items() if matches_q(node, {"attrs": {iri + "cat": [inst]}})]
    assert found == want

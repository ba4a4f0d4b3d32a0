"""JSON-LD rules of @context compilation: the core wins, prefixes, order, limits, cycles."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from cityhub.ngsild import context as ctxmod
from cityhub.ngsild.context import ContextCache
from conftest import BASE, CORE, JSONLD, VOCAB, bad_request, create, get_entity, link

CTX = f"{BASE}/jsonldContexts"
EID = "urn:ngsi-ld:X:9"


async def host(client: httpx.AsyncClient, context: Any) -> str:
    """Host a context document on the hub and return its absolute URL."""
    resp = await client.post(CTX, json={"@context": context})
    assert resp.status_code == 201, resp.text
    return "http://hub" + resp.headers["location"]


async def test_a_user_context_cannot_redefine_id_and_type(client: httpx.AsyncClient) -> None:
    url = await host(client, {"id": "http://ex.org/ident", "type": "http://ex.org/kind"})
    entity = {
        "id": EID,
        "type": "X",
        "http://ex.org/ident": {"type": "Property", "value": "A"},
        "p": {
            "type": "Property",
            "value": 1,
            "http://ex.org/kind": {"type": "Property", "value": "S"},
        },
    }
    await create(client, entity)
    body = await get_entity(client, EID, headers={"Link": link(url)})
    assert body["id"] == EID and body["type"] == "X", body
    assert body["p"]["type"] == "Property" and body["p"]["value"] == 1, body
    assert body["http://ex.org/ident"]["value"] == "A", body
    kv = await get_entity(client, EID, params={"options": "keyValues"}, headers={"Link": link(url)})
    assert kv["id"] == EID and kv["type"] == "X", kv


async def test_only_a_term_ending_in_a_delimiter_is_a_prefix(client: httpx.AsyncClient) -> None:
    entity = {
        "id": EID,
        "type": "P",
        "location:x": {"type": "Property", "value": 1},
        "ngsi-ld:y": {"type": "Property", "value": 2},
    }
    await create(client, entity)
    body = await get_entity(client, EID)
    assert body["location:x"]["value"] == 1, body  # an absolute IRI, kept as it is
    assert body["ngsi-ld:y"]["value"] == 2, body  # ngsi-ld ends in "/": a prefix
    expanded = await get_entity(client, EID, headers={"Link": link(await host(client, {}))})
    assert "ngsi-ld:locationx" not in expanded, expanded


async def test_terms_after_the_core_may_use_its_prefixes(client: httpx.AsyncClient) -> None:
    url = await host(
        client,
        [
            CORE,
            {"Shop": "ngsi-ld:default-context/Shop", "brand": "ngsi-ld:default-context/brandName"},
        ],
    )
    await create(
        client,
        {"id": EID, "type": "Shop", "brand": {"type": "Property", "value": "b"}},
        headers={"Link": link(url)},
    )
    plain = await get_entity(client, EID)
    assert plain["type"] == "Shop" and plain["brandName"]["value"] == "b", plain
    found = await client.get(f"{BASE}/entities", params={"type": "Shop"})
    assert [e["id"] for e in found.json()] == [EID], found.text
    types = (await client.get(f"{BASE}/types")).json()["typeList"]
    assert types == ["Shop"], types


async def test_a_relative_vocab_is_400(client: httpx.AsyncClient) -> None:
    body = {"@context": [{"@vocab": "rel/"}, CORE], "id": EID, "type": "V"}
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert "@vocab" in bad_request(resp)["detail"]
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == []


async def test_nested_context_arrays_are_capped_not_compiled_for_ever(
    client: httpx.AsyncClient,
) -> None:
    a = await host(client, {f"t{i}": f"{VOCAB}t{i}" for i in range(200)})
    b = await host(client, [a] * 50)
    started = time.monotonic()
    resp = await client.post(CTX, json={"@context": [b] * 50})
    assert time.monotonic() - started < 5
    assert "more than" in bad_request(resp)["detail"]
    url = await host(client, [b, {"extra": f"{VOCAB}extra"}])  # 51 documents: fine
    await create(client, {"id": EID, "type": "T", "t1": 1, "extra": 2}, headers={"Link": link(url)})
    plain = await get_entity(client, EID)
    assert plain[f"{VOCAB}t1"]["value"] == 1 and plain[f"{VOCAB}extra"]["value"] == 2, plain


async def test_a_context_that_includes_itself_says_so(client: httpx.AsyncClient) -> None:
    cache = ContextCache()
    cache.host(
        "http://hub/ngsi-ld/v1/jsonldContexts/a",
        {"@context": ["http://hub/ngsi-ld/v1/jsonldContexts/b"]},
    )
    cache.host(
        "http://hub/ngsi-ld/v1/jsonldContexts/b",
        {"@context": ["http://hub/ngsi-ld/v1/jsonldContexts/a", {"x": "http://ex.org/x"}]},
    )
    with pytest.raises(ctxmod.BadRequestData, match="includes itself"):
        cache.compile("http://hub/ngsi-ld/v1/jsonldContexts/a")


async def test_prefixes_defined_through_each_other_do_not_recurse(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "@context": [{"a": "b:x", "b": "a:y", "t": "a:z"}, CORE],
        "id": EID,
        "type": "T",
        "t": 1,
    }
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert resp.status_code in (201, 400), resp.text


async def test_a_context_naming_too_many_urls_is_400_without_downloading(
    client: httpx.AsyncClient,
) -> None:
    urls = [f"http://127.0.0.1:9/ctx{i}.jsonld" for i in range(ctxmod.MAX_CONTEXT_URLS + 1)]
    body = {"@context": [*urls, CORE], "id": EID, "type": "T"}
    started = time.monotonic()
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert "more than" in bad_request(resp)["detail"]
    assert time.monotonic() - started < 2


def test_the_compiled_memo_is_bounded_by_its_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctxmod, "_COMPILED_MAX_TERMS", 5_000)
    cache = ContextCache()
    big = {f"t{i}": f"http://ex.org/t{i}" for i in range(1_000)}
    for n in range(20):
        cache.compile([big, {"n": f"http://ex.org/{n}"}])
        held = sum(len(tm.terms) for tm in cache._compiled.values())
        assert held <= 5_000, (n, held)
    assert cache.compile([big, {"n": "http://ex.org/19"}]).expand("n") == "http://ex.org/19"


@pytest.mark.parametrize(
    ("context", "name", "iri"),
    [
        ({"speed": "http://ex.org/speed", "velocity": "speed"}, "velocity", "http://ex.org/speed"),
        ({"@vocab": "http://v.org/", "t": "temperature"}, "t", "http://v.org/temperature"),
        ([CORE, {"myloc": "location"}], "myloc", "https://uri.etsi.org/ngsi-ld/location"),
        ([CORE, {"@vocab": "ngsi-ld:x/"}], "temp", "https://uri.etsi.org/ngsi-ld/x/temp"),
        ([{"ex": "http://ex.org/"}, {"@vocab": "ex:"}], "temp", "http://ex.org/temp"),
    ],
)
def test_term_values_and_vocab_expand_as_json_ld_does(context: Any, name: str, iri: str) -> None:
    """A term's value may name another term or be relative to @vocab, and @vocab may be a
    compact IRI (JSON-LD 1.1, create term definition 14.2.2, context processing 5.8.3); the
    hub took such values as undefined or stored them literally (checked against PyLD)."""
    assert ContextCache().compile(context).expand(name) == iri


async def test_a_term_mapped_to_null_is_refused_not_put_under_vocab(
    client: httpx.AsyncClient,
) -> None:
    body = {"@context": [{"Building": None}, CORE], "id": EID, "type": "X", "Building": 1}
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert "maps it to null" in bad_request(resp)["detail"]
    again = {**body, "@context": [{"Building": None}, {"Building": "http://ex.org/B"}, CORE]}
    resp = await client.post(f"{BASE}/entities", json=again, headers={"Content-Type": JSONLD})
    assert resp.status_code == 201, "a later definition defines it again"


def test_compaction_picks_the_shortest_compact_iri() -> None:
    tm = ContextCache().compile({"averyverylongprefix": "http://ex.org/ns/", "b": "http://ex.org/"})
    assert tm.compact("http://ex.org/ns/x") == "b:ns/x"
    assert tm.expand("b:ns/x") == "http://ex.org/ns/x"


@pytest.mark.parametrize(
    ("context", "iri"),
    [
        ({"ex": "http://ex.org/"}, "http://ex.org/foo"),
        ({"ex": {"@id": "http://ex.org/"}}, "ex:foo"),  # an expanded definition: no prefix
        ({"ex": {"@id": "http://ex.org/a", "@prefix": True}}, "http://ex.org/afoo"),
        ({"ex": {"@id": "http://ex.org/", "@prefix": False}}, "ex:foo"),
    ],
)
def test_the_prefix_flag_follows_the_term_definition(context: Any, iri: str) -> None:
    """JSON-LD 1.1: only a simple definition ending in a gen-delim, or "@prefix": true, makes
    a term a prefix (checked against PyLD)."""
    tm = ContextCache().compile(context)
    assert tm.expand("ex:foo") == iri
    assert tm.compact(iri) == "ex:foo"


@pytest.mark.parametrize(
    ("context", "term"),
    [
        ({"foo": 'http://x.org/a"b'}, "foo"),
        ({"foo": {"@id": "http://x.org/a b"}}, "foo"),
        ({"ex": "http://x.org/", "foo": "ex:a<b"}, "foo"),
        ({"foo": "http://x.org/a\\b"}, "foo"),
        ({"foo": "http://x.org/a{b}"}, "foo"),
        ({"foo": "http://x.org/a\x7fb"}, "foo"),
        ({"@vocab": "http://x.org/v^/"}, "@vocab"),
    ],
)
async def test_a_term_mapped_to_no_iri_is_400_naming_it(
    client: httpx.AsyncClient, context: dict[str, Any], term: str
) -> None:
    resp = await client.post(CTX, json={"@context": context})
    assert repr(term) in bad_request(resp)["detail"]
    body = {"@context": [context, CORE], "id": EID, "type": "T", "foo": 1}
    resp = await client.post(f"{BASE}/entities", json=body, headers={"Content-Type": JSONLD})
    assert repr(term) in bad_request(resp)["detail"]
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == []


def test_a_stored_context_mapping_a_term_to_no_iri_is_refused_when_used() -> None:
    cache = ContextCache()  # hosted before the hub checked: it is stored, and compiles no more
    cache.host("http://hub/ngsi-ld/v1/jsonldContexts/q", {"@context": {"foo": 'http://x/"'}})
    with pytest.raises(ctxmod.BadRequestData, match="'foo'"):
        cache.compile("http://hub/ngsi-ld/v1/jsonldContexts/q")

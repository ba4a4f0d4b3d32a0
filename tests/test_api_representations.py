"""Representations a prober found lossy or lax (2026-12-07): a concise answer written back
must store the same attributes; lang= tags match in any case; objectType, vocab and objectList
items are checked; sysAttrs keeps the entity's times under attrs=."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, create, get_entity

WHEEL = "urn:ngsi-ld:ds:wheel"
POINT = {"type": "Point", "coordinates": [127.0, 37.5]}


async def _round_trip(client: httpx.AsyncClient, attrs: dict[str, Any]) -> None:
    """Create, read concise, create that under another id: both read alike, normalized."""
    await create(client, {"id": "urn:ngsi-ld:T:a", "type": "T", **attrs})
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:a", params={"format": "concise"})
    assert resp.status_code == 200
    copy = {**resp.json(), "id": "urn:ngsi-ld:T:b"}
    await create(client, copy)
    first = await get_entity(client, "urn:ngsi-ld:T:a")
    second = await get_entity(client, "urn:ngsi-ld:T:b")
    assert {**second, "id": first["id"]} == first


@pytest.mark.parametrize(
    "attrs",
    [
        {
            "speed": [
                {"type": "Property", "value": 55},
                {"type": "Property", "value": 54.5, "datasetId": WHEEL},
            ]
        },
        {
            "spot": [
                {"type": "GeoProperty", "value": POINT},
                {"type": "GeoProperty", "value": POINT, "datasetId": WHEEL},
            ]
        },
        {"shape": {"type": "Property", "value": POINT}},
        {"shape": {"type": "Property", "value": POINT, "unitCode": "MTR"}},
        {"p": {"type": "Property", "value": 1, "s": {"type": "Property", "value": POINT}}},
    ],
    ids=["multi-scalar", "multi-geo", "geometry-value", "geometry-value-meta", "sub-geometry"],
)
async def test_a_concise_answer_written_back_stores_the_same_attributes(
    client: httpx.AsyncClient, attrs: dict[str, Any]
) -> None:
    await _round_trip(client, attrs)


async def test_a_concise_multi_attribute_lists_each_instance_as_an_object(
    client: httpx.AsyncClient,
) -> None:
    await create(
        client,
        {
            "id": "urn:ngsi-ld:T:m",
            "type": "T",
            "speed": [{"type": "Property", "value": 55}, {"value": 54.5, "datasetId": WHEEL}],
        },
    )
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:m", params={"format": "concise"})
    assert resp.json()["speed"] == [{"value": 55}, {"value": 54.5, "datasetId": WHEEL}]
    one = await client.get(
        f"{BASE}/entities/urn:ngsi-ld:T:m", params={"format": "concise", "datasetId": "@none"}
    )
    assert one.json()["speed"] == 55  # alone, a plain value still stands bare


STREET = {
    "type": "LanguageProperty",
    "languageMap": {"fr": "Grand Place", "nl": "Grote Markt", "@none": "GP"},
}


@pytest.mark.parametrize(
    ("lang", "value", "tag"),
    [
        ("FR", "Grand Place", "fr"),
        ("NL-be", "Grote Markt", "nl"),
        ("Fr;q=0.5,nL", "Grote Markt", "nl"),
    ],
)
async def test_lang_matches_language_tags_in_any_case(
    client: httpx.AsyncClient, lang: str, value: str, tag: str
) -> None:
    await create(client, {"id": "urn:ngsi-ld:T:l", "type": "T", "street": STREET})
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:l", params={"lang": lang})
    assert resp.json()["street"] == {"type": "Property", "value": value, "lang": tag}


async def test_deleting_by_lang_ignores_case_and_keeps_unwanted_tags(
    client: httpx.AsyncClient,
) -> None:
    await create(client, {"id": "urn:ngsi-ld:T:l", "type": "T", "street": STREET})
    url = f"{BASE}/entities/urn:ngsi-ld:T:l/attrs/street"
    resp = await client.delete(url, params={"lang": "FR,nl;q=0"})
    assert resp.status_code == 204, resp.text
    left = (await get_entity(client, "urn:ngsi-ld:T:l"))["street"]["languageMap"]
    assert left == {"nl": "Grote Markt", "@none": "GP"}


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Relationship", "object": "urn:a:1", "objectType": ""},
        {"type": "Relationship", "object": "urn:a:1", "objectType": []},
        {"type": "Relationship", "object": "urn:a:1", "objectType": "@id"},
        {"type": "Relationship", "object": "urn:a:1", "objectType": "a b"},
        {"type": "VocabProperty", "vocab": " "},
        {"type": "VocabProperty", "vocab": "@type"},
        {"type": "ListRelationship", "objectList": [{"object": "urn:a:1", "since": 1}]},
        {"type": "ListRelationship", "objectList": [{}]},
    ],
    ids=[
        "empty",
        "empty-list",
        "keyword",
        "space",
        "vocab-space",
        "vocab-keyword",
        "list-extra-member",
        "list-no-object",
    ],
)
async def test_names_in_attribute_content_are_checked(
    client: httpx.AsyncClient, attr: dict[str, Any]
) -> None:
    resp = await client.post(
        f"{BASE}/entities", json={"id": "urn:ngsi-ld:T:n", "type": "T", "r": attr}
    )
    bad_request(resp)
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:T:n")).status_code == 404


async def test_format_temporal_values_is_refused_on_an_entity_read(
    client: httpx.AsyncClient,
) -> None:
    await create(client, {"id": "urn:ngsi-ld:T:f", "type": "T"})
    resp = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:f", params={"format": "temporalValues"})
    bad_request(resp)


async def test_sys_attrs_keeps_the_entity_times_under_attrs(client: httpx.AsyncClient) -> None:
    await create(
        client,
        {
            "id": "urn:ngsi-ld:T:s",
            "type": "T",
            "p": {"type": "Property", "value": 1},
            "q": {"type": "Property", "value": 2},
        },
    )
    resp = await client.get(
        f"{BASE}/entities/urn:ngsi-ld:T:s", params={"attrs": "p", "options": "sysAttrs"}
    )
    body = resp.json()
    assert {"createdAt", "modifiedAt", "p"} <= body.keys() and "q" not in body
    plain = await client.get(f"{BASE}/entities/urn:ngsi-ld:T:s", params={"attrs": "p"})
    assert plain.json().keys() == {"id", "type", "p"}


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=latin-1", 415),
        ('application/json; charset="ISO-8859-1"', 415),
        ("application/json; charset=UTF-8", 201),
        ("application/json;charset=utf8", 201),
        ("application/json; foo=bar", 201),
    ],
)
async def test_a_body_in_another_charset_than_utf8_is_refused(
    client: httpx.AsyncClient, content_type: str, status: int
) -> None:
    resp = await client.post(
        f"{BASE}/entities",
        content=b'{"id": "urn:ngsi-ld:T:c", "type": "T"}',
        headers={"Content-Type": content_type},
    )
    assert resp.status_code == status, resp.text


@pytest.mark.parametrize("name", ["", "a b", "@id"])
async def test_an_invalid_geometry_property_is_refused(
    client: httpx.AsyncClient, name: str
) -> None:
    await create(client, {"id": "urn:ngsi-ld:T:g", "type": "T", "location": POINT})
    resp = await client.get(
        f"{BASE}/entities/urn:ngsi-ld:T:g",
        params={"geometryProperty": name},
        headers={"Accept": "application/geo+json"},
    )
    bad_request(resp)


@pytest.mark.parametrize("opts", ["keyValues,sysAttrs", "simplified,sysAttrs"])
async def test_key_values_with_sys_attrs_has_the_entity_times(
    client: httpx.AsyncClient, opts: str
) -> None:
    """options=sysAttrs includes createdAt and modifiedAt (6.3.11), in the simplified form
    too, as keyValues notifications with sysAttrs have them (the ETSI suite, 046_17_01); an
    attribute's times have no place beside a bare value."""
    await create(
        client, {"id": "urn:ngsi-ld:T:k", "type": "T", "p": {"type": "Property", "value": 1}}
    )
    for path, params in (
        ("/entities/urn:ngsi-ld:T:k", {"options": opts}),
        ("/entities", {"type": "T", "options": opts}),
    ):
        resp = await client.get(BASE + path, params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        body = body[0] if isinstance(body, list) else body
        assert body.keys() == {"id", "type", "p", "createdAt", "modifiedAt"}, body
        assert body["p"] == 1
    picked = await client.get(
        f"{BASE}/entities/urn:ngsi-ld:T:k", params={"options": opts, "pick": "id,p"}
    )
    assert picked.json() == {"id": "urn:ngsi-ld:T:k", "p": 1}

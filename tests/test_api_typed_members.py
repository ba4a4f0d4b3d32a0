"""Members an attribute type does not have (a probe's findings 2.6 and 2.10, 2026-12-07):
`unitCode` on a Relationship, JsonProperty, LanguageProperty or GeoProperty was stored and
served, until a merge that changed the type dropped it (merge knew unitCode is a Property's
and a ListProperty's, 5.2.5); and a Property's `lang`, the member a lang= read shows, was
dropped without a word, so writing back what the hub had served lost the language."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, create, get_entity

EID = "urn:ngsi-ld:Thing:t1"
NOT_PROPERTIES: dict[str, dict[str, Any]] = {
    "Relationship": {"type": "Relationship", "object": "urn:ngsi-ld:Thing:o"},
    "ListRelationship": {"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Thing:o"]},
    "LanguageProperty": {"type": "LanguageProperty", "languageMap": {"en": "A"}},
    "VocabProperty": {"type": "VocabProperty", "vocab": "Bridge"},
    "JsonProperty": {"type": "JsonProperty", "json": {"a": 1}},
    "GeoProperty": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
}


async def refusals(client: httpx.AsyncClient, attr: dict[str, Any]) -> list[str]:
    """The detail of the 400 each kind of write answers the attribute with: create, append,
    merge, partial update, batch upsert (its error for the entity), temporal create."""
    made = [await client.post(f"{BASE}/entities", json={"id": EID, "type": "T", "a": attr})]
    await create(client, {"id": EID, "type": "T", "p": 1})
    made.append(await client.post(f"{BASE}/entities/{EID}/attrs", json={"a": attr}))
    made.append(await client.patch(f"{BASE}/entities/{EID}", json={"a": attr}))
    made.append(await client.patch(f"{BASE}/entities/{EID}/attrs/p", json=attr))
    timed = {**attr, "observedAt": "2024-01-01T00:00:00Z"}
    body = {"id": "urn:ngsi-ld:Thing:t2", "type": "T", "a": [timed]}
    made.append(await client.post(f"{BASE}/temporal/entities", json=body))
    details = [bad_request(resp)["detail"] for resp in made]
    batch = [{"id": EID, "type": "T", "a": attr}]
    resp = await client.post(f"{BASE}/entityOperations/upsert", json=batch)
    assert resp.status_code == 207 and not resp.json()["success"], resp.text
    return [*details, resp.json()["errors"][0]["error"]["detail"]]


@pytest.mark.parametrize("kind", sorted(NOT_PROPERTIES))
async def test_unit_code_is_refused_where_the_type_has_none(
    client: httpx.AsyncClient, kind: str
) -> None:
    attr = {**NOT_PROPERTIES[kind], "unitCode": "MTR"}
    for detail in await refusals(client, attr):
        assert f"unitCode belongs to Properties and ListProperties, not to a {kind}" in detail
    assert "a" not in await get_entity(client, EID)


async def test_unit_code_stays_on_properties(client: httpx.AsyncClient) -> None:
    await create(
        client,
        {
            "id": EID,
            "type": "T",
            "p": {"type": "Property", "value": 21.5, "unitCode": "CEL"},
            "l": {"type": "ListProperty", "valueList": [1, 2], "unitCode": "MTR"},
            "r": {"type": "Relationship", "object": "urn:ngsi-ld:Thing:o", "objectType": "T"},
        },
    )
    got = await get_entity(client, EID)
    assert got["p"]["unitCode"] == "CEL" and got["l"]["unitCode"] == "MTR"
    # the marker removes a member, so one stored before the check can be cleaned up
    fix = {"r": {"unitCode": "urn:ngsi-ld:null"}}
    assert (await client.patch(f"{BASE}/entities/{EID}", json=fix)).status_code == 204


async def test_object_type_is_still_refused_on_properties(client: httpx.AsyncClient) -> None:
    attr = {"type": "Property", "value": 1, "objectType": "T"}
    body = {"id": EID, "type": "T", "a": attr}
    detail = bad_request(await client.post(f"{BASE}/entities", json=body))["detail"]
    assert "objectType belongs to relationships, not to a Property" in detail


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Property", "value": "Pont", "lang": "fr"},  # what a lang= read shows
        {"value": "Pont", "lang": "fr"},  # its concise form
        {"type": "LanguageProperty", "languageMap": {"fr": "Pont"}, "lang": "fr"},
    ],
)
async def test_lang_is_refused_rather_than_dropped(
    client: httpx.AsyncClient, attr: dict[str, Any]
) -> None:
    for detail in await refusals(client, attr):
        assert "lang is not a member of an attribute one writes" in detail
        assert "languageMap" in detail


async def test_what_a_lang_read_shows_says_how_to_write_it(client: httpx.AsyncClient) -> None:
    languages = {"type": "LanguageProperty", "languageMap": {"fr": "Pont", "en": "Bridge"}}
    await create(client, {"id": EID, "type": "T", "name": languages})
    shown = await get_entity(client, EID, {"lang": "fr"})
    assert shown["name"] == {"type": "Property", "value": "Pont", "lang": "fr"}
    bad_request(await client.post(f"{BASE}/entities/{EID}/attrs", json={"n2": shown["name"]}))
    # a JSON value that holds a "lang" key is a value, as before
    value = {"type": "Property", "value": {"lang": "fr", "text": "Pont"}}
    assert (
        await client.post(f"{BASE}/entities/{EID}/attrs", json={"n3": value})
    ).status_code == 204

"""Merge Entity's parameters (5.6.17): options/format=keyValues say how the body is written.
A prober found options=keyValues accepted and ignored (2026-12-07): a keyValues object value
became a value and a sub-attribute, and the hub's own keyValues answer merged back turned a
relationship into a property and a multi-attribute's instances into one object value."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, create, get_entity, get_temporal

EID = "urn:ngsi-ld:Thing:kv"
URL = f"{BASE}/entities/{EID}"
KV = {"options": "keyValues"}


def thing(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Thing", **attrs}


async def merge(client: httpx.AsyncClient, body: Any, params: dict[str, str]) -> None:
    resp = await client.patch(URL, json=body, params=params)
    assert resp.status_code == 204, resp.text


@pytest.mark.parametrize(
    "params", [KV, {"options": "simplified"}, {"format": "keyValues"}, {"format": "simplified"}]
)
async def test_a_key_values_object_is_the_value(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await create(client, thing(data={"type": "Property", "value": 1, "unitCode": "MTR"}))
    await merge(client, {"data": {"value": 3, "unit": "m"}}, params)
    doc = await get_entity(client, EID)
    assert doc["data"] == {
        "type": "Property",
        "value": {"value": 3, "unit": "m"},
        "unitCode": "MTR",
    }


async def test_format_wins_over_options_and_concise_stays_concise(
    client: httpx.AsyncClient,
) -> None:
    await create(client, thing(data={"type": "Property", "value": 1}))
    await merge(client, {"data": {"value": 3, "unit": "m"}}, {**KV, "format": "concise"})
    doc = await get_entity(client, EID)
    assert doc["data"] == {
        "type": "Property",
        "value": 3,
        "unit": {"type": "Property", "value": "m"},
    }


FULL = thing(
    p={
        "type": "Property",
        "value": 1,
        "unitCode": "CEL",
        "observedAt": "2024-01-01T00:00:00Z",
        "s": {"type": "Property", "value": "x"},
    },
    obj={"type": "Property", "value": {"json": 1, "dataset": {"@none": 2}}},
    ds={"type": "Property", "value": {"dataset": {"@none": 2}}},
    m=[
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2"},
    ],
    only={"type": "Property", "value": 5, "datasetId": "urn:ds:9"},
    r={"type": "Relationship", "object": "urn:ngsi-ld:Thing:a", "objectType": "Thing"},
    rs={"type": "Relationship", "object": ["urn:ngsi-ld:Thing:a", "urn:ngsi-ld:Thing:b"]},
    lr={"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:Thing:a"}]},
    lst={"type": "ListProperty", "valueList": [1, 2]},
    lp={"type": "LanguageProperty", "languageMap": {"en": "Hi", "fr": "Salut"}},
    v={"type": "VocabProperty", "vocab": "Open"},
    j={"type": "JsonProperty", "json": {"json": [1], "x": None}},
    location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}},
)


async def test_the_key_values_answer_merged_back_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    """Read in keyValues, merged back in keyValues: every attribute keeps its type,
    datasetIds, value and what keyValues leaves out (metadata, sub-attributes)."""
    await create(client, FULL)
    before = await get_entity(client, EID)
    answer = await get_entity(client, EID, KV)
    assert answer["m"] == {"dataset": {"@none": 1, "urn:ds:2": 2}}, answer  # the form read back
    await merge(client, answer, KV)
    assert await get_entity(client, EID) == before


async def test_a_uri_keeps_a_relationship_and_other_values_retype(
    client: httpx.AsyncClient,
) -> None:
    """Keeping the stored type when the value fits it (decision 027, addendum)."""
    await create(client, FULL)
    body = {
        "r": "urn:ngsi-ld:Thing:c",
        "lr": ["urn:ngsi-ld:Thing:d"],
        "lst": [3],
        "v": "Closed",
        "rs": 7,
        "lp": {"languageMap": {"de": "Hallo"}},
        "new": {"languageMap": {"de": "Neu"}},
        "newer": {"type": "Point", "coordinates": [3.0, 4.0]},
        "newest": "urn:ngsi-ld:Thing:e",
    }
    await merge(client, body, KV)
    doc = await get_entity(client, EID)
    assert doc["r"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:Thing:c",
        "objectType": "Thing",
    }
    assert doc["lr"] == {
        "type": "ListRelationship",
        "objectList": [{"object": "urn:ngsi-ld:Thing:d"}],
    }
    assert doc["lst"] == {"type": "ListProperty", "valueList": [3]}
    assert doc["v"] == {"type": "VocabProperty", "vocab": "Closed"}
    assert doc["rs"] == {"type": "Property", "value": 7}, "a number is no relationship's object"
    assert doc["lp"]["type"] == "LanguageProperty" and doc["lp"]["languageMap"]["de"] == "Hallo"
    assert doc["new"] == {"type": "LanguageProperty", "languageMap": {"de": "Neu"}}
    assert doc["newer"]["type"] == "GeoProperty", doc["newer"]
    assert doc["newest"] == {"type": "Property", "value": "urn:ngsi-ld:Thing:e"}


async def test_the_dataset_form_adds_replaces_and_deletes_instances(
    client: httpx.AsyncClient,
) -> None:
    await create(client, FULL)
    body = {
        "m": {"dataset": {"urn:ds:2": "urn:ngsi-ld:null", "urn:ds:3": 3, "@none": 10}},
        "only": 6,  # a read shows its one instance bare, without its datasetId
        "fresh": {"dataset": {"urn:ds:1": 1}},
        "p": {"dataset": {"urn:ds:2": 2}},
        "ds": {"dataset": {"@none": 3}},  # its value has that form: a read shows it so
    }
    await merge(client, body, KV)
    doc = await get_entity(client, EID)
    assert doc["m"] == [
        {"type": "Property", "value": 10},
        {"type": "Property", "value": 3, "datasetId": "urn:ds:3"},
    ], doc["m"]
    assert doc["only"] == {"type": "Property", "value": 6, "datasetId": "urn:ds:9"}
    assert doc["fresh"] == {"type": "Property", "value": 1, "datasetId": "urn:ds:1"}
    assert [i["value"] for i in doc["p"]] == [1, 2] and doc["p"][1]["datasetId"] == "urn:ds:2"
    assert doc["ds"] == {"type": "Property", "value": {"dataset": {"@none": 3}}}


async def test_key_values_nulls_delete(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    await merge(client, {"p": "urn:ngsi-ld:null", "only": "urn:ngsi-ld:null"}, KV)
    doc = await get_entity(client, EID)
    assert "p" not in doc and "only" not in doc, doc


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"format": "temporalValues"}, {"p": 1}),
        ({"format": "bogus"}, {"p": 1}),
        (KV, {"m": {"dataset": {"not a uri": 1}}}),
        (KV, {"location": 5}),
    ],
)
async def test_bad_key_values_merges_are_400(
    client: httpx.AsyncClient, params: dict[str, str], body: Any
) -> None:
    await create(client, FULL)
    before = await get_entity(client, EID)
    bad_request(await client.patch(URL, json=body, params=params))
    assert await get_entity(client, EID) == before


# -- lang= -----------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{"lang": "de"}, {**KV, "lang": "de"}])
async def test_with_lang_a_string_is_that_language_of_a_language_property(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Refused with 400 before: "add this as the German text" was impossible through merge."""
    await create(client, FULL)
    body = {"lp": "Hallo", "p": "zwei"}
    await merge(client, body, params)
    doc = await get_entity(client, EID)
    assert doc["lp"] == {
        "type": "LanguageProperty",
        "languageMap": {"en": "Hi", "fr": "Salut", "de": "Hallo"},
    }
    assert doc["p"]["value"] == "zwei", "lang= changes only LanguageProperties"


async def test_lang_replaces_its_language_of_one_instance(client: httpx.AsyncClient) -> None:
    await create(
        client,
        thing(
            lp=[
                {"type": "LanguageProperty", "languageMap": {"EN": "Hi"}},
                {"type": "LanguageProperty", "languageMap": {"en": "Yo"}, "datasetId": "urn:ds:2"},
            ]
        ),
    )
    body = {"lp": {"dataset": {"urn:ds:2": "Hey", "@none": ["Hello", "Hiya"]}}}
    await merge(client, body, {**KV, "lang": "en"})
    doc = await get_entity(client, EID)
    assert doc["lp"] == [
        {"type": "LanguageProperty", "languageMap": {"EN": ["Hello", "Hiya"]}},
        {"type": "LanguageProperty", "languageMap": {"en": "Hey"}, "datasetId": "urn:ds:2"},
    ], doc["lp"]


async def test_the_key_values_answer_in_one_language_merges_back(
    client: httpx.AsyncClient,
) -> None:
    """With lang=, a keyValues read shows a LanguageProperty as one string."""
    await create(client, FULL)
    before = await get_entity(client, EID)
    answer = await get_entity(client, EID, {**KV, "lang": "fr"})
    assert answer["lp"] == "Salut"
    await merge(client, answer, {**KV, "lang": "fr"})
    assert await get_entity(client, EID) == before


@pytest.mark.parametrize("lang", ["*", "en,de", "en;q=0.5", "", "e n"])
async def test_lang_of_a_merge_is_one_language(client: httpx.AsyncClient, lang: str) -> None:
    await create(client, FULL)
    before = await get_entity(client, EID)
    bad_request(await client.patch(URL, json={"lp": "x"}, params={"lang": lang}))
    assert await get_entity(client, EID) == before


# -- observedAt= -----------------------------------------------------------------------------

OLD, NEW, OWN = "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"


async def test_observed_at_is_used_where_the_stored_instance_had_one(
    client: httpx.AsyncClient,
) -> None:
    """Refused with 400 before, and a merge kept the old observedAt: the history stacked each
    new value at the old time."""
    await create(
        client,
        thing(
            t={"type": "Property", "value": 1, "observedAt": OLD},
            m=[
                {"type": "Property", "value": 1, "observedAt": OLD},
                {"type": "Property", "value": 1, "datasetId": "urn:ds:2"},
            ],
            u={"type": "Property", "value": 1},
            own={"type": "Property", "value": 1, "observedAt": OLD},
        ),
    )
    body = {
        "t": {"type": "Property", "value": 2},
        "m": [{"value": 2}, {"value": 2, "datasetId": "urn:ds:2"}],
        "u": 2,
        "own": {"value": 2, "observedAt": OWN},
        "fresh": 2,
    }
    await merge(client, body, {"observedAt": NEW})
    doc = await get_entity(client, EID)
    assert doc["t"] == {"type": "Property", "value": 2, "observedAt": NEW}
    assert doc["m"][0]["observedAt"] == NEW and "observedAt" not in doc["m"][1], doc["m"]
    assert doc["u"] == {"type": "Property", "value": 2}, "it had none: it gets none"
    assert doc["own"]["observedAt"] == OWN, "the body's own observedAt wins"
    assert doc["fresh"] == {"type": "Property", "value": 2}
    history = await get_temporal(client, EID, options="temporalValues", attrs="t")
    assert history["t"]["values"] == [[1, OLD], [2, NEW]], history


async def test_observed_at_with_a_key_values_body(client: httpx.AsyncClient) -> None:
    await create(client, thing(t={"type": "Property", "value": 1, "observedAt": OLD}))
    await merge(client, {"t": 3}, {**KV, "observedAt": NEW})
    assert (await get_entity(client, EID))["t"] == {
        "type": "Property",
        "value": 3,
        "observedAt": NEW,
    }


@pytest.mark.parametrize("when", ["yesterday", "2025-01-01", "2025-13-01T00:00:00Z", ""])
async def test_observed_at_must_be_a_date_time(client: httpx.AsyncClient, when: str) -> None:
    await create(client, thing(t={"type": "Property", "value": 1, "observedAt": OLD}))
    resp = await client.patch(URL, json={"t": 2}, params={"observedAt": when})
    assert "observedAt" in bad_request(resp)["detail"]
    assert (await get_entity(client, EID))["t"]["value"] == 1

"""A LanguageProperty merged onto a stored one (a probe's finding F4, 2026-12-07): the
languageMap was replaced whole, so adding a translation dropped all the others, and a
language given as urn:ngsi-ld:null was stored as its text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, get_entity, get_temporal, problem

EID = "urn:ngsi-ld:Sign:s1"
NULL = "urn:ngsi-ld:null"


def lp(**languages: Any) -> dict[str, Any]:
    return {"type": "LanguageProperty", "languageMap": languages}


async def write(client: httpx.AsyncClient, how: str, languages: dict[str, Any]) -> None:
    """Merge these languages into `name` through a merge-style write."""
    if how == "partial-update":
        resp = await client.patch(
            f"{BASE}/entities/{EID}/attrs/name", json={"languageMap": languages}
        )
    elif how == "batch-merge":
        item = {"id": EID, "type": "Sign", "name": lp(**languages)}
        resp = await client.post(f"{BASE}/entityOperations/merge", json=[item])
    else:
        resp = await client.patch(f"{BASE}/entities/{EID}", json={"name": lp(**languages)})
    assert resp.status_code == 204, resp.text


@pytest.mark.parametrize("how", ["merge", "batch-merge"])
async def test_languages_merge_key_by_key_and_a_null_one_goes(
    client: httpx.AsyncClient, how: str
) -> None:
    await create(client, {"id": EID, "type": "Sign", "name": lp(en="Hi", fr="Salut")})
    await write(client, how, {"de": "Hallo"})
    assert (await get_entity(client, EID))["name"] == lp(en="Hi", fr="Salut", de="Hallo")
    await write(client, how, {"fr": NULL, "en": "Hello"})
    assert (await get_entity(client, EID))["name"] == lp(en="Hello", de="Hallo")
    await write(client, how, {"EN": "Hey"})  # tags compare without case, as lang= does
    assert (await get_entity(client, EID))["name"] == lp(de="Hallo", EN="Hey")
    # the last languages go: the instance goes, and its history says so
    await write(client, how, {"de": NULL, "en": NULL})
    assert "name" not in await get_entity(client, EID)
    history = (await get_temporal(client, EID))["name"]
    assert history[-1]["languageMap"] == {"@none": NULL} and "deletedAt" in history[-1]
    assert all(NULL not in str(i["languageMap"]) for i in history[:-1]), history


async def test_a_partial_update_replaces_the_language_map(client: httpx.AsyncClient) -> None:
    """5.6.4 replaces the map whole, as the ETSI suite's 012_04_01 expects (nl goes); a
    language given as the marker is still no text."""
    await create(client, {"id": EID, "type": "Sign", "name": lp(fr="Grand Place", nl="Markt")})
    await write(client, "partial-update", {"fr": "Grand Place", "es": "Gran Lugar", "de": NULL})
    assert (await get_entity(client, EID))["name"] == lp(fr="Grand Place", es="Gran Lugar")


async def test_a_replacing_update_leaves_a_null_language_out(client: httpx.AsyncClient) -> None:
    """PATCH /entities/{id}/attrs replaces the attribute; the marker is still no text."""
    await create(client, {"id": EID, "type": "Sign", "name": lp(en="Hi", fr="Salut")})
    body = {"name": lp(de="Hallo", fr=NULL), "other": lp(en="x", fr=NULL)}
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json=body)
    assert resp.status_code == 204, resp.text
    doc = await get_entity(client, EID)
    assert doc["name"] == lp(de="Hallo") and doc["other"] == lp(en="x"), doc


async def test_a_language_sub_attribute_merges_the_same_way(client: httpx.AsyncClient) -> None:
    p = {"type": "Property", "value": 1, "label": lp(en="a", fr="b")}
    await create(client, {"id": EID, "type": "Sign", "p": p})
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"p": {"label": lp(fr=NULL)}})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["p"]["label"] == lp(en="a")
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"p": {"label": lp(en=NULL)}})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["p"] == {"type": "Property", "value": 1}


async def test_a_temporal_instance_keeps_its_last_language(client: httpx.AsyncClient) -> None:
    """Nulling every language of a temporal instance would leave it empty: a 400, not a
    deletion (DELETE removes an instance)."""
    body = {"id": EID, "type": "Sign", "name": [lp(en="Hi", fr="Salut")]}
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    iid = (await get_temporal(client, EID))["name"][0]["instanceId"]
    url = f"{BASE}/temporal/entities/{EID}/attrs/name/{iid}"
    resp = await client.patch(url, json={"languageMap": {"fr": NULL}})
    assert resp.status_code == 204, resp.text
    assert (await get_temporal(client, EID))["name"][0]["languageMap"] == {"en": "Hi"}
    problem(await client.patch(url, json={"languageMap": {"en": NULL}}), 400, "BadRequestData")
    assert (await get_temporal(client, EID))["name"][0]["languageMap"] == {"en": "Hi"}

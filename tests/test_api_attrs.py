"""/entities/{id}/attrs and /entities/{id}/attrs/{attr}: append, update, patch, replace, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from conftest import BASE, bad_request, create, get_entity, problem

EID = "urn:ngsi-ld:Room:r1"
ATTRS = f"{BASE}/entities/{EID}/attrs"
MISSING = f"{BASE}/entities/urn:ngsi-ld:Room:none/attrs"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def room() -> dict[str, Any]:
    return {
        "id": EID,
        "type": "Room",
        "temperature": {
            "type": "Property",
            "value": 20,
            "unitCode": "CEL",
            "accuracy": {"type": "Property", "value": 0.5},
        },
        "speed": [
            {"type": "Property", "value": 1},
            {"type": "Property", "value": 2, "datasetId": "urn:ds:a"},
            {"type": "Property", "value": 3, "datasetId": "urn:ds:b"},
        ],
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:Ann"},
    }


def names(items: Iterable[str]) -> list[str]:
    """Attribute names of an UpdateResult, short or expanded (default @vocab) alike."""
    return [n.removeprefix(DEFAULT_VOCAB) for n in items]


@pytest.fixture
async def stored(client: httpx.AsyncClient) -> dict[str, Any]:
    await create(client, room())
    return await get_entity(client, EID, {"options": "sysAttrs"})


# -- POST /attrs (append) -----------------------------------------------------------------------


async def test_append_new_attributes_is_204(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(
        ATTRS,
        json={"humidity": {"type": "Property", "value": 40}, "windows": 2},
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["humidity"] == {"type": "Property", "value": 40}
    assert body["windows"] == {"type": "Property", "value": 2}
    assert body["temperature"]["value"] == 20


async def test_append_overwrites_existing_by_default(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.post(ATTRS, json={"temperature": {"type": "Property", "value": 25}})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"] == {"type": "Property", "value": 25}, "append replaces the attribute"


async def test_append_no_overwrite_is_207(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(
        ATTRS,
        params={"options": "noOverwrite"},
        json={"temperature": {"type": "Property", "value": 99}, "humidity": 40},
    )
    assert resp.status_code == 207, resp.text
    result = resp.json()
    assert names(result["updated"]) == ["humidity"], result
    assert names(n["attributeName"] for n in result["notUpdated"]) == ["temperature"], result
    assert all(isinstance(n.get("reason"), str) for n in result["notUpdated"]), result
    body = await get_entity(client, EID)
    assert body["temperature"]["value"] == 20, "noOverwrite keeps the old value"
    assert body["humidity"]["value"] == 40


@pytest.mark.parametrize(
    ("method", "params", "body"),
    [
        ("POST", {"options": "noOverwrite"}, {"temperature": 99}),
        ("PATCH", {}, {"absent": "urn:ngsi-ld:null"}),
    ],
)
async def test_a_write_that_changes_nothing_keeps_modified_at(
    client: httpx.AsyncClient, stored: Any, method: str, params: dict[str, str], body: Any
) -> None:
    """A 207 that updated nothing moved the entity's modifiedAt all the same."""
    resp = await client.request(method, ATTRS, params=params, json=body)
    assert resp.status_code == 207 and not resp.json()["updated"], resp.text
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


async def test_append_no_overwrite_all_new_is_204(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(ATTRS, params={"options": "noOverwrite"}, json={"humidity": 40})
    assert resp.status_code == 204, resp.text


async def test_append_dataset_instance(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(
        ATTRS, json={"speed": {"type": "Property", "value": 4, "datasetId": "urn:ds:c"}}
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    values = sorted(i["value"] for i in body["speed"])
    assert values == [1, 2, 3, 4], f"a new datasetId adds an instance: {body['speed']}"


async def test_append_with_trailing_slash(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(ATTRS + "/", json={"humidity": 1})
    assert resp.status_code == 204, resp.text


async def test_append_to_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.post(MISSING, json={"a": 1}), 404, "ResourceNotFound")


async def test_append_invalid_attribute_changes_nothing(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.post(
        ATTRS, json={"humidity": 40, "bad": {"type": "Relationship", "object": 12}}
    )
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


async def test_append_unknown_option_is_400(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.post(ATTRS, params={"options": "sometimes"}, json={"humidity": 40})
    bad_request(resp)
    assert "humidity" not in await get_entity(client, EID)


@pytest.mark.parametrize(
    ("method", "path", "option"),
    [
        ("PATCH", ATTRS, "noOverwrite"),
        ("PATCH", ATTRS, "keyValues"),
        ("POST", ATTRS, "keyValues"),
        ("POST", ATTRS, "noOverwrite,sysAttrs"),
        ("PATCH", f"{ATTRS}/temperature", "noOverwrite"),
        ("PATCH", f"{BASE}/entities/{EID}", "noOverwrite"),
        ("POST", f"{BASE}/entityOperations/upsert", "noOverwrite"),
        ("POST", f"{BASE}/entityOperations/update", "replace"),
        ("POST", f"{BASE}/entityOperations/merge", "noOverwrite"),
        ("POST", f"{BASE}/entityOperations/create", "update"),
        # 1.8/1.9.1 give the batch writes no representation options (6.14-6.16, 6.31)
        ("POST", f"{BASE}/entityOperations/merge", "keyValues"),
        ("POST", f"{BASE}/entityOperations/create", "keyValues"),
        ("POST", f"{BASE}/entityOperations/upsert", "keyValues"),
        ("POST", f"{BASE}/entityOperations/update", "keyValues"),
    ],
)
async def test_an_option_the_write_does_not_take_is_refused_by_name(
    client: httpx.AsyncClient, stored: Any, method: str, path: str, option: str
) -> None:
    """PATCH .../attrs?options=noOverwrite answered 204 and overwrote: a client that reached
    for noOverwrite on the wrong verb got no warning (a batch update with replace, too)."""
    body: Any = {"value": 99} if path.endswith("temperature") else {"temperature": 99}
    if "entityOperations" in path:
        body = [{"id": EID, "type": stored["type"], "temperature": 99}]
    resp = await client.request(method, path, params={"options": option}, json=body)
    err = problem(resp, 400, "InvalidRequest")
    refused = option.split(",")[-1]
    assert f"option(s) {refused} do not apply" in err["detail"], err
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


@pytest.mark.parametrize(
    "param", [{"lang": "en"}, {"observedAt": "2024-01-01T00:00:00Z"}, {"format": "keyValues"}]
)
async def test_batch_merge_takes_no_merge_entity_parameters(
    client: httpx.AsyncClient, stored: Any, param: dict[str, str]
) -> None:
    """Batch Entity Merge (5.6.20.3, 6.31) takes the entity array and local alone: the
    parameters of Merge Entity (5.6.17) are refused by name rather than ignored."""
    body = [{"id": EID, "type": stored["type"], "temperature": 99}]
    resp = await client.post(f"{BASE}/entityOperations/merge", params=param, json=body)
    err = problem(resp, 400, "InvalidRequest")
    assert next(iter(param)) in err["detail"], err
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


async def test_append_updates_modified_at(client: httpx.AsyncClient, stored: Any) -> None:
    await client.post(ATTRS, json={"humidity": 40})
    body = await get_entity(client, EID, {"options": "sysAttrs"})
    assert body["modifiedAt"] > stored["modifiedAt"], (body["modifiedAt"], stored["modifiedAt"])
    assert body["createdAt"] == stored["createdAt"]


# -- PATCH /attrs (update) ----------------------------------------------------------------------


async def test_update_existing_attributes_is_204(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(
        ATTRS,
        json={
            "temperature": {"type": "Property", "value": 22},
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:Bob"},
        },
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID, {"options": "sysAttrs"})
    assert body["temperature"]["value"] == 22
    assert body["owner"]["object"] == "urn:ngsi-ld:Person:Bob"
    assert body["temperature"]["createdAt"] == stored["temperature"]["createdAt"], (
        "an updated attribute keeps its createdAt"
    )


# docs/decisions/003-update-attributes.md: PATCH /attrs appends attributes and dataset
# instances the entity lacks, answering 204, as clause 5.6.2.4 and the ETSI suite (011_01_03) do.


async def test_update_adds_an_attribute_the_entity_lacks(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.patch(ATTRS, json={"temperature": 23, "nothere": 1})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["nothere"]["value"] == 1
    assert body["temperature"]["value"] == 23


async def test_update_one_dataset_instance(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(
        ATTRS, json={"speed": {"type": "Property", "value": 20, "datasetId": "urn:ds:a"}}
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    by_ds = {i.get("datasetId"): i["value"] for i in body["speed"]}
    assert by_ds == {None: 1, "urn:ds:a": 20, "urn:ds:b": 3}, body["speed"]


async def test_update_adds_a_dataset_instance_the_attribute_lacks(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.patch(
        ATTRS, json={"speed": {"type": "Property", "value": 20, "datasetId": "urn:ds:zzz"}}
    )
    assert resp.status_code == 204, resp.text
    by_ds = {i.get("datasetId"): i["value"] for i in (await get_entity(client, EID))["speed"]}
    assert by_ds == {None: 1, "urn:ds:a": 2, "urn:ds:b": 3, "urn:ds:zzz": 20}, by_ds


async def test_update_deleting_an_absent_attribute_is_not_updated(
    client: httpx.AsyncClient, stored: Any
) -> None:
    """A null for an attribute (or datasetId) the entity lacks deletes nothing: 207 names it
    in notUpdated, and the rest of the update still applies."""
    null = {"type": "Property", "value": "urn:ngsi-ld:null"}
    resp = await client.patch(
        ATTRS,
        json={"absent": null, "speed": null | {"datasetId": "urn:ds:zzz"}, "temperature": 21},
    )
    assert resp.status_code == 207, resp.text
    result = resp.json()
    assert names(result["updated"]) == ["temperature"], result
    assert sorted(names(n["attributeName"] for n in result["notUpdated"])) == ["absent", "speed"]
    body = await get_entity(client, EID)
    assert body["temperature"]["value"] == 21 and "absent" not in body and len(body["speed"]) == 3
    resp = await client.patch(ATTRS, json={"speed": null | {"datasetId": "urn:ds:a"}})
    assert resp.status_code == 204, resp.text
    assert len((await get_entity(client, EID))["speed"]) == 2


async def test_update_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.patch(MISSING, json={"a": 1}), 404, "ResourceNotFound")


async def test_update_invalid_attribute_changes_nothing(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.patch(ATTRS, json={"temperature": 1, "owner": {"type": "Relationship"}})
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


# -- PATCH /attrs/{attr} (partial update) --------------------------------------------------------


async def test_patch_attribute_merges(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(f"{ATTRS}/temperature", json={"value": 30})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"] == {
        "type": "Property",
        "value": 30,
        "unitCode": "CEL",
        "accuracy": {"type": "Property", "value": 0.5},
    }, body["temperature"]


async def test_patch_attribute_sub_attribute(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(
        f"{ATTRS}/temperature",
        json={
            "type": "Property",
            "value": 31,
            "accuracy": {"type": "Property", "value": 0.1},
            "sensorModel": {"type": "Property", "value": "X1"},
        },
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"]["accuracy"]["value"] == 0.1
    assert body["temperature"]["sensorModel"]["value"] == "X1"
    assert body["temperature"]["unitCode"] == "CEL"


async def test_patch_attribute_relationship(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(f"{ATTRS}/owner", json={"object": "urn:ngsi-ld:Person:Cy"})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:Cy"}


async def test_patch_attribute_dataset_instance(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.patch(f"{ATTRS}/speed", json={"value": 33, "datasetId": "urn:ds:b"})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    by_ds = {i.get("datasetId"): i["value"] for i in body["speed"]}
    assert by_ds == {None: 1, "urn:ds:a": 2, "urn:ds:b": 33}, body["speed"]


async def test_patch_unknown_attribute_is_404(client: httpx.AsyncClient, stored: Any) -> None:
    problem(await client.patch(f"{ATTRS}/nothere", json={"value": 1}), 404, "ResourceNotFound")
    assert "nothere" not in await get_entity(client, EID)


async def test_patch_attribute_unknown_dataset_is_404(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.patch(f"{ATTRS}/speed", json={"value": 1, "datasetId": "urn:ds:zzz"})
    problem(resp, 404, "ResourceNotFound")


async def test_patch_attribute_of_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(
        await client.patch(f"{MISSING}/temperature", json={"value": 1}), 404, "ResourceNotFound"
    )


async def test_patch_attribute_invalid_body_is_400(client: httpx.AsyncClient, stored: Any) -> None:
    problem(await client.patch(f"{ATTRS}/owner", json={"object": "no uri"}), 400, "BadRequestData")
    problem(
        await client.patch(f"{ATTRS}/temperature", json={"value": 1, "observedAt": "noon"}),
        400,
        "BadRequestData",
    )
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


# -- PUT /attrs/{attr} (replace) -----------------------------------------------------------------


async def test_replace_attribute(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.put(f"{ATTRS}/temperature", json={"type": "Property", "value": 5})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"] == {"type": "Property", "value": 5}, "PUT drops unnamed members"


async def test_replace_attribute_changes_its_type(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.put(
        f"{ATTRS}/owner", json={"type": "Property", "value": "nobody in particular"}
    )
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["owner"] == {
        "type": "Property",
        "value": "nobody in particular",
    }


async def test_replace_unknown_attribute_is_404(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.put(f"{ATTRS}/nothere", json={"type": "Property", "value": 5})
    problem(resp, 404, "ResourceNotFound")


async def test_replace_attribute_of_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.put(f"{MISSING}/temperature", json={"type": "Property", "value": 5})
    problem(resp, 404, "ResourceNotFound")


async def test_replace_attribute_invalid_is_400(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.put(f"{ATTRS}/temperature", json={"type": "Property"})
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


# -- DELETE /attrs/{attr} ------------------------------------------------------------------------


async def test_delete_attribute(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.delete(f"{ATTRS}/temperature")
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert "temperature" not in body and "owner" in body
    problem(await client.delete(f"{ATTRS}/temperature"), 404, "ResourceNotFound")


async def test_delete_default_instance_keeps_dataset_instances(
    client: httpx.AsyncClient, stored: Any
) -> None:
    resp = await client.delete(f"{ATTRS}/speed")
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert sorted(i["datasetId"] for i in body["speed"]) == ["urn:ds:a", "urn:ds:b"], body


async def test_delete_one_dataset_instance(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.delete(f"{ATTRS}/speed", params={"datasetId": "urn:ds:a"})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert sorted(i.get("datasetId", "") for i in body["speed"]) == ["", "urn:ds:b"], body
    problem(
        await client.delete(f"{ATTRS}/speed", params={"datasetId": "urn:ds:a"}),
        404,
        "ResourceNotFound",
    )


async def test_delete_all_instances(client: httpx.AsyncClient, stored: Any) -> None:
    resp = await client.delete(f"{ATTRS}/speed", params={"deleteAll": "true"})
    assert resp.status_code == 204, resp.text
    assert "speed" not in await get_entity(client, EID)


@pytest.mark.parametrize(
    "params",
    [{"datasetId": "not a uri"}, {"deleteAll": "yes"}],
    ids=["bad-dataset-id", "bad-delete-all"],
)
async def test_delete_attribute_bad_parameters(
    client: httpx.AsyncClient, stored: Any, params: dict[str, str]
) -> None:
    bad_request(await client.delete(f"{ATTRS}/speed", params=params))
    assert len((await get_entity(client, EID))["speed"]) == 3


async def test_delete_attribute_of_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.delete(f"{MISSING}/temperature"), 404, "ResourceNotFound")


async def test_delete_attribute_with_bad_name_is_400(
    client: httpx.AsyncClient, stored: Any
) -> None:
    problem(await client.delete(f"{ATTRS}/bad%3Bname"), 400, "BadRequestData")


# -- scope -------------------------------------------------------------------------------------


async def test_scope_can_be_merged_and_deleted(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Room", "scope": "/a/b", "x": 1})
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"scope": ["/c", "/d/e"]})
    assert resp.status_code == 204, resp.text
    assert sorted((await get_entity(client, EID))["scope"]) == ["/c", "/d/e"]
    resp = await client.delete(f"{ATTRS}/scope")
    assert resp.status_code == 204, resp.text
    assert "scope" not in await get_entity(client, EID)
    problem(await client.delete(f"{ATTRS}/scope"), 404, "ResourceNotFound")
    bad = await client.patch(f"{BASE}/entities/{EID}", json={"scope": "no-slash"})
    problem(bad, 400, "BadRequestData")


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_scope_is_no_attribute_of_one_instance(
    client: httpx.AsyncClient, method: str
) -> None:
    """PATCH .../attrs/scope answered 404 "attribute scope not found" for an entity showing
    its scope, where PUT already said what the scope is (a probe's finding, 2026-12-07)."""
    await create(client, {"id": EID, "type": "Room", "scope": "/a", "x": 1})
    resp = await client.request(method, f"{ATTRS}/scope", json={"value": "/b"})
    assert "PATCH /entities/{id}" in problem(resp, 400, "BadRequestData")["detail"]
    assert (await get_entity(client, EID))["scope"] == "/a"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/entities/{eid}/attrs"),
        ("PATCH", "/entities/{eid}/attrs"),
        ("POST", "/temporal/entities/{eid}/attrs"),
    ],
)
async def test_a_body_naming_another_entity_is_400(
    client: httpx.AsyncClient, stored: Any, method: str, path: str
) -> None:
    """As PUT and PATCH on /entities/{id} already did: the attributes were written to the
    entity in the path, whatever the body named."""
    body = {"id": "urn:ngsi-ld:Room:other", "humidity": {"type": "Property", "value": 40}}
    resp = await client.request(method, BASE + path.format(eid=EID), json=body)
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


@pytest.mark.parametrize("member", ["createdAt", "modifiedAt", "deletedAt"])
async def test_replacing_a_member_that_is_no_attribute_is_404(
    client: httpx.AsyncClient, stored: Any, member: str
) -> None:
    """PUT …/attrs/createdAt was a 500 (the name is skipped when attributes are read)."""
    resp = await client.put(f"{ATTRS}/{member}", json={"type": "Property", "value": 5})
    problem(resp, 404, "ResourceNotFound")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == stored


async def test_delete_by_dataset_id_none_deletes_the_default_instance(
    client: httpx.AsyncClient, stored: Any
) -> None:
    """@none names the default instance, as in queries; it was looked up literally (404)."""
    resp = await client.delete(f"{ATTRS}/speed", params={"datasetId": "@none"})
    assert resp.status_code == 204, resp.text
    left = (await get_entity(client, EID))["speed"]
    assert sorted(i.get("datasetId") for i in left) == ["urn:ds:a", "urn:ds:b"], left


async def test_delete_with_lang_removes_only_those_strings(client: httpx.AsyncClient) -> None:
    """lang= on DELETE deleted the whole attribute, every language with it."""
    street = {"type": "LanguageProperty", "languageMap": {"en": "Main St", "fr": "Rue", "de": "S"}}
    await create(client, {"id": EID, "type": "Room", "street": street, "n": 1})
    resp = await client.delete(f"{ATTRS}/street", params={"lang": "en,de"})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["street"]["languageMap"] == {"fr": "Rue"}, body
    problem(await client.delete(f"{ATTRS}/street", params={"lang": "en"}), 404)
    problem(await client.delete(f"{ATTRS}/n", params={"lang": "en"}), 400)
    assert (await get_entity(client, EID))["n"]["value"] == 1
    assert (await client.delete(f"{ATTRS}/street", params={"lang": "fr"})).status_code == 204
    assert "street" not in await get_entity(client, EID)

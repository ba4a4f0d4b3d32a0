"""The NGSI-LD Null inside a value (a probe's finding, 2026-12-08): merges and updates stored
`urn:ngsi-ld:null` nested in a Property's JSON object as data. 5.5.4 admits it there only in a
merge, whose patch goes into the object as RFC 7396 has it (5.5.12: that key is removed);
a partial update or an update is a 400 BadRequestData (the ETSI suite's extension TPs
554_01_03 and 554_01_04). Temporal input refuses the marker as a first-level member value
(5611_01_02); and a body that is the Null alone stays InvalidRequest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, create, problem

NULL = "urn:ngsi-ld:null"
EID = "urn:ngsi-ld:Vehicle:n1"
OPS = f"{BASE}/entityOperations"
ADDRESS = {"street": "Straße des 17. Juni", "city": "Berlin", "country": "Germany"}
T = "2026-01-01T00:00:00Z"


def vehicle(**attrs: Any) -> dict[str, Any]:
    return {"id": EID, "type": "Vehicle", **attrs}


async def stored(client: httpx.AsyncClient) -> dict[str, Any]:
    """The entity, checked never to serve the marker."""
    resp = await client.get(f"{BASE}/entities/{EID}")
    assert resp.status_code == 200 and NULL not in resp.text, resp.text
    return dict(resp.json())


async def setup(client: httpx.AsyncClient, **more: Any) -> None:
    await create(client, vehicle(address={"type": "Property", "value": ADDRESS}, **more))


# -- merge: the marker removes the key it names, other keys stay (RFC 7396) ------------------

PATCH = {"street": "Pariser Platz", "country": NULL}
MERGED = {"street": "Pariser Platz", "city": "Berlin"}


async def test_merge_removes_a_key_of_an_object_value(client: httpx.AsyncClient) -> None:
    await setup(client)
    resp = await client.patch(
        f"{BASE}/entities/{EID}", json={"address": {"type": "Property", "value": PATCH}}
    )
    assert resp.status_code == 204, resp.text
    assert (await stored(client))["address"]["value"] == MERGED


async def test_batch_merge_removes_a_key_of_an_object_value(client: httpx.AsyncClient) -> None:
    await setup(client)
    item = vehicle(address={"type": "Property", "value": PATCH})
    resp = await client.post(f"{OPS}/merge", json=[item])
    assert resp.status_code == 204, resp.text
    assert (await stored(client))["address"]["value"] == MERGED


async def test_merge_reaches_into_nested_objects(client: httpx.AsyncClient) -> None:
    await create(client, vehicle(p={"type": "Property", "value": {"geo": {"a": 1, "b": 2}}}))
    patch = {"p": {"type": "Property", "value": {"geo": {"b": NULL, "c": 3}}}}
    assert (await client.patch(f"{BASE}/entities/{EID}", json=patch)).status_code == 204
    assert (await stored(client))["p"]["value"] == {"geo": {"a": 1, "c": 3}}


async def test_merge_of_a_concise_object_value(client: httpx.AsyncClient) -> None:
    await setup(client)
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"address": PATCH})
    assert resp.status_code == 204, resp.text
    assert (await stored(client))["address"]["value"] == MERGED


async def test_merge_in_key_values(client: httpx.AsyncClient) -> None:
    await setup(client)
    resp = await client.patch(
        f"{BASE}/entities/{EID}", params={"options": "keyValues"}, json={"address": PATCH}
    )
    assert resp.status_code == 204, resp.text
    assert (await stored(client))["address"]["value"] == MERGED


async def test_merge_into_a_sub_attribute_value(client: httpx.AsyncClient) -> None:
    sub = {"type": "Property", "value": {"a": 1, "b": 2}}
    await create(client, vehicle(p={"type": "Property", "value": 1, "s": sub}))
    patch = {"p": {"type": "Property", "value": 2, "s": {"type": "Property", "value": {"a": NULL}}}}
    assert (await client.patch(f"{BASE}/entities/{EID}", json=patch)).status_code == 204
    assert (await stored(client))["p"]["s"]["value"] == {"b": 2}


async def test_merge_of_a_new_attribute_leaves_the_marked_keys_out(
    client: httpx.AsyncClient,
) -> None:
    """RFC 7396 on a target without the object: the marked key is simply not there."""
    await setup(client)
    patch = {"extra": {"type": "Property", "value": {"a": 1, "b": NULL}}}
    assert (await client.patch(f"{BASE}/entities/{EID}", json=patch)).status_code == 204
    assert (await stored(client))["extra"]["value"] == {"a": 1}


@pytest.mark.parametrize(
    "value",
    [{"list": [1, NULL]}, [1, NULL], {"rows": [{"a": NULL}]}],
    ids=["in-array", "array-value", "object-in-array"],
)
async def test_merge_refuses_the_marker_inside_an_array(
    client: httpx.AsyncClient, value: Any
) -> None:
    """An array is replaced whole (RFC 7396): a marker in it would be stored as data."""
    await setup(client)
    for resp in [
        await client.patch(
            f"{BASE}/entities/{EID}", json={"address": {"type": "Property", "value": value}}
        ),
        await client.post(
            f"{OPS}/merge", json=[vehicle(address={"type": "Property", "value": value})]
        ),
    ]:
        if resp.status_code == 207:
            (error,) = resp.json()["errors"]
            assert error["error"]["status"] == 400 and NULL in error["error"]["detail"], error
        else:
            assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])
    assert (await stored(client))["address"]["value"] == ADDRESS


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Relationship", "object": ["urn:a:1", NULL]},
        {"type": "ListProperty", "valueList": [1, NULL]},
        {"type": "VocabProperty", "vocab": ["a", NULL]},
    ],
    ids=["relationship-list", "value-list", "vocab-list"],
)
async def test_merge_refuses_the_marker_inside_other_content(
    client: httpx.AsyncClient, attr: dict[str, Any]
) -> None:
    await setup(client)
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"address": attr})
    assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])
    assert (await stored(client))["address"]["value"] == ADDRESS


# -- partial attribute update and update: no merge into the value, so a 400 -----------------

NESTED: dict[str, Any] = {
    "object": {"country": NULL},
    "deeper": {"geo": {"country": NULL}},
    "array": [1, NULL],
}


@pytest.mark.parametrize("case", NESTED)
async def test_partial_attribute_update_refuses_a_nested_marker(
    client: httpx.AsyncClient, case: str
) -> None:
    """554_01_03: the stored value stays untouched."""
    await setup(client)
    for body in [{"value": NESTED[case]}, {"type": "Property", "value": NESTED[case]}]:
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs/address", json=body)
        assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])
    assert (await stored(client))["address"]["value"] == ADDRESS


@pytest.mark.parametrize("case", NESTED)
async def test_update_attrs_refuses_a_nested_marker(client: httpx.AsyncClient, case: str) -> None:
    await setup(client)
    for attr in [{"type": "Property", "value": NESTED[case]}, NESTED[case]]:
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"address": attr})
        assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])
    assert (await stored(client))["address"]["value"] == ADDRESS


async def test_batch_update_refuses_a_nested_marker(client: httpx.AsyncClient) -> None:
    await setup(client)
    item = vehicle(address={"type": "Property", "value": {"country": NULL}})
    resp = await client.post(f"{OPS}/update", json=[item])
    assert resp.status_code == 207, resp.text
    (error,) = resp.json()["errors"]
    assert error["error"]["status"] == 400 and NULL in error["error"]["detail"], error
    assert (await stored(client))["address"]["value"] == ADDRESS


async def test_update_refuses_a_nested_marker_in_a_sub_attribute(
    client: httpx.AsyncClient,
) -> None:
    await setup(client)
    attr = {"type": "Property", "value": 1, "s": {"type": "Property", "value": {"a": NULL}}}
    resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"address": attr})
    assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])


async def test_update_still_deletes_with_the_whole_marker(client: httpx.AsyncClient) -> None:
    """The marker as the whole value (558_01_03) or member still deletes."""
    await setup(client, t={"type": "Property", "value": 1, "unitCode": "CEL"})
    resp = await client.patch(
        f"{BASE}/entities/{EID}/attrs",
        json={"address": {"type": "Property", "value": NULL}, "t": {"value": 2, "unitCode": NULL}},
    )
    assert resp.status_code == 204, resp.text
    body = await stored(client)
    assert "address" not in body and body["t"] == {"type": "Property", "value": 2}, body


async def test_temporal_instance_patch_refuses_a_nested_marker(
    client: httpx.AsyncClient,
) -> None:
    body = vehicle(p=[{"type": "Property", "value": {"a": 1}, "observedAt": T}])
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    got = (await client.get(f"{BASE}/temporal/entities/{EID}")).json()
    iid = got["p"][0]["instanceId"] if isinstance(got["p"], list) else got["p"]["instanceId"]
    resp = await client.patch(
        f"{BASE}/temporal/entities/{EID}/attrs/p/{iid}", json={"value": {"a": NULL}}
    )
    assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])


# -- temporal input: the marker as a first-level member value is no deletion's record -------


@pytest.mark.parametrize("member", ["expiresAt", "speed"])
async def test_temporal_upsert_refuses_a_first_level_marker(
    client: httpx.AsyncClient, member: str
) -> None:
    """5611_01_02: only an instance whose content is the marker records a deletion (4.5.7)."""
    speed = [{"type": "Property", "value": 1, "observedAt": T}]
    body = {"id": EID, "type": "Vehicle", "speed": speed, member: NULL}
    resp = await client.post(f"{BASE}/temporal/entities", json=body)
    assert NULL in str(problem(resp, 400, "BadRequestData")["detail"])
    resp = await client.get(
        f"{BASE}/temporal/entities/{EID}",
        params={"timerel": "before", "timeAt": "2030-01-01T00:00:00Z"},
    )
    assert resp.status_code == 404, resp.text


async def test_temporal_upsert_still_takes_a_deleted_instance(client: httpx.AsyncClient) -> None:
    """5611_01_01: {"type": "Property", "value": the marker, ...} is a deletion's record."""
    body = vehicle(speed=[{"type": "Property", "value": NULL, "observedAt": T}])
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201


# -- a body that is the Null alone ------------------------------------------------------------


async def test_replace_attribute_with_the_null_as_body_is_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    """Not an attribute at all, as a body that is not JSON is: InvalidRequest, which says
    how to delete."""
    await setup(client)
    resp = await client.put(f"{BASE}/entities/{EID}/attrs/address", json=NULL)
    assert "DELETE" in str(problem(resp, 400, "InvalidRequest")["detail"])
    assert (await stored(client))["address"]["value"] == ADDRESS

"""/entityOperations/create|upsert|update|delete|merge: per-entity results, 201/204/207."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, CORE, JSONLD, bad_request, create, get_entity, problem

OPS = f"{BASE}/entityOperations"


def ent(num: int, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Lamp:{num}", "type": "Lamp"}
    body.update(attrs)
    return body


def eid(n: int) -> str:
    return f"urn:ngsi-ld:Lamp:{n}"


async def stored_ids(client: httpx.AsyncClient) -> list[str]:
    resp = await client.get(f"{BASE}/entities", params={"type": "Lamp", "limit": "100"})
    assert resp.status_code == 200, resp.text
    return sorted(e["id"] for e in resp.json())


def check_batch_result(
    resp: httpx.Response, success: list[str], errors: dict[str, str]
) -> dict[str, Any]:
    """207 with BatchOperationResult: these ids succeeded, these failed with these error types."""
    assert resp.status_code == 207, f"expected 207, got {resp.status_code}: {resp.text}"
    result = resp.json()
    assert sorted(result["success"]) == sorted(success), result
    got = {e["entityId"]: e["error"] for e in result["errors"]}
    assert set(got) == set(errors), result
    for key, kind in errors.items():
        err = got[key]
        assert err["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}", err
        assert isinstance(err.get("title"), str) and isinstance(err.get("status"), int), err
    return dict(result)


# -- create ------------------------------------------------------------------------------------


async def test_create_all_is_201_with_ids(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/create", json=[ent(1, on=True), ent(2, on=False)])
    assert resp.status_code == 201, resp.text
    assert sorted(resp.json()) == [eid(1), eid(2)]
    assert await stored_ids(client) == [eid(1), eid(2)]
    assert (await get_entity(client, eid(1)))["on"]["value"] is True


async def test_create_trailing_slash(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/create/", json=[ent(1)])
    assert resp.status_code == 201, resp.text


async def test_create_one_bad_entity_never_blocks_the_rest(client: httpx.AsyncClient) -> None:
    await create(client, ent(3))
    batch = [
        ent(1),
        {"id": eid(2)},  # no type
        ent(3),  # exists
        {"id": "not a uri", "type": "Lamp"},
        ent(4, bad={"type": "Relationship", "object": "nope"}),
        ent(5),
    ]
    resp = await client.post(f"{OPS}/create", json=batch)
    check_batch_result(
        resp,
        success=[eid(1), eid(5)],
        errors={
            eid(2): "BadRequestData",
            eid(3): "AlreadyExists",
            "not a uri": "BadRequestData",
            eid(4): "BadRequestData",
        },
    )
    assert await stored_ids(client) == [eid(1), eid(3), eid(5)]


async def test_create_duplicate_in_one_batch(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/create", json=[ent(1, n=1), ent(1, n=2)])
    result = check_batch_result(resp, success=[eid(1)], errors={eid(1): "AlreadyExists"})
    assert len(result["errors"]) == 1
    assert (await get_entity(client, eid(1)))["n"]["value"] == 1


@pytest.mark.parametrize("body", [{"id": "urn:a:b", "type": "Lamp"}, "x", 3])
async def test_create_needs_an_array(client: httpx.AsyncClient, body: Any) -> None:
    resp = await client.post(f"{OPS}/create", json=body)
    assert resp.status_code == 400, resp.text
    problem(resp, 400)


async def test_create_non_object_items_are_per_item_errors(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/create", json=[ent(1), "urn:ngsi-ld:Lamp:2", 7, None])
    assert resp.status_code == 207, resp.text
    result = resp.json()
    assert result["success"] == [eid(1)], result
    assert len(result["errors"]) == 3, result
    for err in result["errors"]:
        assert err["error"]["status"] == 400, err


@pytest.mark.parametrize("media", ["application/json", JSONLD])
@pytest.mark.parametrize("op", ["create", "upsert", "update", "merge"])
async def test_an_item_that_is_no_object_fails_alike_in_every_write(
    client: httpx.AsyncClient, op: str, media: str
) -> None:
    """What a single write answers for a body that is no entity, whatever the op or media
    type: an ld+json item was told it lacked an @context, a merge's a BadRequestData."""
    resp = await client.post(
        f"{OPS}/{op}", json=[7, "urn:ngsi-ld:Lamp:2", [], None], headers={"Content-Type": media}
    )
    assert resp.status_code == 207, resp.text
    errors = [e["error"] for e in resp.json()["errors"]]
    assert len(errors) == 4, errors
    for err in errors:
        assert err["type"] == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest", err
        assert err["detail"] == "an entity must be a non-empty JSON object", err


async def test_create_ld_json_each_entity_carries_its_context(client: httpx.AsyncClient) -> None:
    batch = [
        {**ent(1, brightness=5), "@context": [{"brightness": "https://ex.org/b"}, CORE]},
        {**ent(2, brightness=6), "@context": CORE},
    ]
    resp = await client.post(f"{OPS}/create", json=batch, headers={"Content-Type": JSONLD})
    assert resp.status_code == 201, resp.text
    one = await get_entity(client, eid(1))
    two = await get_entity(client, eid(2))
    assert one["https://ex.org/b"]["value"] == 5, one
    assert two["brightness"]["value"] == 6, two


async def test_create_ld_json_entity_without_context_fails_alone(client: httpx.AsyncClient) -> None:
    batch = [{**ent(1), "@context": CORE}, ent(2)]
    resp = await client.post(f"{OPS}/create", json=batch, headers={"Content-Type": JSONLD})
    check_batch_result(resp, success=[eid(1)], errors={eid(2): "BadRequestData"})


async def test_create_json_with_context_in_item_is_rejected(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/create", json=[ent(1), {**ent(2), "@context": CORE}])
    assert resp.status_code in (207, 400), resp.text
    if resp.status_code == 207:
        check_batch_result(resp, success=[eid(1)], errors={eid(2): "BadRequestData"})
    assert eid(2) not in await stored_ids(client)


# -- upsert ------------------------------------------------------------------------------------


async def test_upsert_all_new_is_201(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/upsert", json=[ent(1), ent(2)])
    assert resp.status_code == 201, resp.text
    assert sorted(resp.json()) == [eid(1), eid(2)]


async def test_upsert_all_existing_is_204(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    resp = await client.post(f"{OPS}/upsert", json=[ent(1, b=2)])
    assert resp.status_code == 204, resp.text
    assert resp.content == b""


async def test_upsert_mixed_is_201_with_created_ids(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    resp = await client.post(f"{OPS}/upsert", json=[ent(1, b=2), ent(2)])
    assert resp.status_code == 201, resp.text
    assert resp.json() == [eid(2)], "only the created ids are listed"


async def test_upsert_replace_is_the_default(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1, keep=1))
    for params in ({}, {"options": "replace"}):
        resp = await client.post(f"{OPS}/upsert", params=params, json=[ent(1, b=2)])
        assert resp.status_code == 204, resp.text
        body = await get_entity(client, eid(1))
        assert "a" not in body and "keep" not in body, f"replace drops old attrs: {body}"
        assert body["b"]["value"] == 2
        await client.post(f"{OPS}/upsert", json=[ent(1, a=1, keep=1)])


async def test_upsert_update_keeps_other_attributes(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1, keep=1))
    resp = await client.post(f"{OPS}/upsert", params={"options": "update"}, json=[ent(1, a=5, b=2)])
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, eid(1))
    assert body["a"]["value"] == 5 and body["b"]["value"] == 2 and body["keep"]["value"] == 1, body


async def test_upsert_replace_and_update_together_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{OPS}/upsert", params={"options": "replace,update"}, json=[ent(1)])
    bad_request(resp)
    assert await stored_ids(client) == []


async def test_upsert_with_errors_is_207(client: httpx.AsyncClient) -> None:
    await create(client, ent(1))
    resp = await client.post(f"{OPS}/upsert", json=[ent(1, x=1), {"id": eid(2)}, ent(3)])
    check_batch_result(resp, success=[eid(1), eid(3)], errors={eid(2): "BadRequestData"})
    assert await stored_ids(client) == [eid(1), eid(3)]


async def test_upsert_preserves_created_at(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    before = await get_entity(client, eid(1), {"options": "sysAttrs"})
    await client.post(f"{OPS}/upsert", json=[ent(1, a=2)])
    after = await get_entity(client, eid(1), {"options": "sysAttrs"})
    assert after["createdAt"] == before["createdAt"]
    assert after["modifiedAt"] > before["modifiedAt"]


# -- update ------------------------------------------------------------------------------------


async def test_update_all_is_204(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    await create(client, ent(2, a=1))
    resp = await client.post(f"{OPS}/update", json=[ent(1, a=2), ent(2, b=3)])
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, eid(1)))["a"]["value"] == 2
    two = await get_entity(client, eid(2))
    assert two["a"]["value"] == 1 and two["b"]["value"] == 3, two


async def test_update_unknown_entity_is_a_per_item_error(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    resp = await client.post(f"{OPS}/update", json=[ent(1, a=2), ent(9, a=2)])
    check_batch_result(resp, success=[eid(1)], errors={eid(9): "ResourceNotFound"})
    assert await stored_ids(client) == [eid(1)], "update never creates"


async def test_update_no_overwrite_keeps_values(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a=1))
    resp = await client.post(
        f"{OPS}/update", params={"options": "noOverwrite"}, json=[ent(1, a=2, b=2)]
    )
    assert resp.status_code == 207, resp.text
    body = await get_entity(client, eid(1))
    assert body["a"]["value"] == 1, f"noOverwrite must keep the old value: {body}"
    assert body["b"]["value"] == 2, f"the new attribute is appended (ETSI 005_02_03): {body}"
    (error,) = resp.json()["errors"]
    detail = error["error"]["detail"]
    assert detail.endswith(": a") and "appended" in detail, detail  # named as the body names it


async def test_update_ld_json_with_per_entity_context(client: httpx.AsyncClient) -> None:
    await create(client, ent(1))
    item = {**ent(1, level=3), "@context": [{"level": "https://ex.org/level"}, CORE]}
    resp = await client.post(f"{OPS}/update", json=[item], headers={"Content-Type": JSONLD})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, eid(1)))["https://ex.org/level"]["value"] == 3


# -- merge -------------------------------------------------------------------------------------


async def test_merge_all_is_204(client: httpx.AsyncClient) -> None:
    await create(client, ent(1, a={"type": "Property", "value": 1, "unitCode": "X"}, gone=1))
    resp = await client.post(
        f"{OPS}/merge",
        json=[
            {
                "id": eid(1),
                "a": {"type": "Property", "value": 2},
                "gone": "urn:ngsi-ld:null",
                "n": 1,
            }
        ],
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, eid(1))
    assert body["a"] == {"type": "Property", "value": 2, "unitCode": "X"}, body
    assert "gone" not in body and body["n"]["value"] == 1, body


async def test_merge_errors_are_per_item(client: httpx.AsyncClient) -> None:
    await create(client, ent(1))
    resp = await client.post(
        f"{OPS}/merge",
        json=[{"id": eid(1), "a": 1}, {"id": eid(9), "a": 1}, {"a": 1}, {"id": eid(1), "b": None}],
    )
    assert resp.status_code == 207, resp.text
    result = resp.json()
    assert result["success"] == [eid(1)], result
    kinds = sorted(e["error"]["type"].rsplit("/", 1)[-1] for e in result["errors"])
    assert kinds == ["BadRequestData", "BadRequestData", "ResourceNotFound"], result
    body = await get_entity(client, eid(1))
    assert body["a"]["value"] == 1 and "b" not in body


# -- delete ------------------------------------------------------------------------------------


async def test_delete_all_is_204(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[ent(1), ent(2), ent(3)])
    resp = await client.post(f"{OPS}/delete", json=[eid(1), eid(3)])
    assert resp.status_code == 204, resp.text
    assert await stored_ids(client) == [eid(2)]


async def test_delete_with_errors_is_207(client: httpx.AsyncClient) -> None:
    await client.post(f"{OPS}/create", json=[ent(1), ent(2)])
    resp = await client.post(f"{OPS}/delete", json=[eid(1), eid(7), "not a uri", eid(2)])
    check_batch_result(
        resp,
        success=[eid(1), eid(2)],
        errors={eid(7): "ResourceNotFound", "not a uri": "BadRequestData"},
    )
    assert await stored_ids(client) == []


async def test_delete_error_shows_a_non_string_id_briefly_and_as_json(
    client: httpx.AsyncClient,
) -> None:
    """An id that is no string is named by its JSON kind, not quoted whole as a Python repr
    (a 1 MB object came back as a 1 MB detail, `None` for null)."""
    resp = await client.post(
        f"{OPS}/delete", json=[{"id": eid(1), "pad": "x" * 100_000}, None, 7, [eid(1)]]
    )
    assert resp.status_code == 207, resp.text
    details = [e["error"]["detail"] for e in resp.json()["errors"]]
    assert details == [
        "entity id must be an absolute URI, got a JSON object",
        "entity id must be an absolute URI, got null",
        "entity id must be an absolute URI, got 7",
        "entity id must be an absolute URI, got a JSON array",
    ], details


async def test_delete_same_id_twice(client: httpx.AsyncClient) -> None:
    await create(client, ent(1))
    resp = await client.post(f"{OPS}/delete", json=[eid(1), eid(1)])
    check_batch_result(resp, success=[eid(1)], errors={eid(1): "ResourceNotFound"})


@pytest.mark.parametrize("body", [{"id": "urn:a:b"}, "urn:a:b"])
async def test_delete_needs_an_array(client: httpx.AsyncClient, body: Any) -> None:
    problem(await client.post(f"{OPS}/delete", json=body), 400)


async def test_batch_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    for op in ("create", "upsert", "update", "delete", "merge"):
        resp = await client.post(
            f"{OPS}/{op}", content=b"[]", headers={"Content-Type": "text/plain"}
        )
        problem(resp, 415, "UnsupportedMediaType")


async def test_batch_invalid_json_is_400(client: httpx.AsyncClient) -> None:
    for op in ("create", "upsert", "update", "delete", "merge"):
        resp = await client.post(
            f"{OPS}/{op}", content=b"[{", headers={"Content-Type": "application/json"}
        )
        problem(resp, 400, "InvalidRequest")


async def test_batch_records_temporal_history(client: httpx.AsyncClient) -> None:
    await client.post(
        f"{OPS}/create",
        json=[ent(1, level={"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z"})],
    )
    await client.post(
        f"{OPS}/upsert",
        params={"options": "update"},
        json=[ent(1, level={"type": "Property", "value": 2, "observedAt": "2024-01-02T00:00:00Z"})],
    )
    resp = await client.get(f"{BASE}/temporal/entities/{eid(1)}")
    assert resp.status_code == 200, resp.text
    values = [i["value"] for i in resp.json()["level"]]
    assert values == [1, 2], resp.json()

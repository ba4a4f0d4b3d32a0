"""Through the temporal API an instance observed at the same time as another of its attribute
and datasetId replaces it, whether the two come in two requests or in one body; entity writes
keep every instance, in one request or in several (docs/architecture.md, Temporal)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, get_temporal

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Meter:same1"
AT = "2024-01-01T00:00:00Z"


def reading(value: Any, at: str = AT, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at, **extra}


async def _values(client: httpx.AsyncClient, attr: str = "p") -> list[Any]:
    body = await get_temporal(client, EID, options="temporalValues")
    records = body[attr] if isinstance(body[attr], list) else [body[attr]]
    return sorted(pair[0] for rec in records for pair in rec["values"])


@pytest.mark.parametrize("how", ["create", "append"])
async def test_one_body_with_one_time_twice_keeps_the_last(
    client: httpx.AsyncClient, how: str
) -> None:
    """Two instances of one time in one body were both stored, while the same two in two
    requests left one; the later one wins either way (the same instant spelled with a
    fraction is the same time)."""
    twice = [reading(1), reading(2, "2024-01-01T00:00:00.000Z"), reading(3, "2024-01-02T00:00:00Z")]
    if how == "create":
        resp = await client.post(T, json={"id": EID, "type": "Meter", "p": twice})
        assert resp.status_code == 201, resp.text
    else:
        first = {"id": EID, "type": "Meter", "q": reading(0)}
        assert (await client.post(T, json=first)).status_code == 201
        resp = await client.post(f"{T}/{EID}/attrs", json={"p": twice})
        assert resp.status_code == 204, resp.text
    assert await _values(client) == [2, 3]


async def test_one_body_keeps_datasets_and_unobserved_instances_apart(
    client: httpx.AsyncClient,
) -> None:
    """Only an observation of the same attribute, datasetId and time is replaced."""
    body = {
        "id": EID,
        "type": "Meter",
        "p": [
            reading(1),
            reading(2, datasetId="urn:ngsi-ld:Dataset:a"),
            {"type": "Property", "value": 3},
            {"type": "Property", "value": 4},
        ],
    }
    assert (await client.post(T, json=body)).status_code == 201
    assert await _values(client) == [1, 2, 3, 4]


async def test_a_term_and_its_iri_in_one_body_are_one_attribute(
    client: httpx.AsyncClient,
) -> None:
    """Keys that expand to one attribute hold one series: the same time twice is one."""
    body = {
        "id": EID,
        "type": "Meter",
        "p": reading(1),
        "https://uri.etsi.org/ngsi-ld/default-context/p": reading(2),
    }
    assert (await client.post(T, json=body)).status_code == 201
    assert await _values(client) == [2]


async def test_entity_writes_keep_every_instance_in_one_batch_as_in_two(
    client: httpx.AsyncClient,
) -> None:
    """Entity writes append: one batch updating the same attribute twice at one observedAt
    records both, as two requests do."""
    create = await client.post(
        f"{BASE}/entities", json={"id": EID, "type": "Meter", "p": reading(0)}
    )
    assert create.status_code == 201, create.text
    batch = [{"id": EID, "type": "Meter", "p": reading(n)} for n in (1, 2)]
    resp = await client.post(
        f"{BASE}/entityOperations/upsert", params={"options": "update"}, json=batch
    )
    assert resp.status_code == 204, resp.text
    for n in (3, 4):
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs", json={"p": reading(n)})
        assert resp.status_code == 204, resp.text
    assert await _values(client) == [0, 1, 2, 3, 4]


async def test_a_temporal_write_replaces_only_what_the_temporal_api_sent(
    client: httpx.AsyncClient,
) -> None:
    """A POST at an instant erased every instance there, the three that a create and two
    partial updates (which keep observedAt) recorded on purpose too; now it replaces only an
    observation the temporal API stored, and sent again replaces that one alone."""
    create = await client.post(
        f"{BASE}/entities", json={"id": EID, "type": "Meter", "p": reading(1)}
    )
    assert create.status_code == 201, create.text
    for n in (2, 3):
        resp = await client.patch(f"{BASE}/entities/{EID}/attrs/p", json={"value": n})
        assert resp.status_code == 204, resp.text
    for n in (99, 98):
        resp = await client.post(f"{T}/{EID}/attrs", json={"p": reading(n)})
        assert resp.status_code == 204, resp.text
    assert await _values(client) == [1, 2, 3, 98]


async def test_a_patched_observation_is_still_replaced_when_sent_again(
    client: httpx.AsyncClient,
) -> None:
    """A PATCH of an instance the temporal API sent keeps it the temporal API's."""
    assert (
        await client.post(T, json={"id": EID, "type": "Meter", "p": reading(1)})
    ).status_code == 201
    body = await get_temporal(client, EID)
    iid = body["p"]["instanceId"] if isinstance(body["p"], dict) else body["p"][0]["instanceId"]
    resp = await client.patch(f"{T}/{EID}/attrs/p/{iid}", json={"value": 2})
    assert resp.status_code == 204, resp.text
    assert await _values(client) == [2]
    assert (await client.post(f"{T}/{EID}/attrs", json={"p": reading(3)})).status_code == 204
    assert await _values(client) == [3]


async def test_a_patch_moving_an_observation_onto_another_replaces_it(
    client: httpx.AsyncClient,
) -> None:
    """A PATCH that gives an observation the time of another the temporal API stored kept
    both (3 and 10 at one instant), while a POST at that time replaces it."""
    later = "2024-01-02T00:00:00Z"
    body = {"id": EID, "type": "Meter", "p": [reading(3), reading(10, later)]}
    assert (await client.post(T, json=body)).status_code == 201
    insts = (await get_temporal(client, EID))["p"]
    iid = next(i["instanceId"] for i in insts if i["value"] == 10)
    resp = await client.patch(f"{T}/{EID}/attrs/p/{iid}", json={"observedAt": AT})
    assert resp.status_code == 204, resp.text
    assert await _values(client) == [10]

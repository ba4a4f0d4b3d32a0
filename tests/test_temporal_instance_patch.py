"""PATCH of one temporal instance: members that do not fit its type, sub-attribute fragments."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, get_temporal, problem

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Car:p1"
D1 = "2024-01-01T00:00:00Z"


@pytest.fixture
async def car(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        "id": EID,
        "type": "Car",
        "speed": [{"type": "Property", "value": 50, "observedAt": D1}],
        "owner": [{"type": "Relationship", "object": "urn:o:2", "observedAt": D1}],
        "state": [{"type": "Property", "value": "on", "observedAt": D1}],
    }
    assert (await client.post(T, json=body)).status_code == 201
    return await get_temporal(client, EID)


@pytest.mark.parametrize(
    ("attr", "body", "member"),
    [
        pytest.param("owner", {"value": "urn:o:9"}, "value", id="value-on-a-relationship"),
        pytest.param("speed", {"object": "urn:o:9"}, "object", id="object-on-a-property"),
        pytest.param(
            "speed", {"type": "Property", "object": "urn:o:9"}, "object", id="typed-fragment"
        ),
        pytest.param("speed", {"languageMap": {"en": "x"}}, "languageMap", id="languagemap"),
    ],
)
async def test_a_member_that_does_not_fit_the_instance_is_400(
    client: httpx.AsyncClient, car: dict[str, Any], attr: str, body: Any, member: str
) -> None:
    """It answered 204 and changed nothing: the member was dropped in the merge."""
    iid = car[attr][0]["instanceId"]
    err = problem(await client.patch(f"{T}/{EID}/attrs/{attr}/{iid}", json=body), 400)
    assert err["type"].endswith("BadRequestData")
    assert repr(member) in err["detail"], err
    assert await get_temporal(client, EID) == car, "nothing changed"


async def test_a_member_that_fits_is_merged(client: httpx.AsyncClient, car: Any) -> None:
    iid = car["owner"][0]["instanceId"]
    resp = await client.patch(f"{T}/{EID}/attrs/owner/{iid}", json={"object": "urn:o:9"})
    assert resp.status_code == 204, resp.text
    assert (await get_temporal(client, EID))["owner"][0]["object"] == "urn:o:9"


async def test_a_sub_attribute_alone_is_a_fragment_of_the_instance(
    client: httpx.AsyncClient, car: Any
) -> None:
    """{"src": {...}} was taken for an instance of attribute src: a 400, though the same
    fragment with "type" added was merged."""
    iid = car["speed"][0]["instanceId"]
    url = f"{T}/{EID}/attrs/speed/{iid}"
    resp = await client.patch(url, json={"src": {"type": "Property", "value": "wheel"}})
    assert resp.status_code == 204, resp.text
    after = (await get_temporal(client, EID))["speed"][0]
    assert (after["value"], after["src"]["value"]) == (50, "wheel"), after
    resp = await client.patch(url, json={"src": {"type": "Property", "value": "gps"}})
    assert resp.status_code == 204, resp.text
    after = (await get_temporal(client, EID))["speed"][0]
    assert after["src"]["value"] == "gps", "a sub-attribute the instance has merges again"


async def test_a_body_under_another_attribute_name_is_still_400(
    client: httpx.AsyncClient, car: Any
) -> None:
    iid = car["speed"][0]["instanceId"]
    body = {"state": {"type": "Property", "value": "off"}}
    err = problem(await client.patch(f"{T}/{EID}/attrs/speed/{iid}", json=body), 400)
    assert "state" in err["detail"]
    assert await get_temporal(client, EID) == car


@pytest.mark.parametrize(
    "key",
    [
        "speed",
        "ngsi-ld:default-context/speed",
        "https://uri.etsi.org/ngsi-ld/default-context/speed",
    ],
)
async def test_a_body_under_the_attribute_s_name_in_any_form_is_the_instance(
    client: httpx.AsyncClient, car: Any, key: str
) -> None:
    """Under its full IRI the body was refused as "another attribute"."""
    iid = car["speed"][0]["instanceId"]
    resp = await client.patch(f"{T}/{EID}/attrs/speed/{iid}", json={key: {"value": 60}})
    assert resp.status_code == 204, resp.text
    assert (await get_temporal(client, EID))["speed"][0]["value"] == 60


async def test_the_null_marker_removes_a_unitcode_but_not_the_observedat(
    client: httpx.AsyncClient,
) -> None:
    """An instance's observedAt places it in time (decision 024), so a null there stays a 400
    that says so; a unitCode goes, as it does in a partial update of the entity."""
    body = {"id": EID, "type": "Car", "speed": [{"type": "Property", "value": 50}]}
    body["speed"][0] |= {"observedAt": D1, "unitCode": "KMH"}
    assert (await client.post(T, json=body)).status_code == 201
    iid = (await get_temporal(client, EID))["speed"][0]["instanceId"]
    null = "urn:ngsi-ld:null"
    resp = await client.patch(f"{T}/{EID}/attrs/speed/{iid}", json={"observedAt": null})
    assert "places it in time" in problem(resp, 400, "BadRequestData")["detail"]
    resp = await client.patch(f"{T}/{EID}/attrs/speed/{iid}", json={"unitCode": null})
    assert resp.status_code == 204, resp.text
    speed = (await get_temporal(client, EID))["speed"][0]
    assert speed["observedAt"] == D1 and "unitCode" not in speed, speed


async def test_a_json_null_observedat_says_why_it_cannot_go(client: httpx.AsyncClient) -> None:
    """It answered that the null marker removes it, which here is a 400 as well."""
    body = {"id": EID, "type": "Car", "speed": [{"type": "Property", "value": 50}]}
    body["speed"][0] |= {"observedAt": D1}
    assert (await client.post(T, json=body)).status_code == 201
    iid = (await get_temporal(client, EID))["speed"][0]["instanceId"]
    for fragment in ({"observedAt": None}, {"type": "Property", "value": 2, "observedAt": None}):
        resp = await client.patch(f"{T}/{EID}/attrs/speed/{iid}", json=fragment)
        detail = problem(resp, 400, "BadRequestData")["detail"]
        assert "places it in time" in detail and "urn:ngsi-ld:null" not in detail, detail
    assert (await get_temporal(client, EID))["speed"][0]["observedAt"] == D1

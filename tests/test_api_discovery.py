"""/types and /attributes: what the hub holds, in brief and in detail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, CORE, JSONLD, VOCAB, ContextServer, bad_request, create, link, problem

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
ENTITIES: list[dict[str, Any]] = [
    {
        "id": "urn:ngsi-ld:Building:1",
        "type": "Building",
        "height": 10,
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
    },
    {
        "id": "urn:ngsi-ld:Building:2",
        "type": ["Building", "Shop"],
        "height": 20,
        "owner": "someone",
    },
    {"id": "urn:ngsi-ld:Tree:1", "type": "Tree", "species": {"languageMap": {"en": "oak"}}},
]


@pytest.fixture
async def data(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entityOperations/create", json=ENTITIES)
    assert resp.status_code == 201, resp.text


async def test_types(client: httpx.AsyncClient, data: None) -> None:
    for path in ("/types", "/types/"):
        resp = await client.get(BASE + path)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["type"] == "EntityTypeList", body
        assert body["id"].startswith("urn:"), body
        assert sorted(body["typeList"]) == ["Building", "Shop", "Tree"], body


async def test_types_details(client: httpx.AsyncClient, data: None) -> None:
    resp = await client.get(f"{BASE}/types", params={"details": "true"})
    assert resp.status_code == 200, resp.text
    body = {t["typeName"]: t for t in resp.json()}
    assert set(body) == {"Building", "Shop", "Tree"}, body
    building = body["Building"]
    assert building["type"] == "EntityType" and building["id"] == DEFAULT + "Building", building
    assert sorted(building["attributeNames"]) == ["height", "location", "owner"], building
    assert sorted(body["Shop"]["attributeNames"]) == ["height", "owner"]
    assert body["Tree"]["attributeNames"] == ["species"]


async def test_type_info(client: httpx.AsyncClient, data: None) -> None:
    resp = await client.get(f"{BASE}/types/Building")
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["type"] == "EntityTypeInfo", info
    assert info["id"] == DEFAULT + "Building" and info["typeName"] == "Building", info
    assert info["entityCount"] == 2, info
    details = {a["attributeName"]: a for a in info["attributeDetails"]}
    assert set(details) == {"height", "location", "owner"}, details
    assert details["height"]["type"] == "Attribute"
    assert details["height"]["id"] == DEFAULT + "height"
    assert details["height"]["attributeTypes"] == ["Property"]
    assert sorted(details["owner"]["attributeTypes"]) == ["Property", "Relationship"]
    assert details["location"]["attributeTypes"] == ["GeoProperty"]
    shop = (await client.get(f"{BASE}/types/Shop")).json()
    assert shop["entityCount"] == 1, shop
    # the details describe this type's entities: the Shop's owner is a Property only
    owner = {a["attributeName"]: a for a in shop["attributeDetails"]}["owner"]
    assert owner["attributeTypes"] == ["Property"], shop


async def test_type_info_by_full_iri(client: httpx.AsyncClient, data: None) -> None:
    from urllib.parse import quote

    resp = await client.get(f"{BASE}/types/{quote(DEFAULT + 'Tree', safe='')}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["entityCount"] == 1


async def test_unknown_type_is_404(client: httpx.AsyncClient, data: None) -> None:
    problem(await client.get(f"{BASE}/types/Castle"), 404, "ResourceNotFound")


async def test_attributes(client: httpx.AsyncClient, data: None) -> None:
    for path in ("/attributes", "/attributes/"):
        resp = await client.get(BASE + path)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["type"] == "AttributeList" and body["id"].startswith("urn:"), body
        assert sorted(body["attributeList"]) == ["height", "location", "owner", "species"], body


async def test_attributes_details(client: httpx.AsyncClient, data: None) -> None:
    resp = await client.get(f"{BASE}/attributes", params={"details": "true"})
    assert resp.status_code == 200, resp.text
    body = {a["attributeName"]: a for a in resp.json()}
    height = body["height"]
    assert height["type"] == "Attribute" and height["id"] == DEFAULT + "height", height
    assert height.get("attributeCount", 2) == 2, height
    assert height.get("attributeTypes", ["Property"]) == ["Property"], height
    assert sorted(height["typeNames"]) == ["Building", "Shop"], height
    assert body["species"].get("attributeTypes", ["LanguageProperty"]) == ["LanguageProperty"]
    assert body["species"]["typeNames"] == ["Tree"]


async def test_attribute_info(client: httpx.AsyncClient, data: None) -> None:
    resp = await client.get(f"{BASE}/attributes/owner")
    assert resp.status_code == 200, resp.text
    owner = resp.json()
    assert owner["attributeName"] == "owner" and owner["attributeCount"] == 2, owner
    assert sorted(owner["attributeTypes"]) == ["Property", "Relationship"], owner
    assert sorted(owner["typeNames"]) == ["Building", "Shop"], owner
    problem(await client.get(f"{BASE}/attributes/colour"), 404, "ResourceNotFound")


async def test_discovery_on_empty_hub(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == []
    assert (await client.get(f"{BASE}/attributes")).json()["attributeList"] == []
    assert (await client.get(f"{BASE}/types", params={"details": "true"})).json() == []
    problem(await client.get(f"{BASE}/types/Building"), 404, "ResourceNotFound")


async def test_discovery_follows_deletes(client: httpx.AsyncClient, data: None) -> None:
    await client.delete(f"{BASE}/entities/urn:ngsi-ld:Tree:1")
    assert "Tree" not in (await client.get(f"{BASE}/types")).json()["typeList"]
    assert "species" not in (await client.get(f"{BASE}/attributes")).json()["attributeList"]


async def test_discovery_speaks_the_request_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    url = context_server.url("/ctx/discovery.jsonld")
    resp = await client.post(
        f"{BASE}/entities",
        json={"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": 3},
        headers={"Link": link(url)},
    )
    assert resp.status_code == 201, resp.text
    assert (await client.get(f"{BASE}/types", headers={"Link": link(url)})).json()["typeList"] == [
        "Sensor"
    ]
    assert (await client.get(f"{BASE}/types")).json()["typeList"] == [VOCAB + "Sensor"]
    resp = await client.get(f"{BASE}/types/Sensor", headers={"Link": link(url)})
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == VOCAB + "Sensor"
    problem(await client.get(f"{BASE}/types/Sensor"), 404, "ResourceNotFound")
    attrs = (await client.get(f"{BASE}/attributes", headers={"Link": link(url)})).json()
    assert attrs["attributeList"] == ["temperature"], attrs
    resp = await client.get(f"{BASE}/attributes/temperature", headers={"Link": link(url)})
    assert resp.status_code == 200 and resp.json()["id"] == VOCAB + "temperature", resp.text


async def test_discovery_as_json_ld(client: httpx.AsyncClient, data: None) -> None:
    resp = await client.get(f"{BASE}/types", headers={"Accept": JSONLD})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["@context"] == CORE or CORE in body["@context"], body
    resp = await client.get(f"{BASE}/types", headers={"Accept": "text/html"})
    problem(resp, 406, "NotAcceptable")


async def test_bad_details_flag_is_400(client: httpx.AsyncClient, data: None) -> None:
    bad_request(await client.get(f"{BASE}/types", params={"details": "yes"}))
    bad_request(await client.get(f"{BASE}/attributes", params={"details": "1"}))


@pytest.mark.parametrize("details", ["false", "true"])
async def test_types_and_attributes_page_by_limit_and_offset(
    client: httpx.AsyncClient, details: str
) -> None:
    """limit and offset were accepted and ignored: every page was the whole list."""
    for t in ("A", "B", "C"):
        await create(client, {"id": f"urn:ngsi-ld:{t}:1", "type": t, f"p{t}": 1})

    async def names(path: str, **page: str) -> list[str]:
        resp = await client.get(f"{BASE}/{path}", params={"details": details, **page})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if details == "true":
            return [i.get("typeName") or i.get("attributeName") for i in body]
        return body.get("typeList") or body.get("attributeList")

    assert await names("types", limit="1", offset="1") == ["B"]
    assert await names("types") == ["A", "B", "C"]
    assert await names("attributes", limit="2") == ["pA", "pB"]
    problem(await client.get(f"{BASE}/types", params={"limit": "-1"}), 400)


@pytest.mark.parametrize(
    "path",
    [
        "types",
        "types/Building",
        "attributes",
        "attributes/height",
    ],
)
async def test_discovery_checks_its_query_parameters(
    client: httpx.AsyncClient, data: None, path: str
) -> None:
    """/types/{type} and /attributes/{attr} never read their query string (an unknown or
    repeated parameter was answered 200), and `local` was taken with any value."""
    url = f"{BASE}/{path}"
    assert (await client.get(url, params={"local": "true"})).status_code == 200
    problem(await client.get(url, params={"local": "yes"}), 400, "BadRequestData")
    problem(await client.get(url, params={"bogus": "1"}), 400, "InvalidRequest")
    problem(await client.get(f"{url}?local=true&local=false"), 400, "InvalidRequest")

"""/entities: create, retrieve (every representation), replace, merge and delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import BASE, CORE, JSONLD, bad_request, create, get_entity, problem

EID = "urn:ngsi-ld:Sensor:s1"

# One attribute of every NGSI-LD attribute type, with sub-attributes, observedAt, unitCode,
# objectType and a multi-attribute (datasetId), all in normalized form.
FULL: dict[str, Any] = {
    "id": "urn:ngsi-ld:Vehicle:A4567",
    "type": "Vehicle",
    "speed": [
        {
            "type": "Property",
            "value": 55,
            "unitCode": "KMH",
            "observedAt": "2024-03-01T10:00:00Z",
            "source": {"type": "Property", "value": "Speedometer"},
        },
        {
            "type": "Property",
            "value": 54.5,
            "datasetId": "urn:ngsi-ld:Dataset:gps",
            "source": {"type": "Property", "value": "GPS"},
        },
    ],
    "isParked": {
        "type": "Relationship",
        "object": "urn:ngsi-ld:OffStreetParking:Downtown1",
        "objectType": "OffStreetParking",
        "observedAt": "2024-03-01T10:00:00Z",
        "providedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Person:Bob"},
    },
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.4, 52.5]}},
    "street": {
        "type": "LanguageProperty",
        "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"},
    },
    "category": {"type": "VocabProperty", "vocab": "nonCommercial"},
    "tyreTreadDepths": {"type": "ListProperty", "valueList": [300, 300, 120], "unitCode": "MMT"},
    "config": {"type": "JsonProperty", "json": {"mode": "eco", "levels": [1, 2, {"x": None}]}},
    "brandName": {
        "type": "Property",
        "value": "Mercedes",
        "rating": {"type": "Property", "value": 4, "reviewer": {"type": "Property", "value": "x"}},
    },
    "misc": {"type": "Property", "value": {"nested": {"deep": [1, 2, 3]}, "flag": True}},
}

ROUTE: dict[str, Any] = {
    "type": "ListRelationship",
    "objectList": [
        {"object": "urn:ngsi-ld:City:Antwerp"},
        {"object": "urn:ngsi-ld:City:Rotterdam"},
    ],
}


def sensor(eid: str = EID, **attrs: Any) -> dict[str, Any]:
    """A small entity with a temperature and a name."""
    body: dict[str, Any] = {
        "id": eid,
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 21.5, "unitCode": "CEL"},
        "name": {"type": "Property", "value": "kitchen"},
    }
    body.update(attrs)
    return body


# -- create ------------------------------------------------------------------------------------


async def test_create_answers_201_with_location(client: httpx.AsyncClient) -> None:
    resp = await create(client, sensor())
    assert resp.headers["location"] == f"{BASE}/entities/{EID}", resp.headers
    assert resp.content == b"", "201 on create carries no body"
    again = await client.get(resp.headers["location"])
    assert again.status_code == 200, again.text
    assert again.json()["id"] == EID


async def test_create_trailing_slash(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entities/", json=sensor())
    assert resp.status_code == 201, resp.text


async def test_create_existing_id_is_409_already_exists(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.post(
        f"{BASE}/entities", json=sensor(name={"type": "Property", "value": "x"})
    )
    problem(resp, 409, "AlreadyExists")
    body = await get_entity(client, EID)
    assert body["name"]["value"] == "kitchen", "a refused create must not overwrite"


@pytest.mark.parametrize(
    "eid",
    ["not a uri", "plainname", "", 42, None, "urn:ngsi-ld:with space"],
    ids=["spaces", "no-scheme", "empty", "number", "null", "space-in-urn"],
)
async def test_create_id_must_be_a_uri(client: httpx.AsyncClient, eid: Any) -> None:
    resp = await client.post(f"{BASE}/entities", json={"id": eid, "type": "Sensor"})
    problem(resp, 400, "BadRequestData")


async def test_create_without_id_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entities", json={"type": "Sensor"})
    problem(resp, 400, "BadRequestData")


async def test_create_without_type_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entities", json={"id": EID, "temperature": 3})
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")


@pytest.mark.parametrize("raw", [b"{not json", b'{"id": "urn:a:b", "type": "T"', b"", b"\xff\xfe"])
async def test_create_invalid_json_is_400_invalid_request(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    resp = await client.post(
        f"{BASE}/entities", content=raw, headers={"Content-Type": "application/json"}
    )
    problem(resp, 400, "InvalidRequest")


@pytest.mark.parametrize("raw", [b"[]", b'"a string"', b"12", b"null"])
async def test_create_non_object_body_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    resp = await client.post(
        f"{BASE}/entities", content=raw, headers={"Content-Type": "application/json"}
    )
    problem(resp, 400)


@pytest.mark.parametrize("media", ["text/plain", "application/xml", "multipart/form-data"])
async def test_create_wrong_content_type_is_415(client: httpx.AsyncClient, media: str) -> None:
    resp = await client.post(
        f"{BASE}/entities",
        content=b'{"id": "urn:a:b", "type": "T"}',
        headers={"Content-Type": media},
    )
    problem(resp, 415, "UnsupportedMediaType")


async def test_create_without_content_type_is_415(client: httpx.AsyncClient) -> None:
    req = client.build_request(
        "POST", f"{BASE}/entities", content=b'{"id": "urn:a:b", "type": "T"}'
    )
    assert "content-type" not in req.headers
    problem(await client.send(req), 415, "UnsupportedMediaType")


async def test_create_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{BASE}/entities",
        content=b'{"id": "urn:a:b", "type": "T"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 201, resp.text


async def test_create_ld_json_needs_context_in_body(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entities", json=sensor(), headers={"Content-Type": JSONLD})
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")


async def test_create_plain_json_must_not_carry_context(client: httpx.AsyncClient) -> None:
    resp = await client.post(f"{BASE}/entities", json={**sensor(), "@context": CORE})
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")


async def test_create_ld_json_with_inline_context(client: httpx.AsyncClient) -> None:
    ctx = [{"temperature": "https://ex.org/temp"}, CORE]
    resp = await client.post(
        f"{BASE}/entities",
        json={**sensor(), "@context": ctx},
        headers={"Content-Type": JSONLD},
    )
    assert resp.status_code == 201, resp.text
    # Read back with the core context only: the attribute shows as its full IRI.
    body = await get_entity(client, EID)
    assert "https://ex.org/temp" in body, (
        f"temperature should be expanded by the inline context: {body}"
    )
    assert body["https://ex.org/temp"]["value"] == 21.5


async def test_create_accepts_at_id_and_at_type(client: httpx.AsyncClient) -> None:
    await create(client, {"@id": EID, "@type": "Sensor", "temperature": 1})
    body = await get_entity(client, EID)
    assert body["id"] == EID and body["type"] == "Sensor", body


async def test_create_with_several_types(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": ["Sensor", "Device"]})
    body = await get_entity(client, EID)
    assert sorted(body["type"]) == ["Device", "Sensor"], body


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Banana", "value": 1},
        {"type": "Property"},
        {"type": "Property", "value": None},
        {"type": "Relationship", "object": "not a uri"},
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": "x"}},
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 500, 500, 500]}},
        {"type": "LanguageProperty", "languageMap": "english"},
        {"type": "ListProperty", "valueList": 3},
        {"type": "Property", "value": 1, "observedAt": "yesterday"},
        {"type": "Property", "value": 1, "datasetId": "not a uri"},
        None,
    ],
    ids=[
        "unknown-type",
        "no-value",
        "null-value",
        "bad-object",
        "bad-coordinates",
        "point-too-many-coordinates",
        "bad-languagemap",
        "bad-valuelist",
        "bad-observedat",
        "bad-datasetid",
        "null",
    ],
)
async def test_create_with_invalid_attribute_is_400_and_stores_nothing(
    client: httpx.AsyncClient, attr: Any
) -> None:
    resp = await client.post(f"{BASE}/entities", json=sensor(bad=attr))
    problem(resp, 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")


@pytest.mark.parametrize("name", ["has space", "semi;colon", "a=b", "par(en)", "quo'te", "<tag>"])
async def test_create_with_forbidden_attribute_name_is_400(
    client: httpx.AsyncClient, name: str
) -> None:
    resp = await client.post(f"{BASE}/entities", json=sensor(**{name: 1}))
    problem(resp, 400, "BadRequestData")


@pytest.mark.parametrize(
    "body",
    [
        {"ngsi-ld:scope": {"type": "Property", "value": 3}},
        {"https://uri.etsi.org/ngsi-ld/modifiedAt": {"type": "Property", "value": 3}},
        {"ngsi-ld:createdAt": 3},
        {"p": {"type": "Property", "value": 1, "ngsi-ld:observedAt": 2}},
        {"p": {"type": "Property", "value": 1, "ngsi-ld:hasValue": 2}},
    ],
    ids=["scope", "modifiedAt-iri", "createdAt", "sub-observedAt", "sub-value"],
)
async def test_a_name_that_expands_to_an_ngsi_ld_member_is_400(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """`ngsi-ld:scope` was stored as an attribute and hid the entity's real scope on reads."""
    problem(await client.post(f"{BASE}/entities", json=sensor(**body)), 400, "BadRequestData")
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")
    await create(client, {**sensor(p={"type": "Property", "value": 1}), "scope": "/a"})
    for method, path in (("PATCH", ""), ("POST", "/attrs"), ("PATCH", "/attrs")):
        resp = await client.request(method, f"{BASE}/entities/{EID}{path}", json=body)
        problem(resp, 400, "BadRequestData")
    doc = await get_entity(client, EID, {"options": "sysAttrs"})
    assert doc["scope"] == "/a" and doc["p"]["value"] == 1, doc


async def test_location_must_be_a_geoproperty(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        f"{BASE}/entities", json=sensor(location={"type": "Property", "value": 1})
    )
    problem(resp, 400, "BadRequestData")


async def test_duplicate_dataset_ids_are_rejected(client: httpx.AsyncClient) -> None:
    twice = [
        {"type": "Property", "value": 1, "datasetId": "urn:ds:1"},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:1"},
    ]
    problem(await client.post(f"{BASE}/entities", json=sensor(speed=twice)), 400, "BadRequestData")


# -- round trips ---------------------------------------------------------------------------------


async def test_every_attribute_type_round_trips(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    body = await get_entity(client, FULL["id"])
    assert body == FULL, f"normalized GET must give back what was created:\n{body}\n!=\n{FULL}"


async def test_list_relationship_round_trips(client: httpx.AsyncClient) -> None:
    await create(client, {"id": EID, "type": "Vehicle", "route": ROUTE})
    body = await get_entity(client, EID)
    assert body["route"] == ROUTE, (
        f"ListRelationship objectList must keep its form: {body['route']}"
    )


async def test_sys_attrs_appear_on_entity_and_attributes(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    body = await get_entity(client, EID, {"options": "sysAttrs"})
    for holder in (body, body["temperature"], body["name"]):
        assert "createdAt" in holder and "modifiedAt" in holder, f"sysAttrs missing: {holder}"
        assert holder["createdAt"].endswith("Z"), holder["createdAt"]
    plain = await get_entity(client, EID)
    assert "createdAt" not in plain and "createdAt" not in plain["temperature"], plain


async def test_concise_input_is_accepted(client: httpx.AsyncClient) -> None:
    concise = {
        "id": EID,
        "type": "Sensor",
        "temperature": 21.5,
        "name": "kitchen",
        "flags": [1, 2, 3],
        "withUnit": {"value": 3, "unitCode": "CEL"},
        "owner": {"object": "urn:ngsi-ld:Person:Ann"},
        "location": {"type": "Point", "coordinates": [2.0, 41.0]},
        "street": {"languageMap": {"en": "Main Street"}},
        "kind": {"vocab": "indoor"},
        "readings": {"valueList": [1, 2]},
        "blob": {"json": {"a": 1}},
        "obj": {"a": {"b": 1}},
        "observed": {"value": 7, "observedAt": "2024-01-01T00:00:00Z", "accuracy": 0.5},
    }
    await create(client, concise)
    body = await get_entity(client, EID)
    assert body["temperature"] == {"type": "Property", "value": 21.5}
    assert body["name"] == {"type": "Property", "value": "kitchen"}
    assert body["flags"] == {"type": "Property", "value": [1, 2, 3]}
    assert body["withUnit"] == {"type": "Property", "value": 3, "unitCode": "CEL"}
    assert body["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:Person:Ann"}
    assert body["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [2.0, 41.0]},
    }
    assert body["street"] == {"type": "LanguageProperty", "languageMap": {"en": "Main Street"}}
    assert body["kind"] == {"type": "VocabProperty", "vocab": "indoor"}
    assert body["readings"] == {"type": "ListProperty", "valueList": [1, 2]}
    assert body["blob"] == {"type": "JsonProperty", "json": {"a": 1}}
    assert body["obj"] == {"type": "Property", "value": {"a": {"b": 1}}}
    assert body["observed"] == {
        "type": "Property",
        "value": 7,
        "observedAt": "2024-01-01T00:00:00Z",
        "accuracy": {"type": "Property", "value": 0.5},
    }


# -- representations ---------------------------------------------------------------------------


async def test_key_values(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    for params in ({"options": "keyValues"}, {"options": "simplified"}, {"format": "simplified"}):
        body = await get_entity(client, FULL["id"], params)
        assert body["id"] == FULL["id"] and body["type"] == "Vehicle"
        assert body["speed"] == {"dataset": {"@none": 55, "urn:ngsi-ld:Dataset:gps": 54.5}}
        assert body["isParked"] == "urn:ngsi-ld:OffStreetParking:Downtown1"
        assert body["location"] == {"type": "Point", "coordinates": [13.4, 52.5]}
        assert body["brandName"] == "Mercedes"
        assert body["tyreTreadDepths"] in ([300, 300, 120], {"valueList": [300, 300, 120]})
        assert body["config"] in (FULL["config"]["json"], {"json": FULL["config"]["json"]})
        assert body["category"] in ("nonCommercial", {"vocab": "nonCommercial"})
        assert body["misc"] == FULL["misc"]["value"]


async def test_key_values_with_lang(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"options": "keyValues", "lang": "nl"})
    assert body["street"] == "Grote Markt", body["street"]


async def test_key_values_wrap_what_a_property_value_could_be_taken_for(
    client: httpx.AsyncClient,
) -> None:
    """Simplified: a language map, a vocabulary term and a JSON value come under their member
    name (as in the temporal simplified form), so they are not read as a Property's value."""
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"options": "keyValues"})
    assert body["street"] == {"languageMap": FULL["street"]["languageMap"]}, body
    assert body["category"] == {"vocab": "nonCommercial"}, body
    assert body["config"] == {"json": FULL["config"]["json"]}, body
    assert body["isParked"] == "urn:ngsi-ld:OffStreetParking:Downtown1"


async def test_concise_output(client: httpx.AsyncClient) -> None:
    single = {k: v for k, v in FULL.items() if k != "speed"}
    await create(client, single)
    body = await get_entity(client, FULL["id"], {"options": "concise"})
    assert body["brandName"] == {"value": "Mercedes", "rating": {"value": 4, "reviewer": "x"}}, body
    assert body["isParked"]["object"] == "urn:ngsi-ld:OffStreetParking:Downtown1"
    assert "type" not in body["isParked"]
    assert body["street"] == {"languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}
    assert body["location"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert body["tyreTreadDepths"] == {"valueList": [300, 300, 120], "unitCode": "MMT"}
    assert body["config"] == {"json": FULL["config"]["json"]}
    # Concise is lossless: the body goes back in as the same entity.
    await client.delete(f"{BASE}/entities/{FULL['id']}")
    await create(client, body)
    again = await get_entity(client, FULL["id"])
    assert again == single, f"concise → create must reproduce the entity:\n{again}\n!=\n{single}"


async def test_concise_multi_attribute_round_trips(client: httpx.AsyncClient) -> None:
    entity = {"id": EID, "type": "Vehicle", "speed": FULL["speed"]}
    await create(client, entity)
    body = await get_entity(client, EID, {"options": "concise"})
    await client.delete(f"{BASE}/entities/{EID}")
    await create(client, body)
    again = await get_entity(client, EID)
    assert again == entity, f"concise → create must reproduce the entity:\n{again}\n!=\n{entity}"


async def test_format_parameter(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    kv = await get_entity(client, EID, {"format": "keyValues"})
    assert kv["temperature"] == 21.5
    concise = await get_entity(client, EID, {"format": "concise"})
    assert concise["name"] == "kitchen"
    assert concise["temperature"] == {"value": 21.5, "unitCode": "CEL"}
    normalized = await get_entity(client, EID, {"format": "normalized"})
    assert normalized["temperature"]["type"] == "Property"
    bad_request(await client.get(f"{BASE}/entities/{EID}", params={"format": "fancy"}))


async def test_attrs_pick_and_omit(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    eid = FULL["id"]
    body = await get_entity(client, eid, {"attrs": "speed,street"})
    assert set(body) == {"id", "type", "speed", "street"}, body
    body = await get_entity(client, eid, {"pick": "speed,id"})
    assert set(body) == {"id", "speed"}, f"pick keeps only what is named: {body}"
    body = await get_entity(client, eid, {"omit": "speed,type"})
    assert "speed" not in body and "type" not in body and body["id"] == eid, body
    assert "street" in body
    resp = await client.get(f"{BASE}/entities/{eid}", params={"attrs": "nothingLikeThis"})
    if resp.status_code == 200:
        assert set(resp.json()) == {"id", "type"}, resp.text
    else:
        problem(resp, 404, "ResourceNotFound")
    resp = await client.get(f"{BASE}/entities/{eid}", params={"pick": "speed", "omit": "street"})
    bad_request(resp)


async def test_lang_on_language_property(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"lang": "fr"})
    assert body["street"] == {"type": "Property", "value": "Grand Place", "lang": "fr"}, body
    body = await get_entity(client, FULL["id"], {"lang": "nl-BE"})
    assert body["street"]["value"] == "Grote Markt", f"falls back to the primary tag: {body}"
    body = await get_entity(client, FULL["id"], {"lang": "*"})
    street = body["street"]
    assert street == FULL["street"] or (
        street["type"] == "Property"
        and street["value"] == FULL["street"]["languageMap"].get(street.get("lang"))
    ), f"lang=* gives the whole map or one (tagged) string: {street}"


@pytest.mark.parametrize(
    ("lang", "tag"),
    [
        ("fr;q=0.1, nl;q=0.9", "nl"),
        ("de, fr;q=0.5, nl;q=0.6", "nl"),  # de is missing: the next by weight
        ("nl;q=0, fr", "fr"),  # q=0: not wanted
        ("nl ; q=0.5 , fr ; q=0.5", "nl"),  # equal weights keep the written order
    ],
)
async def test_lang_follows_q_weights(client: httpx.AsyncClient, lang: str, tag: str) -> None:
    """lang= has Accept-Language's syntax (4.15, RFC 9110 12.5.4): weights choose."""
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"lang": lang})
    want = FULL["street"]["languageMap"][tag]
    assert body["street"] == {"type": "Property", "value": want, "lang": tag}, body


@pytest.mark.parametrize(
    "params",
    [
        {"lang": ""},
        {"lang": "!!"},
        {"lang": "en;q=2"},
        {"lang": "en;q=1.5"},  # RFC 9110's qvalue is at most 1
        {"lang": "en;q=1.001"},
        {"datasetId": ""},
        {"datasetId": "notauri"},  # a DELETE refused it; a read took it and found nothing
        {"datasetId": "@none,not a uri"},
    ],
)
async def test_empty_or_garbled_lang_and_dataset_id_are_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Read as no preference or no filter, they answered as if not given."""
    await create(client, FULL)
    problem(await client.get(f"{BASE}/entities/{FULL['id']}", params=params), 400)
    problem(await client.get(f"{BASE}/entities", params={"type": FULL["type"], **params}), 400)


async def test_pick_and_omit_reach_the_entity_system_attributes(
    client: httpx.AsyncClient,
) -> None:
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"options": "sysAttrs", "omit": "modifiedAt"})
    assert "createdAt" in body and "modifiedAt" not in body, body
    body = await get_entity(client, FULL["id"], {"options": "sysAttrs", "pick": "id,createdAt"})
    assert set(body) == {"id", "createdAt"}, body


async def test_dataset_id_filter(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    body = await get_entity(client, FULL["id"], {"datasetId": "urn:ngsi-ld:Dataset:gps"})
    assert body["speed"]["value"] == 54.5, body
    body = await get_entity(client, FULL["id"], {"datasetId": "@none"})
    assert body["speed"]["value"] == 55, body


async def test_accept_ld_json_puts_context_in_body(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Accept": JSONLD})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(JSONLD)
    body = resp.json()
    assert body["@context"] == CORE or CORE in body["@context"], body
    assert "link" not in resp.headers, "JSON-LD responses carry their context inline"


async def test_accept_json_links_the_context(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    for accept in ("application/json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        resp = await client.get(f"{BASE}/entities/{EID}", headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        assert "@context" not in resp.json()
        assert f"<{CORE}>" in resp.headers["link"], resp.headers.get("link")
        assert "json-ld#context" in resp.headers["link"]


async def test_accept_quality_values(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.get(
        f"{BASE}/entities/{EID}",
        headers={"Accept": "application/json;q=0.5, application/ld+json;q=0.9"},
    )
    assert resp.headers["content-type"].startswith(JSONLD), resp.headers


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/json;q=0, */*", JSONLD),  # the more specific range refuses JSON
        ("application/json;q=0, application/*", JSONLD),
        ("application/json;Q=0, application/ld+json;q=0.1", JSONLD),  # Q is q
        ("application/ld+json;q=notanumber", JSONLD),  # an unreadable weight counts as 1
        ("application/json;q=1.0001, application/ld+json;q=1", "application/json"),
        ("*/*", "application/json"),
        ("application/ld+json, */*", JSONLD),
    ],
)
async def test_accept_follows_rfc_9110(client: httpx.AsyncClient, accept: str, media: str) -> None:
    await create(client, sensor())
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Accept": accept})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(media), (accept, resp.headers)


async def test_every_accept_line_counts(client: httpx.AsyncClient) -> None:
    """Only the first of two Accept lines was read: text/html, then ld+json gave a 406."""
    await create(client, sensor())
    resp = await client.get(
        f"{BASE}/entities/{EID}",
        headers=[("Accept", "text/html"), ("Accept", "application/ld+json")],
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith(JSONLD)


async def test_accept_geo_json_gives_a_feature(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    resp = await client.get(
        f"{BASE}/entities/{FULL['id']}", headers={"Accept": "application/geo+json"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/geo+json")
    body = resp.json()
    assert body["type"] == "Feature" and body["id"] == FULL["id"], body
    assert body["geometry"] == {"type": "Point", "coordinates": [13.4, 52.5]}, body
    assert body["properties"]["type"] == "Vehicle"
    assert body["properties"]["speed"] == FULL["speed"]


async def test_geo_json_with_other_geometry_property(client: httpx.AsyncClient) -> None:
    area = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    await create(client, sensor(area={"type": "GeoProperty", "value": area}))
    resp = await client.get(
        f"{BASE}/entities/{EID}",
        params={"geometryProperty": "area"},
        headers={"Accept": "application/geo+json"},
    )
    assert resp.json()["geometry"] == area, resp.text
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Accept": "application/geo+json"})
    assert resp.json()["geometry"] is None, "no location → null geometry"
    default = "https://uri.etsi.org/ngsi-ld/default-context/area"
    for name in (default, "ngsi-ld:default-context/area"):  # the same attribute
        resp = await client.get(
            f"{BASE}/entities/{EID}",
            params={"geometryProperty": name},
            headers={"Accept": "application/geo+json"},
        )
        assert resp.json()["geometry"] == area, (name, resp.text)


@pytest.mark.parametrize("accept", [None, "application/json", JSONLD])
async def test_geometry_property_needs_a_geojson_accept(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    """5.7.1.4 and 5.7.2.4 (1.9.1): geometryProperty with an Accept other than GeoJSON is
    BadRequestData; before, it was silently ignored."""
    point = {"type": "Point", "coordinates": [5.0, 6.0]}
    await create(client, sensor(location={"type": "GeoProperty", "value": point}))
    headers = {"Accept": accept} if accept else {}
    params = {"geometryProperty": "location"}
    resp = await client.get(f"{BASE}/entities/{EID}", params=params, headers=headers)
    problem(resp, 400, "BadRequestData")
    query = {**params, "type": "Sensor"}
    resp = await client.get(f"{BASE}/entities", params=query, headers=headers)
    problem(resp, 400, "BadRequestData")
    resp = await client.post(
        f"{BASE}/entityOperations/query",
        params=params,
        json={"type": "Query", "entities": [{"type": "Sensor"}]},
        headers=headers,
    )
    problem(resp, 400, "BadRequestData")
    geo = {"Accept": "application/geo+json"}
    resp = await client.get(f"{BASE}/entities/{EID}", params=params, headers=geo)
    assert resp.json()["geometry"] == point, resp.text


async def test_key_values_of_a_multi_attribute_map_its_instances_by_dataset(
    client: httpx.AsyncClient,
) -> None:
    """keyValues showed the default instance alone, while notifications (and 4.5.4) map
    them all; GeoJSON still takes the default instance's geometry."""
    here, there = [{"type": "Point", "coordinates": [x, 1.0]} for x in (1.0, 2.0)]
    located = [
        {"type": "GeoProperty", "value": here},
        {"type": "GeoProperty", "value": there, "datasetId": "urn:ds:gps"},
    ]
    await create(client, sensor(location=located))
    body = await get_entity(client, EID, {"options": "keyValues"})
    assert body["location"] == {"dataset": {"@none": here, "urn:ds:gps": there}}, body
    one = await get_entity(client, EID, {"options": "keyValues", "datasetId": "urn:ds:gps"})
    assert one["location"] == there, one
    resp = await client.get(
        f"{BASE}/entities/{EID}",
        params={"options": "keyValues"},
        headers={"Accept": "application/geo+json"},
    )
    assert resp.json()["geometry"] == here, resp.text


@pytest.mark.parametrize("options", [None, "concise", "keyValues"])
async def test_geo_json_geometry_is_only_ever_a_geo_property(
    client: httpx.AsyncClient, options: str | None
) -> None:
    """geometryProperty naming a plain Property gives a null geometry, not its value; a pick
    without id still names the Feature by the entity's id (1.8 clause 4.5.17.2: "id" is a
    mandatory member of the Feature; it was left out)."""
    point = {"type": "Point", "coordinates": [5, 6]}
    await create(
        client,
        sensor(
            label={"type": "Property", "value": "Alpha"},
            area={"type": "Property", "value": point},  # a geometry, but no GeoProperty
        ),
    )
    geo = {"Accept": "application/geo+json"}
    for name in ("label", "area"):
        params = {"geometryProperty": name, **({"options": options} if options else {})}
        body = (await client.get(f"{BASE}/entities/{EID}", params=params, headers=geo)).json()
        assert body["geometry"] is None and body["id"] == EID, (name, body)
        found = await client.get(
            f"{BASE}/entities", params={**params, "type": "Sensor"}, headers=geo
        )
        assert found.json()["features"][0]["geometry"] is None, (name, found.text)
    body = (
        await client.get(f"{BASE}/entities/{EID}", params={"pick": "label"}, headers=geo)
    ).json()
    assert body["id"] == EID and body["type"] == "Feature", body
    assert "id" not in body["properties"], body
    found = await client.get(
        f"{BASE}/entities", params={"pick": "label", "type": "Sensor"}, headers=geo
    )
    assert [f["id"] for f in found.json()["features"]] == [EID], found.text


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": ["1", "2"]},
        {"type": "Point", "coordinates": [200, 2]},
        {"type": "Point", "coordinates": [2, 91]},
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0.5]]]},
        {"type": "LineString", "coordinates": [[0, 0], [1, "x"]]},
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [500, 0]}]},
    ],
)
async def test_invalid_geojson_is_refused_as_geoq_refuses_it(
    client: httpx.AsyncClient, geometry: dict[str, Any]
) -> None:
    """RFC 7946: numeric positions on the globe, closed rings. Stored, they were served back
    as invalid GeoJSON and even matched near queries."""
    ent = sensor(location={"type": "GeoProperty", "value": geometry})
    problem(await client.post(f"{BASE}/entities", json=ent), 400, "BadRequestData")
    assert (await client.get(f"{BASE}/entities/{EID}")).status_code == 404


@pytest.mark.parametrize("options", [None, "keyValues"])
async def test_geo_json_of_a_multi_instance_location_uses_the_default_instance(
    client: httpx.AsyncClient, options: str | None
) -> None:
    here = {"type": "Point", "coordinates": [127.0, 37.5]}
    there = {"type": "Point", "coordinates": [126.9, 37.4]}
    location = [
        {"type": "GeoProperty", "value": there, "datasetId": "urn:ngsi-ld:Dataset:gps"},
        {"type": "GeoProperty", "value": here},
    ]
    await create(client, sensor(location=location))
    resp = await client.get(
        f"{BASE}/entities/{EID}",
        params={"options": options} if options else {},
        headers={"Accept": "application/geo+json"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["geometry"] == here, resp.text


async def test_geo_json_query_gives_a_feature_collection(client: httpx.AsyncClient) -> None:
    await create(client, FULL)
    await create(client, sensor())
    resp = await client.get(
        f"{BASE}/entities",
        params={"type": "Vehicle,Sensor"},
        headers={"Accept": "application/geo+json"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["type"] == "FeatureCollection", body
    assert sorted(f["id"] for f in body["features"]) == sorted([FULL["id"], EID])


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "image/png;q=1, text/csv"])
async def test_unsupported_accept_is_406(client: httpx.AsyncClient, accept: str) -> None:
    await create(client, sensor())
    resp = await client.get(f"{BASE}/entities/{EID}", headers={"Accept": accept})
    problem(resp, 406, "NotAcceptable")


async def test_get_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{BASE}/entities/urn:ngsi-ld:Nope:1"), 404, "ResourceNotFound")


async def test_get_with_bad_id_is_400(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{BASE}/entities/not-a-uri"), 400, "BadRequestData")


# -- query collection --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/entities", "/entities/"])
async def test_query_with_and_without_trailing_slash(client: httpx.AsyncClient, path: str) -> None:
    await create(client, sensor())
    resp = await client.get(BASE + path, params={"type": "Sensor"})
    assert resp.status_code == 200, resp.text
    assert [e["id"] for e in resp.json()] == [EID]


async def test_query_with_no_filter_is_400(client: httpx.AsyncClient) -> None:
    problem(await client.get(f"{BASE}/entities"), 400, "BadRequestData")


# -- replace (PUT) -------------------------------------------------------------------------------


async def test_put_replaces_everything(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    before = await get_entity(client, EID, {"options": "sysAttrs"})
    resp = await client.put(
        f"{BASE}/entities/{EID}",
        json={"type": "Room", "humidity": {"type": "Property", "value": 40}},
    )
    assert resp.status_code == 204, resp.text
    after = await get_entity(client, EID, {"options": "sysAttrs"})
    assert after["type"] == "Room", after
    assert "temperature" not in after and "name" not in after, f"PUT drops unnamed attrs: {after}"
    assert after["humidity"]["value"] == 40
    assert after["createdAt"] == before["createdAt"], "PUT keeps createdAt"
    assert after["modifiedAt"] >= before["modifiedAt"]


async def test_put_with_matching_id_in_body(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.put(f"{BASE}/entities/{EID}", json=sensor(temperature=5))
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["temperature"]["value"] == 5


async def test_put_with_other_id_in_body_is_400(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.put(f"{BASE}/entities/{EID}", json=sensor("urn:ngsi-ld:Sensor:other"))
    problem(resp, 400, "BadRequestData")


async def test_put_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.put(f"{BASE}/entities/urn:ngsi-ld:Sensor:none", json={"type": "Sensor"})
    problem(resp, 404, "ResourceNotFound")


async def test_put_with_invalid_attribute_changes_nothing(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    before = await get_entity(client, EID)
    resp = await client.put(
        f"{BASE}/entities/{EID}",
        json={"type": "Sensor", "ok": 1, "bad": {"type": "Relationship", "object": "nope"}},
    )
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID) == before


# -- merge (PATCH) -----------------------------------------------------------------------------


async def test_patch_merges(client: httpx.AsyncClient) -> None:
    await create(
        client,
        sensor(
            temperature={
                "type": "Property",
                "value": 20,
                "unitCode": "CEL",
                "accuracy": {"type": "Property", "value": 0.1},
            }
        ),
    )
    resp = await client.patch(
        f"{BASE}/entities/{EID}",
        json={
            "temperature": {
                "type": "Property",
                "value": 22,
                "status": {"type": "Property", "value": "ok"},
            },
            "humidity": {"type": "Property", "value": 40},
        },
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"]["value"] == 22
    assert body["temperature"]["unitCode"] == "CEL", f"merge keeps unnamed members: {body}"
    assert body["temperature"]["accuracy"]["value"] == 0.1, "merge keeps sub-attributes"
    assert body["temperature"]["status"]["value"] == "ok", "merge adds sub-attributes"
    assert body["humidity"]["value"] == 40, "merge adds attributes"
    assert body["name"]["value"] == "kitchen", "merge leaves others alone"


async def test_patch_concise_value(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"temperature": 30})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"]["value"] == 30


async def test_patch_null_deletes_an_attribute(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"name": "urn:ngsi-ld:null"})
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert "name" not in body, body
    assert "temperature" in body
    resp = await client.patch(
        f"{BASE}/entities/{EID}",
        json={"temperature": {"type": "Property", "value": "urn:ngsi-ld:null"}},
    )
    assert resp.status_code == 204, resp.text
    assert "temperature" not in await get_entity(client, EID)


async def test_patch_null_deletes_a_sub_attribute(client: httpx.AsyncClient) -> None:
    await create(
        client,
        sensor(
            temperature={
                "type": "Property",
                "value": 20,
                "accuracy": {"type": "Property", "value": 1},
            }
        ),
    )
    resp = await client.patch(
        f"{BASE}/entities/{EID}",
        json={"temperature": {"type": "Property", "value": 21, "accuracy": "urn:ngsi-ld:null"}},
    )
    assert resp.status_code == 204, resp.text
    body = await get_entity(client, EID)
    assert body["temperature"] == {"type": "Property", "value": 21}, body


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        (  # a Relationship carries no unitCode
            {"type": "Relationship", "object": "urn:ngsi-ld:Room:1"},
            {"type": "Relationship", "object": "urn:ngsi-ld:Room:1"},
        ),
        (  # a ListProperty may
            {"type": "ListProperty", "valueList": [20, 21]},
            {"type": "ListProperty", "valueList": [20, 21], "unitCode": "CEL"},
        ),
    ],
)
async def test_merge_that_changes_an_attribute_type_keeps_only_what_the_new_type_has(
    client: httpx.AsyncClient, fragment: dict[str, Any], expected: dict[str, Any]
) -> None:
    await create(client, sensor(temperature={"type": "Property", "value": 20, "unitCode": "CEL"}))
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"temperature": fragment})
    assert resp.status_code == 204, resp.text
    assert (await get_entity(client, EID))["temperature"] == expected


async def test_patch_with_merge_patch_content_type(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.patch(
        f"{BASE}/entities/{EID}",
        content=b'{"temperature": 1}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 204, resp.text


async def test_patch_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.patch(f"{BASE}/entities/urn:ngsi-ld:Sensor:none", json={"a": 1})
    problem(resp, 404, "ResourceNotFound")


async def test_patch_with_invalid_attribute_changes_nothing(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    before = await get_entity(client, EID, {"options": "sysAttrs"})
    resp = await client.patch(
        f"{BASE}/entities/{EID}",
        json={"temperature": 99, "bad": {"type": "GeoProperty", "value": {"type": "Point"}}},
    )
    problem(resp, 400, "BadRequestData")
    assert await get_entity(client, EID, {"options": "sysAttrs"}) == before


async def test_patch_adds_types(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.patch(f"{BASE}/entities/{EID}", json={"type": "Device"})
    assert resp.status_code == 204, resp.text
    assert sorted((await get_entity(client, EID))["type"]) == ["Device", "Sensor"]


@pytest.mark.parametrize(
    ("method", "path"), [("PATCH", "/attrs"), ("POST", "/attrs"), ("PATCH", "")]
)
async def test_type_index_follows_types_added_or_repeated(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await create(client, sensor())
    for types in (["Sensor"], ["Sensor", "Device"], ["Device"]):
        body = {"type": types, "label": {"type": "Property", "value": ",".join(types)}}
        resp = await client.request(method, f"{BASE}/entities/{EID}{path}", json=body)
        assert resp.status_code in (204, 207), resp.text
    for typ in ("Sensor", "Device"):
        found = await client.get(f"{BASE}/entities", params={"type": typ})
        assert [e["id"] for e in found.json()] == [EID], (typ, found.text)


# -- delete ------------------------------------------------------------------------------------


async def test_delete_then_404(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    resp = await client.delete(f"{BASE}/entities/{EID}")
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    problem(await client.get(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{BASE}/entities/{EID}"), 404, "ResourceNotFound")
    resp = await client.get(f"{BASE}/entities", params={"type": "Sensor"})
    assert resp.json() == [], "a deleted entity is gone from queries too"


async def test_deleted_id_can_be_created_again(client: httpx.AsyncClient) -> None:
    await create(client, sensor())
    await client.delete(f"{BASE}/entities/{EID}")
    await create(client, sensor(temperature=3))
    assert (await get_entity(client, EID))["temperature"]["value"] == 3


def _quoted_path(eid: str) -> httpx.URL:
    """The entity URL with the id percent-encoded as one path segment."""
    from urllib.parse import quote

    raw = f"{BASE}/entities/{quote(eid, safe='')}"
    return httpx.URL("http://hub").copy_with(raw_path=raw.encode())


async def test_ids_with_fragments(client: httpx.AsyncClient) -> None:
    eid = "urn:ngsi-ld:Thing:a#frag"
    await create(client, {"id": eid, "type": "Thing"})
    resp = await client.get(_quoted_path(eid))
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == eid
    resp = await client.delete(_quoted_path(eid))
    assert resp.status_code == 204, resp.text


async def test_ids_that_are_http_urls(client: httpx.AsyncClient) -> None:
    eid = "https://example.org/things/a"
    resp = await create(client, {"id": eid, "type": "Thing"})
    resp = await client.get(_quoted_path(eid))
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == eid


async def test_a_concise_geometry_value_is_a_geo_property(client: httpx.AsyncClient) -> None:
    """{"value": <geometry>} without a type: a GeoProperty (it was a Property, and for
    location a 400 "must be a GeoProperty"), found by geo-queries."""
    point = {"type": "Point", "coordinates": [2.35, 48.85]}
    body = {"id": "urn:ngsi-ld:Bin:cg", "type": "Bin", "location": {"value": point}}
    body["dropOff"] = {"value": point, "observedAt": "2024-01-01T00:00:00Z"}
    await create(client, body)
    got = await get_entity(client, "urn:ngsi-ld:Bin:cg")
    assert got["location"] == {"type": "GeoProperty", "value": point}, got
    assert got["dropOff"]["type"] == "GeoProperty", got
    resp = await client.get(
        f"{BASE}/entities",
        params={"type": "Bin", "georel": "near;maxDistance==10", "geometry": "Point"}
        | {"coordinates": "[2.35,48.85]", "geoproperty": "dropOff"},
    )
    assert [e["id"] for e in resp.json()] == ["urn:ngsi-ld:Bin:cg"], resp.text


async def test_an_attribute_patched_in_and_out_of_geometry_is_found_where_it_is(
    client: httpx.AsyncClient,
) -> None:
    """PATCH /attrs rewrites an attribute's geometry row only when the attribute held one
    (the update reads where geometries were from the stored entity): a geo-query finds the
    entity after each change, at its new place, and no more once it is a plain value."""
    eid = "urn:ngsi-ld:Bin:moved"
    here, there = [2.35, 48.85], [2.45, 48.95]
    await create(client, {"id": eid, "type": "Bin", "dropOff": {"value": 1}, "level": 5})

    async def found(at: list[float]) -> list[str]:
        resp = await client.get(
            f"{BASE}/entities",
            params={"type": "Bin", "georel": "near;maxDistance==10", "geometry": "Point"}
            | {"coordinates": f"[{at[0]},{at[1]}]", "geoproperty": "dropOff"},
        )
        assert resp.status_code == 200, resp.text
        return [e["id"] for e in resp.json()]

    async def patch(body: dict[str, Any]) -> None:
        resp = await client.patch(f"{BASE}/entities/{eid}/attrs", json=body)
        assert resp.status_code == 204, resp.text

    await patch(
        {"dropOff": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": here}}}
    )
    assert await found(here) == [eid]
    await patch({"level": 6})  # another attribute: the geometry stays
    assert await found(here) == [eid]
    await patch(
        {"dropOff": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": there}}}
    )
    assert (await found(here), await found(there)) == ([], [eid])
    await patch({"dropOff": {"type": "Property", "value": 2}})
    assert (await found(here), await found(there)) == ([], [])


async def test_object_type_round_trips_and_belongs_to_relationships(
    client: httpx.AsyncClient,
) -> None:
    """A ListRelationship's objectType was stored and never shown; on a Property it was kept
    silently."""
    rel = {"type": "ListRelationship", "objectList": [{"object": "urn:x:a"}], "objectType": "Bin"}
    await create(client, {"id": "urn:ngsi-ld:Bin:ot", "type": "Bin", "holds": rel})
    got = await get_entity(client, "urn:ngsi-ld:Bin:ot")
    assert got["holds"]["objectType"] == "Bin", got
    bad = {"type": "Property", "value": 1, "objectType": "Bin"}
    resp = await client.post(f"{BASE}/entities", json={"id": "urn:x:ot2", "type": "Bin", "p": bad})
    problem(resp, 400, "BadRequestData")


@pytest.mark.parametrize("when", ["2024-01-01", "2024-W01-1", "2024-001", "10:00:00Z"])
async def test_observed_at_must_be_a_date_and_time(client: httpx.AsyncClient, when: str) -> None:
    """A date alone, a week or an ordinal date were stored as observedAt verbatim."""
    attr = {"type": "Property", "value": 1, "observedAt": when}
    resp = await client.post(f"{BASE}/entities", json={"id": "urn:x:oa", "type": "T", "p": attr})
    problem(resp, 400, "BadRequestData")
    resp = await client.get(
        f"{BASE}/temporal/entities", params={"type": "T", "timerel": "after", "timeAt": when}
    )
    problem(resp, 400, "BadRequestData")


@pytest.mark.parametrize(
    "attr",
    [
        {"type": "Relationship", "object": []},
        {"type": "LanguageProperty", "languageMap": {}},
        {"type": "VocabProperty", "vocab": []},
    ],
)
async def test_an_attribute_with_empty_content_is_400(
    client: httpx.AsyncClient, attr: dict[str, Any]
) -> None:
    """Stored, it existed for attrs= but not for q=attr (it had nothing to compare)."""
    resp = await client.post(f"{BASE}/entities", json={"id": "urn:x:e", "type": "T", "f": attr})
    problem(resp, 400, "BadRequestData")


GEO = {"Accept": "application/geo+json"}


@pytest.mark.parametrize(
    "params",
    [{"pick": "type"}, {"omit": "id"}, {"pick": "type", "options": "keyValues"}],
)
async def test_geo_json_geometry_does_not_depend_on_the_id_being_shown(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """The Feature's geometry is the stored GeoProperty's value, whatever the projection
    keeps of the entity (it was null with pick=type: the lookup went by the rendered id)."""
    point = {"type": "Point", "coordinates": [3, 4]}
    await create(
        client, {"id": EID, "type": "Sensor", "location": {"type": "GeoProperty", "value": point}}
    )
    one = await client.get(f"{BASE}/entities/{EID}", params=params, headers=GEO)
    assert one.status_code == 200, one.text
    assert one.json()["geometry"] == point, one.text
    many = await client.get(f"{BASE}/entities", params={**params, "type": "Sensor"}, headers=GEO)
    assert [f["geometry"] for f in many.json()["features"]] == [point], many.text
    picked = await client.get(
        f"{BASE}/entities/{EID}",
        params={"pick": "type", "geometryProperty": "location"},
        headers=GEO,
    )
    assert picked.json()["geometry"] == point


@pytest.mark.parametrize("options", [None, "keyValues", "concise"])
async def test_geo_json_geometry_of_a_flat_joined_entity_is_its_geo_property(
    client: httpx.AsyncClient, options: str | None
) -> None:
    """A flat-joined entity's geometry is read from its stored GeoProperty as the queried
    entity's is: a plain Property holding a geometry is none, in every format."""
    linked = {
        "id": "urn:ngsi-ld:Sensor:G4",
        "type": "Sensor",
        "pos": {"type": "Property", "value": {"type": "Point", "coordinates": [7, 7]}},
    }
    far = {"type": "Point", "coordinates": [9, 9]}
    linking = {
        "id": "urn:ngsi-ld:Sensor:G3",
        "type": "Gauge",
        "pos": {"type": "GeoProperty", "value": far},
        "to": {"type": "Relationship", "object": linked["id"]},
    }
    await create(client, linked)
    await create(client, linking)
    params = {
        "join": "flat",
        "geometryProperty": "pos",
        **({"options": options} if options else {}),
    }
    one = await client.get(f"{BASE}/entities/{linking['id']}", params=params, headers=GEO)
    geometries = {f["id"]: f["geometry"] for f in one.json()["features"]}
    assert geometries == {linking["id"]: far, linked["id"]: None}, one.text
    many = await client.get(f"{BASE}/entities", params={**params, "type": "Gauge"}, headers=GEO)
    geometries = {f["id"]: f["geometry"] for f in many.json()["features"]}
    assert geometries == {linking["id"]: far, linked["id"]: None}, many.text

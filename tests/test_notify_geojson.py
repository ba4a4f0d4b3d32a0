"""An endpoint that accepts application/geo+json gets its notifications in GeoJSON (the Endpoint's
accept: JSON, JSON-LD or GeoJSON): data is a FeatureCollection of the notified entities, the
location GeoProperty their geometry, the @context in the body."""

from __future__ import annotations

import httpx

from conftest import BASE, CORE, create, problem
from receivers import Receiver, wait_for

GEOJSON = "application/geo+json"
POINT = {"type": "Point", "coordinates": [2.35, 48.85]}


async def subscribe(hub: httpx.AsyncClient, url: str, fmt: str = "normalized") -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Place"}],
        "notification": {"format": fmt, "endpoint": {"uri": url, "accept": GEOJSON}},
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=body)
    assert resp.status_code == 201, resp.text


async def test_geojson_endpoint_gets_a_feature_collection(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(hub, receiver.url(), "keyValues")
    place = {
        "id": "urn:ngsi-ld:Place:1",
        "type": "Place",
        "name": {"type": "Property", "value": "Paris"},
        "location": {"type": "GeoProperty", "value": POINT},
    }
    await create(hub, place)
    got = await wait_for(lambda: receiver.received(), what="the GeoJSON notification")
    note = got[0]
    assert note.headers["Content-Type"] == GEOJSON
    assert "Link" not in note.headers
    body = note.body
    assert body["type"] == "Notification" and body["@context"] == CORE
    assert body["data"] == {
        "type": "FeatureCollection",
        "features": [
            {
                "id": "urn:ngsi-ld:Place:1",
                "type": "Feature",
                "geometry": POINT,
                "properties": {"type": "Place", "name": "Paris", "location": POINT},
            }
        ],
    }


async def test_an_entity_without_location_is_a_feature_without_geometry(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    await subscribe(hub, receiver.url())
    await create(hub, {"id": "urn:ngsi-ld:Place:2", "type": "Place"})
    got = await wait_for(lambda: receiver.received(), what="the GeoJSON notification")
    [feature] = got[0].body["data"]["features"]
    assert feature["geometry"] is None and feature["properties"] == {"type": "Place"}


async def test_csource_subscriptions_refuse_geojson(client: httpx.AsyncClient) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Place"}],
        "notification": {"endpoint": {"uri": "http://localhost:1111/n", "accept": GEOJSON}},
    }
    problem(await client.post(f"{BASE}/csourceSubscriptions", json=body), 400, "BadRequestData")


async def test_geometries_come_from_the_stored_entities_whatever_is_shown(
    hub: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A pick that hides the id keeps the Feature's geometry (it was null: the geometry was
    looked up by the rendered id) and its id (a Feature's mandatory member, 1.8 clause
    4.5.17.2; it was left out), and a flat-joined entity has its own (probe6 item 3)."""
    body = {
        "type": "Subscription",
        "entities": [{"type": "Place"}],
        "notification": {
            "format": "keyValues",
            "pick": "type,near",
            "join": "flat",
            "endpoint": {"uri": receiver.url(), "accept": GEOJSON},
        },
    }
    resp = await hub.post(f"{BASE}/subscriptions", json=body)
    assert resp.status_code == 201, resp.text
    other = {
        "id": "urn:ngsi-ld:Spot:1",
        "type": "Spot",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [7, 7]}},
    }
    await create(hub, other)
    place = {
        "id": "urn:ngsi-ld:Place:3",
        "type": "Place",
        "location": {"type": "GeoProperty", "value": POINT},
        "near": {"type": "Relationship", "object": other["id"]},
    }
    await create(hub, place)
    got = await wait_for(lambda: receiver.received(), what="the GeoJSON notification")
    features = got[0].body["data"]["features"]
    assert [f["geometry"] for f in features] == [POINT, other["location"]["value"]], features
    assert [f["id"] for f in features] == [place["id"], other["id"]], features
    assert "id" not in features[0]["properties"], features

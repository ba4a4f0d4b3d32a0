"""/subscriptions and /csourceSubscriptions: stored, validated subscriptions (no delivery)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from conftest import BASE, JSONLD, VOCAB, ContextServer, bad_request, create, link, problem

SUBS = f"{BASE}/subscriptions"
CSUBS = f"{BASE}/csourceSubscriptions"
SID = "urn:ngsi-ld:Subscription:s1"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def sub(**members: Any) -> dict[str, Any]:
    """A minimal valid subscription, with members replaced or added."""
    body: dict[str, Any] = {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://localhost:1111/notify"}},
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


async def post(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None, url: str = SUBS
) -> httpx.Response:
    return await client.post(url, json=body, headers=headers)


async def fetch(
    client: httpx.AsyncClient, sid: str = SID, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    resp = await client.get(f"{SUBS}/{sid}", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# -- create / retrieve ------------------------------------------------------------------------
async def test_create_then_retrieve(client: httpx.AsyncClient) -> None:
    resp = await post(
        client,
        sub(
            timeInterval=5,
            notification={
                "format": "keyValues",
                "endpoint": {"uri": "http://localhost:1111/notify", "accept": "application/json"},
            },
        ),
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{SUBS}/{SID}"
    assert resp.content == b""
    got = await fetch(client)
    assert got == {
        "id": SID,
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notificationTrigger": ["attributeCreated", "attributeUpdated"],
        "timeInterval": 5,
        "notification": {
            "format": "keyValues",
            "endpoint": {"uri": "http://localhost:1111/notify", "accept": "application/json"},
        },
        "status": "active",
    }


async def test_retrieve_json_links_context_and_ldjson_embeds_it(client: httpx.AsyncClient) -> None:
    await post(client, sub())
    resp = await client.get(f"{SUBS}/{SID}", headers={"Accept": "*/*"})
    assert resp.headers["content-type"] == "application/json"
    assert "json-ld#context" in resp.headers["link"]
    resp = await client.get(f"{SUBS}/{SID}", headers={"Accept": JSONLD})
    assert resp.headers["content-type"] == JSONLD
    assert "@context" in resp.json()


async def test_generated_id(client: httpx.AsyncClient) -> None:
    body = sub()
    del body["id"]
    resp = await post(client, body)
    assert resp.status_code == 201, resp.text
    location = resp.headers["location"]
    sid = location.rsplit("/", 1)[1]
    assert re.fullmatch(r"urn:ngsi-ld:Subscription:[0-9a-f-]{36}", sid), location
    assert (await fetch(client, sid))["id"] == sid


async def test_duplicate_id_is_409(client: httpx.AsyncClient) -> None:
    assert (await post(client, sub())).status_code == 201
    problem(await post(client, sub()), 409, "AlreadyExists")


async def test_members_round_trip(client: httpx.AsyncClient) -> None:
    body = sub(
        subscriptionName="s",
        description="d",
        entities=[
            {"id": "urn:ngsi-ld:Building:b1", "type": "Building"},
            {"idPattern": "urn:ngsi-ld:Building:.*", "type": "(Building|House);Shop"},
        ],
        watchedAttributes=["name", "height"],
        notificationTrigger=["entityCreated", "attributeDeleted"],
        q='name=="Eiffel Tower";height>100',
        geoQ={
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": [2.29, 48.85],
        },
        scopeQ="/Paris/#",
        isActive=True,
        expiresAt="2099-01-01T00:00:00Z",
        throttling=10,
        lang="fr",
        datasetId=["urn:ngsi-ld:Dataset:one"],
        notification={
            "attributes": ["name"],
            "format": "concise",
            "sysAttrs": True,
            "showChanges": True,
            "join": "inline",
            "joinLevel": 2,
            "endpoint": {
                "uri": "mqtt://broker:1883/topic",
                "accept": "application/ld+json",
                "receiverInfo": [{"key": "X-Key", "value": "v"}],
            },
        },
    )
    assert (await post(client, body)).status_code == 201
    got = await fetch(client)
    expected = {k: v for k, v in body.items()}
    expected["status"] = "active"
    assert got == expected


# -- @context handling ------------------------------------------------------------------------
async def test_names_expand_on_input_and_compact_on_output(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    ctx = {"Link": link(context_server.url("/ctx/s.jsonld"))}
    body = sub(
        entities=[{"type": "Sensor"}, {"type": "Room|Sensor"}],
        watchedAttributes=["temperature"],
        geoQ={
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
            "geoproperty": "humidity",
        },
        notification={
            "attributes": ["temperature", "other"],
            "endpoint": {"uri": "http://localhost:1111/notify"},
        },
    )
    assert (await post(client, body, ctx)).status_code == 201
    same = await fetch(client, headers=ctx)
    assert same["entities"] == [{"type": "Sensor"}, {"type": "Room|Sensor"}]
    assert same["watchedAttributes"] == ["temperature"]
    assert same["geoQ"]["geoproperty"] == "humidity"
    assert same["notification"]["attributes"] == ["temperature", "other"]
    core = await fetch(client)
    assert core["entities"] == [
        {"type": VOCAB + "Sensor"},
        {"type": f"{VOCAB}Room|{VOCAB}Sensor"},
    ]
    assert core["watchedAttributes"] == [VOCAB + "temperature"]
    assert core["geoQ"]["geoproperty"] == VOCAB + "humidity"
    assert core["notification"]["attributes"] == [VOCAB + "temperature", "other"]


async def test_ldjson_body_carries_its_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    body = sub(watchedAttributes=["temperature"])
    body["@context"] = [context_server.url("/ctx/ld.jsonld")]
    resp = await client.post(SUBS, content=json.dumps(body), headers={"Content-Type": JSONLD})
    assert resp.status_code == 201, resp.text
    assert (await fetch(client))["watchedAttributes"] == [VOCAB + "temperature"]
    resp = await client.get(
        f"{SUBS}/{SID}",
        headers={"Accept": JSONLD, "Link": link(context_server.url("/ctx/ld.jsonld"))},
    )
    assert resp.json()["watchedAttributes"] == ["temperature"]
    assert resp.json()["@context"] == context_server.url("/ctx/ld.jsonld")


async def test_default_vocab_without_context(client: httpx.AsyncClient) -> None:
    assert (await post(client, sub(watchedAttributes=["speed"]))).status_code == 201
    assert (await fetch(client))["watchedAttributes"] == ["speed"]


async def test_unavailable_contexts_are_503(client: httpx.AsyncClient, closed_url: str) -> None:
    problem(await post(client, sub(), {"Link": link(closed_url)}), 503, "LdContextNotAvailable")
    problem(await post(client, sub(jsonldContext=closed_url)), 503, "LdContextNotAvailable")
    problem(await client.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")


# -- query ------------------------------------------------------------------------------------
async def make_three(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> list[str]:
    ids = [f"urn:ngsi-ld:Subscription:q{i}" for i in range(3)]
    for sid in ids:
        assert (await post(client, sub(id=sid), headers)).status_code == 201
    return ids


async def test_query_lists_in_creation_order(client: httpx.AsyncClient) -> None:
    ids = await make_three(client)
    resp = await client.get(SUBS)
    assert resp.status_code == 200, resp.text
    assert [s["id"] for s in resp.json()] == ids
    assert all(s["type"] == "Subscription" for s in resp.json())
    assert "NGSILD-Results-Count" not in resp.headers


async def test_query_pages_and_counts(client: httpx.AsyncClient) -> None:
    ids = await make_three(client)
    resp = await client.get(
        SUBS, params={"limit": 1, "offset": 1, "count": "true"}, headers={"Accept": JSONLD}
    )
    assert [s["id"] for s in resp.json()] == ids[1:2]
    assert resp.headers["NGSILD-Results-Count"] == "3"
    links = sorted(resp.headers["link"].split(","))
    assert links == [
        f'<{SUBS}?count=true&limit=1&offset=0>;rel="prev";type="application/ld+json"',
        f'<{SUBS}?count=true&limit=1&offset=2>;rel="next";type="application/ld+json"',
    ]
    resp = await client.get(SUBS, params={"limit": 0, "count": "true"})
    assert resp.json() == [] and resp.headers["NGSILD-Results-Count"] == "3"
    resp = await client.get(SUBS, params={"offset": 2})
    assert [s["id"] for s in resp.json()] == ids[2:]


@pytest.mark.parametrize("params", [{"limit": "-1"}, {"offset": "-3"}, {"limit": "x"}])
async def test_query_bad_paging_is_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    bad_request(await client.get(SUBS, params=params))


async def test_unknown_parameter_is_invalid_request(client: httpx.AsyncClient) -> None:
    problem(await client.get(SUBS, params={"bogus": "1"}), 400, "InvalidRequest")
    problem(await client.post(SUBS, params={"bogus": "1"}, json=sub()), 400, "InvalidRequest")
    problem(await client.get(f"{SUBS}/{SID}", params={"bogus": "1"}), 400, "InvalidRequest")


# -- update -----------------------------------------------------------------------------------
async def patch(
    client: httpx.AsyncClient,
    fragment: Any,
    sid: str = SID,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.patch(f"{SUBS}/{sid}", json=fragment, headers=headers)


async def test_patch_replaces_members_and_merges_notification(client: httpx.AsyncClient) -> None:
    await post(client, sub(timeInterval=5, subscriptionName="a"))
    new = {"format": "keyValues", "endpoint": {"uri": "http://other.example.org/notify"}}
    resp = await patch(
        client, {"type": "Subscription", "notification": new, "subscriptionName": "b"}
    )
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    got = await fetch(client)
    assert got["notification"] == new
    assert got["timeInterval"] == 5
    assert got["subscriptionName"] == "b"


NOTIFICATION = {
    "format": "keyValues",
    "attributes": ["a"],
    "showChanges": True,
    "endpoint": {
        "uri": "http://localhost:1111/old",
        "accept": "application/json",
        "receiverInfo": [{"key": "X-Api-Key", "value": "k"}],
    },
}


@pytest.mark.parametrize("media", ["application/json", "application/merge-patch+json"])
async def test_patching_the_endpoint_uri_keeps_the_other_notification_members(
    client: httpx.AsyncClient, media: str
) -> None:
    """Moving a subscription to another receiver dropped its format, attributes,
    showChanges and receiverInfo, even as a merge patch (probe 2, finding 2)."""
    await post(client, sub(notification=NOTIFICATION))
    fragment = {"notification": {"endpoint": {"uri": "http://localhost:1111/new"}}}
    resp = await client.patch(
        f"{SUBS}/{SID}", content=json.dumps(fragment), headers={"Content-Type": media}
    )
    assert resp.status_code == 204, resp.text
    got = (await fetch(client))["notification"]
    endpoint = {**NOTIFICATION["endpoint"], "uri": "http://localhost:1111/new"}  # type: ignore[dict-item]
    assert {k: got[k] for k in NOTIFICATION} == {**NOTIFICATION, "endpoint": endpoint}


async def test_null_removes_a_notification_member_and_the_result_is_checked_whole(
    client: httpx.AsyncClient,
) -> None:
    await post(client, sub(notification=NOTIFICATION))
    removed = {
        "attributes": None,
        "endpoint": {"uri": NOTIFICATION["endpoint"]["uri"], "receiverInfo": None},
    }  # type: ignore[index]
    assert (await patch(client, {"notification": removed})).status_code == 204
    got = (await fetch(client))["notification"]
    assert "attributes" not in got and "receiverInfo" not in got["endpoint"], got
    assert got["format"] == "keyValues" and got["showChanges"] is True
    # pick beside the stored attributes: the merged NotificationParams is refused
    assert (
        await patch(client, {"notification": {**removed, "attributes": ["a"]}})
    ).status_code == 204
    both = {"endpoint": {"uri": "http://localhost:1111/x"}, "pick": ["b"]}
    bad_request(await patch(client, {"notification": both}))
    assert (await fetch(client))["notification"]["attributes"] == ["a"]
    bad_request(await patch(client, {"notification": {"endpoint": None}}))
    bad_request(await patch(client, {"notification": {"endpoint": {"uri": None}}}))


async def test_a_plain_json_notification_fragment_names_its_endpoint(
    client: httpx.AsyncClient,
) -> None:
    """The ETSI suite (029_03, 039_04_02) refuses a fragment's notification without an
    endpoint as application/json; as a merge patch it changes the members it names."""
    await post(client, sub(notification=NOTIFICATION))
    bad_request(await patch(client, {"notification": {"format": "normalized"}}))
    bad_request(await patch(client, {"notification": {"format": "normalized", "endpoint": {}}}))
    assert (await fetch(client))["notification"]["format"] == "keyValues"
    resp = await client.patch(
        f"{SUBS}/{SID}",
        content=b'{"notification": {"format": "normalized"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 204, resp.text
    got = (await fetch(client))["notification"]
    assert got["format"] == "normalized"
    assert got["endpoint"] == NOTIFICATION["endpoint"]


async def test_patch_accepts_merge_patch_json(client: httpx.AsyncClient) -> None:
    await post(client, sub())
    resp = await client.patch(
        f"{SUBS}/{SID}",
        content=b'{"subscriptionName": "renamed"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 204, resp.text
    assert (await fetch(client))["subscriptionName"] == "renamed"


async def test_patch_expands_with_its_own_context(
    client: httpx.AsyncClient, context_server: ContextServer
) -> None:
    await post(client, sub())
    ctx = {"Link": link(context_server.url("/ctx/p.jsonld"))}
    resp = await patch(client, {"entities": [{"type": "Room"}]}, headers=ctx)
    assert resp.status_code == 204, resp.text
    assert (await fetch(client))["entities"] == [{"type": VOCAB + "Room"}]
    assert (await fetch(client, headers=ctx))["entities"] == [{"type": "Room"}]


async def test_patch_null_removes_optional_members(client: httpx.AsyncClient) -> None:
    await post(client, sub(throttling=5, subscriptionName="x"))
    assert (await patch(client, {"throttling": None, "subscriptionName": None})).status_code == 204
    got = await fetch(client)
    assert "throttling" not in got and "subscriptionName" not in got


@pytest.mark.parametrize(
    "fragment",
    [
        {"notification": None},
        {"type": None},
        {"type": "Entity"},
        {"notification": {"format": "keyValues"}},
        {"notification": {"format": "keyValues", "endpoint": None}},
        {"expiresAt": "2020-08-01T22:07:00Z"},
        {"entities": None},
        {"watchedAttributes": ["a"]},  # beside the stored timeInterval
        {"throttling": 3},  # likewise
        {"id": "urn:ngsi-ld:Subscription:other"},
        {"isActive": "yes"},
        {},
    ],
)
async def test_patch_rejects_bad_fragments(client: httpx.AsyncClient, fragment: Any) -> None:
    await post(client, sub(timeInterval=5))
    problem(await patch(client, fragment), 400, "BadRequestData")
    assert (await fetch(client))["timeInterval"] == 5
    # the failed update left no transaction open: the next one goes through
    assert (await patch(client, {"subscriptionName": "ok"})).status_code == 204
    assert (await fetch(client))["subscriptionName"] == "ok"


async def test_patch_status_follows_is_active_and_expires_at(client: httpx.AsyncClient) -> None:
    await post(client, sub(isActive=False))
    assert (await fetch(client))["status"] == "paused"
    assert (await patch(client, {"isActive": True})).status_code == 204
    assert (await fetch(client))["status"] == "active"
    assert (await patch(client, {"isActive": False})).status_code == 204
    assert (await fetch(client))["status"] == "paused"
    assert (
        await patch(client, {"isActive": True, "expiresAt": "2099-08-01T22:07:00Z"})
    ).status_code == 204
    got = await fetch(client)
    assert got["status"] == "active" and got["expiresAt"] == "2099-08-01T22:07:00Z"


async def test_expired_subscription_shows_expired(client: httpx.AsyncClient, app: Any) -> None:
    await post(client, sub())

    def expire(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "expiresAt": "2001-01-01T00:00:00Z"}

    app.state.store.resource_update("subscription", "", SID, expire)
    assert (await fetch(client))["status"] == "expired"
    # a new expiry date revives it
    assert (await patch(client, {"expiresAt": "2099-01-01T00:00:00Z"})).status_code == 204
    assert (await fetch(client))["status"] == "active"


async def test_patch_unknown_is_404(client: httpx.AsyncClient) -> None:
    problem(await patch(client, {"subscriptionName": "x"}), 404, "ResourceNotFound")


async def test_patch_without_id_is_405(client: httpx.AsyncClient) -> None:
    resp = await client.patch(f"{SUBS}/", json={"subscriptionName": "x"})
    assert resp.status_code == 405


async def test_patch_bad_json_and_media_type(client: httpx.AsyncClient) -> None:
    await post(client, sub())
    resp = await client.patch(
        f"{SUBS}/{SID}", content=b"{,", headers={"Content-Type": "application/json"}
    )
    problem(resp, 400, "InvalidRequest")
    resp = await client.patch(
        f"{SUBS}/{SID}", content=b"<x/>", headers={"Content-Type": "application/xml"}
    )
    problem(resp, 415, "UnsupportedMediaType")


async def test_sys_attrs_option(client: httpx.AsyncClient) -> None:
    await post(client, sub())
    plain = await fetch(client)
    assert "createdAt" not in plain
    resp = await client.get(f"{SUBS}/{SID}", params={"options": "sysAttrs"})
    got = resp.json()
    assert got["createdAt"] <= got["modifiedAt"], got
    await patch(client, {"subscriptionName": "x"})
    again = (await client.get(f"{SUBS}/{SID}", params={"options": "sysAttrs"})).json()
    assert again["createdAt"] == got["createdAt"] and again["modifiedAt"] > got["modifiedAt"]


# -- delete -----------------------------------------------------------------------------------
async def test_delete(client: httpx.AsyncClient) -> None:
    await post(client, sub())
    resp = await client.delete(f"{SUBS}/{SID}")
    assert resp.status_code == 204 and resp.content == b""
    problem(await client.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")
    problem(await client.delete(f"{SUBS}/{SID}"), 404, "ResourceNotFound")


async def test_delete_without_id_is_405(client: httpx.AsyncClient) -> None:
    assert (await client.delete(f"{SUBS}/")).status_code == 405


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_invalid_id_in_path_is_400(client: httpx.AsyncClient, method: str) -> None:
    resp = await client.request(method, f"{SUBS}/InvalidUri", json={"subscriptionName": "x"})
    problem(resp, 400, "BadRequestData")


# -- media types ------------------------------------------------------------------------------
async def test_create_bad_json_and_media_types(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        SUBS, content=b'{"id":,}', headers={"Content-Type": "application/json"}
    )
    problem(resp, 400, "InvalidRequest")
    resp = await client.post(SUBS, content=b"<x/>", headers={"Content-Type": "application/xml"})
    problem(resp, 415, "UnsupportedMediaType")
    resp = await client.post(SUBS, content=b"{}", headers={"Content-Type": JSONLD})
    problem(resp, 400, "BadRequestData")  # ld+json without @context


@pytest.mark.parametrize("accept", ["application/xml", "application/geo+json"])
async def test_not_acceptable(client: httpx.AsyncClient, accept: str) -> None:
    problem(await client.get(f"{SUBS}/{SID}", headers={"Accept": accept}), 406, "NotAcceptable")
    problem(await client.get(SUBS, headers={"Accept": accept}), 406, "NotAcceptable")


# -- validation -------------------------------------------------------------------------------
ENDPOINT = {"uri": "http://localhost:1111/notify"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param(sub(type=None), id="no-type"),
        pytest.param(sub(type="Entity"), id="wrong-type"),
        pytest.param(sub(id="not a uri"), id="bad-id"),
        pytest.param(sub(id=""), id="empty-id"),
        pytest.param(sub(entities=None), id="no-entities-nor-watched"),
        pytest.param(sub(entities=[]), id="empty-entities"),
        pytest.param(sub(entities=[{"id": "urn:x:1"}]), id="selector-without-type"),
        pytest.param(sub(entities=[{"type": "A", "idPattern": "(["}]), id="bad-idPattern"),
        pytest.param(sub(entities=[{"type": "A", "id": "nope"}]), id="bad-selector-id"),
        pytest.param(sub(entities=[{"type": "A|"}]), id="bad-type-expression"),
        pytest.param(sub(entities=[{"type": "A", "extra": 1}]), id="unknown-selector-member"),
        pytest.param(sub(watchedAttributes=[]), id="empty-watched"),
        pytest.param(sub(watchedAttributes="name"), id="watched-not-list"),
        pytest.param(sub(watchedAttributes=["bad name"]), id="watched-bad-name"),
        pytest.param(sub(q="name=="), id="bad-q"),
        pytest.param(sub(q=""), id="empty-q"),
        pytest.param(
            sub(geoQ={"georel": "near", "geometry": "Point", "coordinates": [1, 2]}),
            id="geoQ-near-no-distance",
        ),
        pytest.param(sub(geoQ={"georel": "within", "geometry": "Point"}), id="geoQ-no-coordinates"),
        pytest.param(
            sub(geoQ={"georel": "within", "geometry": "Blob", "coordinates": [1, 2]}),
            id="geoQ-bad-geometry",
        ),
        pytest.param(sub(scopeQ="no-slash"), id="bad-scopeQ"),
        pytest.param(sub(csf="a=="), id="bad-csf"),
        pytest.param(sub(notification=None), id="no-notification"),
        pytest.param(sub(notification={"format": "keyValues"}), id="no-endpoint"),
        pytest.param(sub(notification={"endpoint": {}}), id="endpoint-without-uri"),
        pytest.param(sub(notification={"endpoint": {"uri": "/relative"}}), id="relative-uri"),
        pytest.param(sub(notification={"endpoint": {"uri": "ftp://x.org/f"}}), id="ftp-uri"),
        pytest.param(sub(notification={"endpoint": {"uri": "http://"}}), id="uri-without-host"),
        pytest.param(
            sub(notification={"endpoint": {"uri": "http://127.0.0.1:0/n"}}), id="uri-port-0"
        ),
        pytest.param(
            sub(notification={"endpoint": {**ENDPOINT, "accept": "text/plain"}}), id="bad-accept"
        ),
        pytest.param(
            sub(notification={"endpoint": {**ENDPOINT, "receiverInfo": [{"key": "k"}]}}),
            id="bad-receiverInfo",
        ),
        pytest.param(sub(notification={"endpoint": ENDPOINT, "format": "simple"}), id="bad-format"),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "attributes": []}), id="empty-attributes"
        ),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "sysAttrs": "true"}), id="sysAttrs-not-bool"
        ),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "showChanges": 1}), id="showChanges-not-bool"
        ),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "pick": ["id"], "omit": ["id"]}),
            id="pick-and-omit",
        ),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "pick": ["id"], "attributes": ["a"]}),
            id="pick-and-attributes",
        ),
        pytest.param(
            sub(notification={"endpoint": ENDPOINT, "omit": ["a"], "attributes": ["a"]}),
            id="omit-and-attributes",
        ),
        pytest.param(sub(notification={"endpoint": ENDPOINT, "join": "deep"}), id="bad-join"),
        # a Subscription member put inside notification would be stored and never applied
        pytest.param(sub(notification={"endpoint": ENDPOINT, "lang": "fr"}), id="lang-misplaced"),
        pytest.param(sub(notification={"endpoint": ENDPOINT, "bogus": 1}), id="unknown-member"),
        pytest.param(
            sub(
                notification={
                    "endpoint": {**ENDPOINT, "receiverInfo": [{"key": "Bad Key", "value": "v"}]}
                }
            ),
            id="receiverInfo-key-no-header-name",
        ),
        pytest.param(
            sub(
                notification={
                    "endpoint": {
                        **ENDPOINT,
                        "receiverInfo": [{"key": "X-A", "value": "a\r\nX-B: b"}],
                    }
                }
            ),
            id="receiverInfo-value-line-break",
        ),
        pytest.param(sub(notification={"endpoint": ENDPOINT, "joinLevel": 0}), id="bad-joinLevel"),
        pytest.param(sub(timeInterval=10, throttling=30), id="timeInterval-and-throttling"),
        pytest.param(sub(timeInterval=10, watchedAttributes=["a"]), id="timeInterval-and-watched"),
        pytest.param(sub(timeInterval=0), id="zero-timeInterval"),
        pytest.param(sub(throttling=-30), id="negative-throttling"),
        pytest.param(sub(throttling=True), id="boolean-throttling"),
        pytest.param(sub(expiresAt="2020-01-01T00:00:00Z"), id="expiresAt-past"),
        pytest.param(sub(expiresAt="2099-01-01"), id="expiresAt-date-only"),
        pytest.param(sub(expiresAt="tomorrow"), id="expiresAt-not-a-date"),
        pytest.param(sub(isActive="false"), id="isActive-string"),
        pytest.param(sub(notificationTrigger=["entityChanged"]), id="bad-trigger"),
        pytest.param(sub(notificationTrigger=[]), id="empty-triggers"),
        pytest.param(sub(lang=""), id="empty-lang"),
        pytest.param(sub(lang="!!"), id="lang-not-a-language-tag"),
        pytest.param(sub(lang="en;q=2"), id="lang-weight-past-1"),
        pytest.param(sub(datasetId=["not a uri"]), id="bad-datasetId"),
        pytest.param(sub(jsonldContext="unknownContext"), id="jsonldContext-not-uri"),
        pytest.param(sub(subscriptionName=5), id="name-not-string"),
        pytest.param(
            sub(description=None, throttling=None, notification=None, entities=None), id="bare"
        ),
    ],
)
async def test_create_rejects_invalid_subscriptions(client: httpx.AsyncClient, body: Any) -> None:
    problem(await post(client, body), 400, "BadRequestData")
    assert (await client.get(SUBS)).json() == []


async def test_create_rejects_non_object_bodies(client: httpx.AsyncClient) -> None:
    bad_request(await post(client, "a string"))
    bad_request(await post(client, [sub()]))


@pytest.mark.parametrize("fmt", ["normalized", "keyValues", "simplified", "concise"])
async def test_notification_formats(client: httpx.AsyncClient, fmt: str) -> None:
    body = sub(notification={"endpoint": ENDPOINT, "format": fmt})
    assert (await post(client, body)).status_code == 201
    assert (await fetch(client))["notification"]["format"] == fmt


async def test_null_members_of_a_new_subscription_are_absent(client: httpx.AsyncClient) -> None:
    body = {**sub(), "expiresAt": None, "throttling": None}
    assert (await post(client, body)).status_code == 201
    got = await fetch(client)
    assert "expiresAt" not in got and "throttling" not in got
    problem(await post(client, {**sub(id="urn:x:n"), "notification": None}), 400, "BadRequestData")


async def test_watched_attributes_alone_are_enough(client: httpx.AsyncClient) -> None:
    body = sub(entities=None, watchedAttributes=["name"])
    assert (await post(client, body)).status_code == 201
    assert "entities" not in await fetch(client)


async def test_system_members_in_a_body_are_ignored(client: httpx.AsyncClient) -> None:
    body = sub(status="expired", createdAt="2000-01-01T00:00:00Z")
    body["notification"] = {**body["notification"], "timesSent": 9, "status": "failed"}
    assert (await post(client, body)).status_code == 201
    got = await fetch(client)
    assert got["status"] == "active" and "createdAt" not in got
    assert "timesSent" not in got["notification"] and "status" not in got["notification"]


# -- tenants ----------------------------------------------------------------------------------
A = {"NGSILD-Tenant": "city-a"}
B = {"NGSILD-Tenant": "city-b"}


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    assert (await post(client, sub(), A)).status_code == 201
    assert (await fetch(client, headers=A))["id"] == SID
    problem(await client.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")
    assert (await client.get(SUBS)).json() == []
    # the same id in another tenant is another subscription
    assert (await post(client, sub(timeInterval=7))).status_code == 201
    assert "timeInterval" not in await fetch(client, headers=A)
    await create(client, {"id": "urn:ngsi-ld:Thing:1", "type": "Thing"}, headers=B)
    assert (await client.get(SUBS, headers=B)).json() == []
    problem(await client.get(f"{SUBS}/{SID}", headers=B), 404, "ResourceNotFound")
    problem(await patch(client, {"throttling": 1}, headers=B), 404, "ResourceNotFound")
    problem(await client.delete(f"{SUBS}/{SID}", headers=B), 404, "ResourceNotFound")
    assert (await client.delete(f"{SUBS}/{SID}", headers=A)).status_code == 204
    assert (await fetch(client))["timeInterval"] == 7


async def test_unknown_tenant_is_404(client: httpx.AsyncClient) -> None:
    unknown = {"NGSILD-Tenant": "nowhere"}
    problem(await client.get(SUBS, headers=unknown), 404, "NonexistentTenant")
    problem(await client.get(f"{SUBS}/{SID}", headers=unknown), 404, "NonexistentTenant")
    problem(await client.delete(f"{SUBS}/{SID}", headers=unknown), 404, "NonexistentTenant")
    resp = await client.patch(f"{SUBS}/{SID}", json={"throttling": 1}, headers=unknown)
    problem(resp, 404, "NonexistentTenant")


# -- context source registration subscriptions --------------------------------------------------
async def test_csource_subscriptions_crud(client: httpx.AsyncClient) -> None:
    body = sub(notificationTrigger=None)
    resp = await post(client, body, url=CSUBS)
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{CSUBS}/{SID}"
    problem(await post(client, body, url=CSUBS), 409, "AlreadyExists")
    got = (await client.get(f"{CSUBS}/{SID}")).json()
    assert "notificationTrigger" not in got and got["status"] == "active"
    assert (await client.get(SUBS)).json() == [], "a separate collection"
    resp = await client.patch(f"{CSUBS}/{SID}", json={"isActive": False})
    assert resp.status_code == 204, resp.text
    listed = (await client.get(CSUBS)).json()
    assert [s["status"] for s in listed] == ["paused"] and listed[0]["isActive"] is False
    problem(
        await post(client, sub(id="urn:ngsi-ld:Subscription:x", q="(a"), url=CSUBS),
        400,
        "BadRequestData",
    )
    assert (await client.delete(f"{CSUBS}/{SID}")).status_code == 204
    problem(await client.get(f"{CSUBS}/{SID}"), 404, "ResourceNotFound")
    problem(await client.get(CSUBS, headers={"Accept": "application/xml"}), 406, "NotAcceptable")


async def test_csource_subscription_temporal_query(client: httpx.AsyncClient) -> None:
    tq = {
        "timerel": "between",
        "timeAt": "2020-01-01T00:00:00Z",
        "endTimeAt": "2021-01-01T00:00:00Z",
    }
    assert (await post(client, sub(temporalQ=tq), url=CSUBS)).status_code == 201
    assert (await client.get(f"{CSUBS}/{SID}")).json()["temporalQ"] == tq
    bad = {"timerel": "between", "timeAt": "2020-01-01T00:00:00Z"}
    problem(await post(client, sub(id="urn:x:2", temporalQ=bad), url=CSUBS), 400, "BadRequestData")


async def test_names_are_stored_expanded(client: httpx.AsyncClient, app: Any) -> None:
    """Names expanded with the core context's @vocab are stored as IRIs and come back short."""
    body = sub(notification={"attributes": ["a"], "endpoint": ENDPOINT})
    assert (await post(client, body)).status_code == 201
    stored = app.state.store.resource_get("subscription", "", SID)
    assert stored["notification"]["attributes"] == [DEFAULT_VOCAB + "a"]
    assert stored["entities"] == [{"type": DEFAULT_VOCAB + "Building"}]
    assert (await fetch(client))["notification"]["attributes"] == ["a"]


async def test_ids_may_hold_slashes(client: httpx.AsyncClient) -> None:
    sid = "http://example.org/subscriptions/1"
    resp = await post(client, sub(id=sid))
    assert resp.status_code == 201, resp.text
    location = resp.headers["location"]
    assert location == f"{SUBS}/http:%2F%2Fexample.org%2Fsubscriptions%2F1"
    assert (await client.get(location)).json()["id"] == sid
    assert (await fetch(client, sid))["id"] == sid
    assert (await patch(client, {"throttling": 2}, sid=sid)).status_code == 204
    assert (await client.delete(f"{SUBS}/{sid}")).status_code == 204


async def test_an_update_whose_context_cannot_be_had_is_503_and_changes_nothing(
    client: httpx.AsyncClient, context_server: ContextServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 204 was answered while the notifier, unable to compile the update, kept notifying
    as before (its cached @context deleted, the site down)."""
    from urllib.parse import quote

    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.errors import LdContextNotAvailable

    url = context_server.url("/ctx/sub-gone.jsonld")
    resp = await post(client, sub(), headers={"Link": link(url)})
    assert resp.status_code == 201, resp.text
    assert (await client.delete(f"{BASE}/jsonldContexts/{quote(url, safe='')}")).status_code == 204

    async def down(self: ContextCache, url: str) -> Any:
        raise LdContextNotAvailable(f"@context {url} is not reachable")

    monkeypatch.setattr(ContextCache, "_fetch", down)
    resp = await client.patch(f"{SUBS}/{SID}", json={"isActive": False})
    problem(resp, 503, "LdContextNotAvailable")
    assert (await fetch(client))["status"] == "active", "nothing was stored"


@pytest.mark.parametrize(
    "member",
    [
        {"csf": "nosuchattr==1"},
        {"temporalQ": {"timerel": "before", "timeAt": "2000-01-01T00:00:00Z"}},
    ],
    ids=["csf", "temporalQ"],
)
async def test_an_entity_subscription_refuses_what_only_filters_registrations(
    client: httpx.AsyncClient, member: dict[str, Any]
) -> None:
    """csf and temporalQ were stored on /subscriptions and never applied (probe 2, finding 3);
    a csourceSubscription takes them."""
    [name] = member
    assert name in bad_request(await post(client, sub(**member)))["detail"]
    problem(await client.get(f"{SUBS}/{SID}"), 404, "ResourceNotFound")
    assert (await post(client, sub())).status_code == 201
    assert name in bad_request(await patch(client, member))["detail"]
    assert name not in await fetch(client)
    assert (await post(client, sub(**member), url=CSUBS)).status_code == 201


@pytest.mark.parametrize("url", [SUBS, CSUBS])
async def test_expires_at_must_give_its_time_zone(client: httpx.AsyncClient, url: str) -> None:
    """A naive expiresAt was read as UTC on a subscription and refused on a registration."""
    naive = bad_request(await post(client, sub(expiresAt="2099-01-01T00:00:00"), url=url))
    assert "time zone" in naive["detail"]
    assert (
        await post(client, sub(expiresAt="2099-01-01T09:00:00+09:00"), url=url)
    ).status_code == 201
    resp = await client.patch(f"{url}/{SID}", json={"expiresAt": "2099-06-01T00:00:00"})
    assert "time zone" in bad_request(resp)["detail"]
    got = (await client.get(f"{url}/{SID}")).json()
    assert got["expiresAt"] == "2099-01-01T09:00:00+09:00"

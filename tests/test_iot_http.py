"""The HTTP southbound, refusals counted per reason, dead letters and their bound."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.ingest.agent.payload import Raw
from cityhub.settings import Settings
from conftest import BASE, VOCAB, ContextServer, get_entity, link, problem
from iot_support import IOT, MAPPING, provision, stats, wait_for, wait_stats

EID = "urn:ngsi-ld:Thermometer:h1"


async def http_device(client: httpx.AsyncClient, **extra: Any) -> str:
    body = {"id": "h1", "entityType": "Thermometer", "protocol": "http", "mapping": MAPPING}
    return str((await provision(client, {**body, **extra}))["apikey"])


async def test_json_measurement_is_mapped_and_stored(client: httpx.AsyncClient) -> None:
    key = await http_device(client)
    payload = {"t": 215, "la": 48.1, "lo": 11.5, "room": "B1", "ts": "2024-05-01T10:00:00Z"}
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "h1"}, json=payload)
    assert resp.status_code == 204, resp.text
    entity = await get_entity(client, EID)
    assert entity["temperature"] == {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": "2024-05-01T10:00:00.000000Z",
    }
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [11.5, 48.1]}
    assert entity["isIn"]["object"] == "urn:ngsi-ld:Room:B1"
    assert entity["name"]["value"] == "Boiler room sensor"  # static, from provisioning


async def test_compact_text_and_history(client: httpx.AsyncClient) -> None:
    key = await http_device(client)
    for body in (b"t|200|ts|1714557600", b"t|210|ts|1714557660"):
        resp = await client.post(
            f"{IOT}/json",
            params={"k": key, "i": "h1"},
            content=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        assert resp.status_code == 204, resp.text
    resp = await client.get(f"{BASE}/temporal/entities/{EID}", params={"attrs": "temperature"})
    assert resp.status_code == 200, resp.text
    values = [(i["value"], i["observedAt"]) for i in resp.json()["temperature"]]
    assert values == [
        (20.0, "2024-05-01T10:00:00.000000Z"),
        (21.0, "2024-05-01T10:01:00.000000Z"),
    ]


async def test_refusals_answer_problem_details_and_are_counted(
    client: httpx.AsyncClient,
) -> None:
    key = await http_device(client)
    mqtt_key = (await provision(client, {"id": "m1", "entityType": "T"}))["apikey"]
    url = f"{IOT}/json"
    cases: list[tuple[dict[str, str], Any, int, str]] = [
        ({"k": key}, {"t": 1}, 400, "InvalidRequest"),  # no device id: bad_request
        ({"k": "x" * 20, "i": "h1"}, {"t": 1}, 404, "ResourceNotFound"),  # another key
        ({"k": key, "i": "h9"}, {"t": 1}, 404, "ResourceNotFound"),  # unknown_device
        ({"k": mqtt_key, "i": "m1"}, {"t": 1}, 400, "BadRequestData"),  # wrong_protocol
        ({"k": key, "i": "h1"}, b"{oops", 400, "InvalidRequest"),  # malformed
        ({"k": key, "i": "h1"}, {"t": "hot"}, 400, "BadRequestData"),  # bad_value
        ({"k": key, "i": "h1"}, {"zz": 1}, 400, "BadRequestData"),  # no_data
    ]
    for params, body, status, kind in cases:
        content = body if isinstance(body, bytes) else None
        resp = await client.post(
            url,
            params=params,
            json=None if content else body,
            content=content,
            headers={"Content-Type": "application/json"},
        )
        problem(resp, status, kind)
    resp = await client.post(
        url, params={"k": key, "i": "h1"}, content=b"t=1", headers={"Content-Type": "text/csv"}
    )
    problem(resp, 415, "UnsupportedMediaType")
    body = await wait_stats(client, deadLetters=8)
    assert body["received"] == 8 and body["stored"] == 0 and body["rejected"] == 8
    assert {k: v for k, v in body["rejectedByReason"].items() if v} == {
        "bad_request": 1,
        "unknown_device": 2,  # an unknown id and a known one with another key, alike
        "wrong_protocol": 1,
        "malformed": 1,
        "bad_value": 1,
        "no_data": 1,
        "unsupported_media_type": 1,
    }
    assert body["receivedByProtocol"] == {"mqtt": 0, "http": 8}


async def test_dead_letters_hold_the_raw_message_not_the_key(client: httpx.AsyncClient) -> None:
    key = await http_device(client)
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "h1"}, json={"t": "hot"})
    problem(resp, 400)
    await wait_stats(client, deadLetters=1)
    letters = (await client.get(f"{IOT}/deadletters")).json()
    assert len(letters) == 1
    letter = letters[0]
    assert letter["reason"] == "bad_value" and letter["device"] == "h1"
    assert letter["payload"] == '{"t":"hot"}' and letter["protocol"] == "http"
    assert key not in str(letter)
    cleared = await client.delete(f"{IOT}/deadletters")
    assert cleared.json() == {"deleted": 1}
    assert (await client.get(f"{IOT}/deadletters")).json() == []
    assert (await stats(client))["deadLetters"] == 0


async def test_good_messages_of_a_batch_survive_bad_ones(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    """One batch: good, malformed, good, a fragment NGSI-LD refuses at write time, good."""
    body = {"id": "k1", "entityType": "Thermometer", "protocol": "mqtt", "mapping": {}}
    key = (await provision(client, body))["apikey"]
    ingestor = app.state.iot.ingestor
    for payload in (b'{"t": 1}', b"{broken", b'{"t": 2}', b'{"location": 5}', b"t|3"):
        ingestor.submit(Raw("mqtt", key, "k1", payload, topic=f"cityhub/{key}/k1/attrs"))
    body = await wait_stats(client, stored=3, deadLetters=2)
    assert body["rejectedByReason"]["malformed"] == 1
    assert body["rejectedByReason"]["invalid_entity"] == 1
    assert body["batches"] == 1
    entity = await get_entity(client, "urn:ngsi-ld:Thermometer:k1")
    assert entity["t"]["value"] == 3
    resp = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Thermometer:k1")
    assert [i["value"] for i in resp.json()["t"]] == [1, 2, 3]
    letters = (await client.get(f"{IOT}/deadletters")).json()
    assert [x["reason"] for x in letters] == ["malformed", "invalid_entity"]
    assert "GeoProperty" in letters[1]["detail"]
    assert all(key not in x["topic"] and x["topic"] == "cityhub/<apikey>/k1/attrs" for x in letters)


async def test_a_message_is_stored_whole_or_not_at_all(client: httpx.AsyncClient) -> None:
    """An array with one measurement NGSI-LD refuses was answered 400 while the others were
    stored: a device that retried stored them twice."""
    body = {"id": "w1", "entityType": "Thermometer", "protocol": "http", "mapping": {}}
    key = (await provision(client, body))["apikey"]
    params = {"k": key, "i": "w1"}
    resp = await client.post(
        f"{IOT}/json", params=params, json=[{"a": 10}, {"location": 5}, {"a": 11}]
    )
    problem(resp, 400)
    history = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Thermometer:w1")
    assert "a" not in history.json(), history.text
    resp = await client.post(f"{IOT}/json", params=params, json=[{"a": 10}, {"a": 11}])
    assert resp.status_code == 204, resp.text
    history = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Thermometer:w1")
    assert [i["value"] for i in history.json()["a"]] == [10, 11]


async def test_the_dead_letter_store_is_bounded(db_path: Path) -> None:
    app = create_app(Settings(db=str(db_path), deadletter_max=5))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            for i in range(12):
                await client.post(f"{IOT}/json", params={"k": "k" * 16, "i": f"nobody{i}"}, json={})
            body = await wait_stats(client, unknown_device=12, deadLettersDropped=7)
            assert body["deadLetters"] == 5
            unrouted = {"unrouted": "true"}
            letters = await client.get(f"{IOT}/deadletters", params={"limit": 100, **unrouted})
            assert [x["device"] for x in letters.json()] == [f"nobody{i}" for i in range(7, 12)]
            page = await client.get(
                f"{IOT}/deadletters", params={"limit": 2, "offset": 1, **unrouted}
            )
            assert [x["device"] for x in page.json()] == ["nobody8", "nobody9"]
            assert page.headers["X-Total-Count"] == "5"
    finally:
        app.state.store.close()


async def test_oversized_messages_are_refused(client: httpx.AsyncClient) -> None:
    key = await http_device(client)
    resp = await client.post(
        f"{IOT}/json",
        params={"k": key, "i": "h1"},
        content=b"t|" + b"1" * 300_000,
        headers={"Content-Type": "text/plain"},
    )
    problem(resp, 400, "InvalidRequest")
    assert (await wait_stats(client, too_large=1))["rejected"] == 1

    async def undeclared() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check
        yield b"t|"
        for _ in range(30):
            yield b"1" * 10_000

    resp = await client.post(
        f"{IOT}/json",
        params={"k": key, "i": "h1"},
        content=undeclared(),
        headers={"Content-Type": "text/plain"},
    )
    problem(resp, 400, "InvalidRequest")
    assert (await wait_stats(client, too_large=2))["rejected"] == 2


async def test_refusals_before_the_payload_are_filed_in_the_device_tenant(
    client: httpx.AsyncClient,
) -> None:
    """Too large, the wrong Content-Type or a missing k/i of a device that the query names
    are the tenant's letters, as over MQTT; a query that names no device stays unrouted."""
    north = {"NGSILD-Tenant": "north"}
    body = {"id": "h1", "entityType": "Thermometer", "protocol": "http", "mapping": MAPPING}
    key = (await provision(client, body, tenant="north"))["apikey"]
    query = {"k": key, "i": "h1"}
    big = await client.post(
        f"{IOT}/json",
        params=query,
        content=b"t|" + b"1" * 300_000,
        headers={"Content-Type": "text/plain"},
    )
    problem(big, 400, "InvalidRequest")
    xml = await client.post(
        f"{IOT}/json", params=query, content=b"<t/>", headers={"Content-Type": "text/xml"}
    )
    assert xml.status_code == 415
    unknown = await client.post(
        f"{IOT}/json",
        params={"k": key, "i": "nobody"},
        content=b"<t/>",
        headers={"Content-Type": "text/xml"},
    )
    assert unknown.status_code == 415
    await wait_stats(client, too_large=1, unsupported_media_type=2)

    async def letters(params: dict[str, str]) -> list[tuple[str, str]]:
        resp = await client.get(f"{IOT}/deadletters", params=params, headers=north)
        return [(x["reason"], x["device"]) for x in resp.json()]

    async def filed() -> bool:
        return len(await letters({})) + len(await letters({"unrouted": "true"})) == 3

    await wait_for(filed, "three dead letters")
    assert await letters({}) == [("too_large", "h1"), ("unsupported_media_type", "h1")]
    assert await letters({"unrouted": "true"}) == [("unsupported_media_type", "nobody")]


async def test_a_device_context_names_its_attributes(
    client: httpx.AsyncClient, context_server: ContextServer, closed_url: str
) -> None:
    ctx = context_server.url("/ctx/iot.jsonld")
    body = {"id": "c1", "entityType": "Sensor", "protocol": "http", "ldContext": ctx}
    body["mapping"] = {"attributes": {"t": {"name": "temperature"}}}
    key = (await provision(client, body))["apikey"]
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "c1"}, json={"t": 20})
    assert resp.status_code == 204, resp.text
    eid = "urn:ngsi-ld:Sensor:c1"
    plain = await get_entity(client, eid)
    assert plain["type"] == VOCAB + "Sensor" and VOCAB + "temperature" in plain
    linked = await get_entity(client, eid, headers={"Link": link(ctx)})
    assert linked["temperature"]["value"] == 20
    unreachable = {**body, "id": "c2", "ldContext": closed_url}
    problem(await client.post(f"{IOT}/devices", json=unreachable), 503, "LdContextNotAvailable")


async def test_a_clean_stop_writes_what_the_mqtt_client_had_received(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    """Cancelling the subscriber threw away the messages aiomqtt had received and acknowledged
    but the agent had not taken yet: a SIGTERM lost seconds of QoS 1 messages."""
    import asyncio
    from types import SimpleNamespace

    from cityhub.ingest.agent.mqtt import bounded_queue

    body = {"id": "q1", "entityType": "Thermometer", "protocol": "mqtt", "mapping": {}}
    key = (await provision(client, body))["apikey"]
    agent = app.state.iot
    queue = bounded_queue(agent.connection, 100)()  # as aiomqtt makes it
    topic = SimpleNamespace(value=f"cityhub/{key}/q1/attrs")
    for n in range(5):
        queue.put_nowait(SimpleNamespace(retain=False, payload=b'{"n": %d}' % n, topic=topic))
    agent._task = asyncio.create_task(asyncio.sleep(3600))  # the subscriber, stopped midway
    await agent.stop()
    history = await client.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Thermometer:q1")
    assert [i["value"] for i in history.json()["n"]] == [0, 1, 2, 3, 4], history.text


async def test_a_message_on_the_other_protocol_is_told_how_to_switch(
    client: httpx.AsyncClient,
) -> None:
    """The README provisioned boiler-1 for MQTT (the default) and then posted to it over HTTP:
    the 400 said only that the protocols differ."""
    key = (await provision(client, {"id": "boiler-1", "entityType": "T"}))["apikey"]
    resp = await client.post(f"{IOT}/json", params={"k": key, "i": "boiler-1"}, json={"t": 1})
    detail = problem(resp, 400, "BadRequestData")["detail"]
    assert detail == (
        "device 'boiler-1' is provisioned for mqtt, not http (change it with "
        "`cityhub iot devices update boiler-1 --protocol http`)"
    )


async def test_big_array_messages_are_written_in_slices(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """Array messages of one batch go to the committer a slice at a time (as the batch API
    does), so other requests run between them: five 1,000-measurement posts were one job that
    held an unrelated GET for 8.7 s."""
    body = {"id": "h1", "entityType": "Thermometer", "protocol": "http"}
    key = str((await provision(client, body))["apikey"])
    entities = app.state.entities
    calls: list[int] = []
    real = entities.batch_upsert

    def counted(tenant: str, items: list[Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(items))
        return real(tenant, items, *args, **kwargs)

    entities.batch_upsert = counted
    message = [{f"f{j}": i + j for j in range(20)} for i in range(1000)]

    async def post() -> int:
        resp = await client.post(f"{IOT}/json", params={"k": key, "i": "h1"}, json=message)
        return resp.status_code

    assert await asyncio.gather(*(post() for _ in range(4))) == [204] * 4
    assert sum(calls) == 4000
    assert max(calls) <= 1000, calls  # one message (20,000 elements) per slice at most
    assert (await stats(client))["stored"] == 4


async def test_letters_of_unknown_devices_reveal_no_device_and_have_their_own_bound(
    db_path: Path,
) -> None:
    """A wrong key and an unknown id leave the same letter (they answer the same 404, so the
    letters must not tell which ids exist in other tenants), and a flood of them cannot
    push a tenant's own letters out: they keep a bound of their own."""
    app = create_app(Settings(db=str(db_path), deadletter_max=5))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            body = {"id": "t1d", "entityType": "T", "protocol": "http", "mapping": MAPPING}
            key = (await provision(client, body, tenant="t1"))["apikey"]
            bad = await client.post(f"{IOT}/json", params={"k": key, "i": "t1d"}, json={"t": "x"})
            assert bad.status_code == 400
            probe_key = "guessguessguess1234"
            for device in ("t1d", "nosuchdev"):
                resp = await client.post(
                    f"{IOT}/json", params={"k": probe_key, "i": device}, json={}
                )
                assert resp.status_code == 404
            body = await wait_stats(client, deadLetters=3)
            assert body["rejectedByReason"].get("wrong_key", 0) == 0
            assert body["rejectedByReason"]["unknown_device"] == 2
            unrouted = (await client.get(f"{IOT}/deadletters", params={"unrouted": "true"})).json()
            shapes = {(x["reason"], x["detail"].replace(repr(x["device"]), "ID")) for x in unrouted}
            assert len(shapes) == 1, unrouted  # the two letters differ only by the id sent
            for i in range(12):
                await client.post(f"{IOT}/json", params={"k": "k" * 16, "i": f"x{i}"}, json={})
            await wait_stats(client, unknown_device=14, deadLettersDropped=9)
            mine = await client.get(f"{IOT}/deadletters", headers={"NGSILD-Tenant": "t1"})
            assert [x["reason"] for x in mine.json()] == ["bad_value"]
            unrouted = (await client.get(f"{IOT}/deadletters", params={"unrouted": "true"})).json()
            assert [x["device"] for x in unrouted] == [f"x{i}" for i in range(7, 12)]
            default = (await client.get(f"{IOT}/deadletters")).json()
            assert default == []  # the default tenant's own letters: none
    finally:
        app.state.store.close()

"""Integers past 64 bits (a probe's finding 2.1, 2026-12-07): orjson read them as the
nearest double, so a JsonProperty's 20-digit ICCID came back with its last digits changed,
to history and notifications too, and `q` with the number the client sent found nothing.
They are refused, naming where they are (decision 053)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cityhub.ingest.agent.payload import decode
from cityhub.ingest.agent.reasons import Rejected
from cityhub.ingest.importers.geojsonfile import GeoJsonSource
from cityhub.jsonints import huge_integer
from conftest import BASE, bad_request, create, get_entity

ICCID = "89314404000123456789"  # 20 digits, past 2^64


async def post_raw(client: httpx.AsyncClient, path: str, body: str) -> httpx.Response:
    return await client.post(
        f"{BASE}{path}", content=body, headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("member", "path"),
    [
        ('"j": {"type": "JsonProperty", "json": {"iccid": BIG}}', "j.json.iccid"),
        ('"n": {"type": "Property", "value": BIG}', "n.value"),
        ('"l": {"type": "ListProperty", "valueList": [1, BIG]}', "l.valueList[1]"),
        ('"n": BIG', "n"),  # concise
    ],
)
async def test_an_integer_past_64_bits_is_a_400_naming_its_path(
    client: httpx.AsyncClient, member: str, path: str
) -> None:
    body = '{"id": "urn:ngsi-ld:Big:1", "type": "Big", MEMBER}'.replace("MEMBER", member)
    body = body.replace("BIG", ICCID)
    detail = bad_request(await post_raw(client, "/entities", body))["detail"]
    assert detail.startswith(f"{path}: the integer {ICCID} ") and "-2^63 to 2^63-1" in detail
    assert (await client.get(f"{BASE}/entities/urn:ngsi-ld:Big:1")).status_code == 404


async def test_the_edges_of_the_range_are_kept_exactly(client: httpx.AsyncClient) -> None:
    body = (
        '{"id": "urn:ngsi-ld:Big:1", "type": "Big", "hi": 9223372036854775807, '
        '"lo": -9223372036854775808, "ns": 1733000000000000000, "f": 1.8e19, '
        '"s": {"type": "Property", "value": "BIG"}}'
    ).replace("BIG", ICCID)
    assert (await post_raw(client, "/entities", body)).status_code == 201
    got = await get_entity(client, "urn:ngsi-ld:Big:1", {"options": "keyValues"})
    assert (got["hi"], got["lo"], got["ns"]) == (2**63 - 1, -(2**63), 1733000000000000000)
    assert got["f"] == 1.8e19 and got["s"] == ICCID  # a double and a string stay as sent
    r = await client.get(f"{BASE}/entities", params={"type": "Big", "q": "hi==9223372036854775807"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Big:1"]
    for past in ("9223372036854775808", "-9223372036854775809"):
        body = '{"id": "urn:ngsi-ld:Big:2", "type": "Big", "n": BIG}'.replace("BIG", past)
        detail = bad_request(await post_raw(client, "/entities", body))["detail"]
        assert f"n: the integer {past} " in detail


async def test_batches_and_temporal_writes_name_the_item(client: httpx.AsyncClient) -> None:
    batch = '[{"id": "urn:ngsi-ld:Big:1", "type": "Big", "n": 1}, ' + (
        '{"id": "urn:ngsi-ld:Big:2", "type": "Big", "n": BIG}]'
    ).replace("BIG", ICCID)
    detail = bad_request(await post_raw(client, "/entityOperations/upsert", batch))["detail"]
    assert detail.startswith("[1].n: the integer")
    temporal = (
        '{"id": "urn:ngsi-ld:Big:3", "type": "Big", "n": [{"type": "Property", "value": BIG, '
        '"observedAt": "2024-01-01T00:00:00Z"}]}'
    ).replace("BIG", ICCID)
    detail = bad_request(await post_raw(client, "/temporal/entities", temporal))["detail"]
    assert detail.startswith("n[0].value: the integer")


async def test_a_q_literal_past_the_range_is_a_400(client: httpx.AsyncClient) -> None:
    """No stored value can equal it: the answer [] hid that the literal could never match."""
    await create(client, {"id": "urn:ngsi-ld:Big:1", "type": "Big", "n": 1})
    for q in (f"n=={ICCID}", "n>9223372036854775808", "n==1..99999999999999999999"):
        r = await client.get(f"{BASE}/entities", params={"type": "Big", "q": q})
        assert "an integer is kept exactly from -2^63" in bad_request(r)["detail"], q
    r = await client.get(f"{BASE}/entities", params={"type": "Big", "q": "n<1e30"})
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Big:1"]  # a double literal is fine


def test_device_messages_with_such_an_integer_are_refused() -> None:
    with pytest.raises(Rejected) as caught:
        decode(b'{"iccid": %s}' % ICCID.encode())
    assert caught.value.reason == "bad_value" and "iccid: the integer" in caught.value.detail


def test_digits_in_strings_and_doubles_are_not_integers() -> None:
    assert huge_integer(b'{"a": "%s", "b": 1.%se5}' % (ICCID.encode(), ICCID.encode())) is None
    assert huge_integer(b'[{"a": [0, -%s]}]' % ICCID.encode()) == ("[0].a[1]", "-" + ICCID)
    assert huge_integer(ICCID.encode()) == ("the document", ICCID)


@pytest.mark.parametrize("collection", [True, False])
def test_an_imported_feature_with_such_an_integer_is_rejected(
    tmp_path: Path, collection: bool
) -> None:
    """The feature is refused with the path (an error of its own record), the others import."""
    bad = '{"type": "Feature", "id": "b", "geometry": null, "properties": {"iccid": BIG}}'
    bad = bad.replace("BIG", ICCID)
    good = '{"type": "Feature", "id": "g", "geometry": null, "properties": {"n": 1}}'
    path = tmp_path / "data.geojson"
    text = '{"type": "FeatureCollection", "features": [' + good + ", " + bad + "]}"
    path.write_text(text if collection else bad)
    records = list(GeoJsonSource(path, "Thing"))
    assert [r.entity is not None for r in records] == ([True, False] if collection else [False])
    error = records[-1].error
    assert error is not None and error.detail.startswith("properties.iccid: the integer")

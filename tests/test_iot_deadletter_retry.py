"""An operator deals with dead letters one at a time: reads one, deletes one, and retries one
once the device that refused it is fixed (or, for a message no device took, provisioned), so
the readings of a wrong mapping, protocol or a deleted device are not lost."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from iot_support import IOT, provision, stats, wait_for
from test_erased_from_disk import holders, no_secure_delete_by_default  # noqa: F401

KEY = "retry-key-0123456789"
LETTERS = f"{IOT}/deadletters"
ENTITY = "/ngsi-ld/v1/entities/urn:ngsi-ld:Door:door-1"


def _agent(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.iot  # type: ignore[attr-defined]


async def _door(client: httpx.AsyncClient, kind: str = "number", protocol: str = "http") -> None:
    body = {
        "id": "door-1",
        "entityType": "Door",
        "apikey": KEY,
        "protocol": protocol,
        "mapping": {"attributes": {"st": {"name": "status", "type": kind}}},
    }
    await provision(client, body)


async def _letters(client: httpx.AsyncClient, unrouted: bool = False) -> list[dict[str, Any]]:
    resp = await client.get(LETTERS, params={"unrouted": "true"} if unrouted else None)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


async def _held(client: httpx.AsyncClient, count: int, unrouted: bool = False) -> list[Any]:
    """The letters, once `count` of them were written (a batch writes them after answering)."""

    async def there() -> bool:
        return len(await _letters(client, unrouted)) == count

    await wait_for(there, f"{count} letter(s)")
    return await _letters(client, unrouted)


async def _send(client: httpx.AsyncClient, payload: str) -> httpx.Response:
    return await client.post(
        f"{IOT}/json",
        params={"k": KEY, "i": "door-1"},
        content=payload,
        headers={"Content-Type": "text/plain"},
    )


async def test_one_letter_is_read_and_deleted_alone(client: httpx.AsyncClient) -> None:
    await _door(client)
    assert (await _send(client, "st|open")).status_code == 400
    assert (await _send(client, "st|shut")).status_code == 400
    first, second = await _held(client, 2)
    resp = await client.get(f"{LETTERS}/{first['id']}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == first and first["payload"] == "st|open"
    assert (await client.delete(f"{LETTERS}/{first['id']}")).status_code == 204
    gone = await client.get(f"{LETTERS}/{first['id']}")
    assert gone.status_code == 404 and gone.json()["type"].endswith("ResourceNotFound")
    assert (await client.delete(f"{LETTERS}/{first['id']}")).status_code == 404
    assert await _letters(client) == [second]
    assert (await stats(client))["deadLetters"] == 1


async def test_a_letter_retried_after_its_device_was_fixed_is_stored_and_gone(
    client: httpx.AsyncClient,
) -> None:
    await _door(client)  # status mapped as a number: "open" is refused
    assert (await _send(client, "st|open")).status_code == 400
    (letter,) = await _held(client, 1)
    assert letter["reason"] == "bad_value"
    fixed = {"mapping": {"attributes": {"st": {"name": "status", "type": "string"}}}}
    assert (await client.patch(f"{IOT}/devices/door-1", json=fixed)).status_code == 200
    resp = await client.post(f"{LETTERS}/{letter['id']}/retry")
    assert resp.status_code == 204, resp.text
    assert (await client.get(ENTITY)).json()["status"]["value"] == "open"
    assert await _letters(client) == []
    counters = await stats(client)
    assert counters["retried"] == 1 and counters["deadLetters"] == 0
    assert counters["received"] == 1 and counters["rejected"] == 1, "a retry is no new message"


async def test_a_letter_refused_again_stays_once_with_the_new_refusal(
    client: httpx.AsyncClient,
) -> None:
    await _door(client, protocol="mqtt")
    assert (await _send(client, "st|open")).status_code == 400  # wrong protocol
    (letter,) = await _held(client, 1)
    assert letter["reason"] == "wrong_protocol"
    switched = await client.patch(f"{IOT}/devices/door-1", json={"protocol": "http"})
    assert switched.status_code == 200
    resp = await client.post(f"{LETTERS}/{letter['id']}/retry")  # now "open" is no number
    assert resp.status_code == 400, resp.text
    assert resp.json()["type"].endswith("BadRequestData") and "'st'" in resp.json()["detail"]
    (kept,) = await _letters(client)
    assert kept["id"] == letter["id"] and kept["reason"] == "bad_value"
    assert kept["payload"] == "st|open" and "retriedAt" in kept
    assert (await stats(client))["rejected"] == 1, "the retry is counted as no new refusal"


async def test_a_retry_is_stored_once_however_often_it_is_asked_for(
    client: httpx.AsyncClient,
) -> None:
    await _door(client)
    assert (await _send(client, "st|open")).status_code == 400
    (letter,) = await _held(client, 1)
    fixed = {"mapping": {"attributes": {"st": {"name": "status", "type": "string"}}}}
    assert (await client.patch(f"{IOT}/devices/door-1", json=fixed)).status_code == 200
    url = f"{LETTERS}/{letter['id']}/retry"
    answers = await asyncio.gather(*(client.post(url) for _ in range(3)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 204 and codes[1:] in ([404, 404], [409, 409], [404, 409]), codes
    history = await client.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Door:door-1",
        params={"options": "temporalValues", "attrs": "status"},
    )
    assert [v[0] for v in history.json()["status"]["values"]] == ["open"]


async def test_an_unrouted_letter_goes_to_the_device_provisioned_since_with_its_key(
    client: httpx.AsyncClient,
) -> None:
    """A device deleted by mistake (or provisioned late): its messages meanwhile are unrouted
    letters; once it is back with the same key they can be retried, and a letter whose key
    names no device stays."""
    agent = _agent(client)
    agent.on_mqtt(f"cityhub/{KEY}/door-1/attrs", b'{"st": "open"}')
    agent.on_mqtt("cityhub/another-key-0123456789/door-1/attrs", b'{"st": "forged"}')

    mine, forged = await _held(client, 2, unrouted=True)
    assert "keyDigest" not in mine and KEY not in str(mine)
    await _door(client, kind="string", protocol="mqtt")
    resp = await client.post(f"{LETTERS}/{mine['id']}/retry", params={"unrouted": "true"})
    assert resp.status_code == 204, resp.text
    assert (await client.get(ENTITY)).json()["status"]["value"] == "open"
    refused = await client.post(f"{LETTERS}/{forged['id']}/retry", params={"unrouted": "true"})
    assert refused.status_code == 409, refused.text
    assert await _letters(client, unrouted=True) == [forged]
    assert (await client.get(ENTITY)).json()["status"]["value"] == "open"


async def test_a_letter_cut_short_is_not_retried(client: httpx.AsyncClient) -> None:
    await _door(client, kind="string")
    big = "st|" + "x" * 20_000
    assert (await _send(client, big + "|extra")).status_code == 400  # odd pairs: malformed
    (letter,) = await _held(client, 1)
    assert letter["truncated"] is True
    resp = await client.post(f"{LETTERS}/{letter['id']}/retry")
    assert resp.status_code == 409 and "16 KiB" in resp.json()["detail"], resp.text
    assert await _letters(client) == [letter]


async def test_one_letter_of_another_tenant_is_not_found(client: httpx.AsyncClient) -> None:
    await _door(client)
    assert (await _send(client, "st|open")).status_code == 400
    (letter,) = await _held(client, 1)
    other = {"NGSILD-Tenant": "elsewhere"}
    for method in ("GET", "DELETE"):
        resp = await client.request(method, f"{LETTERS}/{letter['id']}", headers=other)
        assert resp.status_code == 404, (method, resp.text)
    resp = await client.post(f"{LETTERS}/{letter['id']}/retry", headers=other)
    assert resp.status_code == 404
    bad = await client.get(f"{LETTERS}/{letter['id']}", params={"limit": "3"})
    assert bad.status_code == 400
    assert await _letters(client) == [letter]


async def test_a_deleted_letter_leaves_the_database_files(
    tmp_path: Path,
    no_secure_delete_by_default: None,  # noqa: F811
) -> None:
    """A letter keeps a device's raw payload: deleting one clears the files too, as a clear
    does (decision 072)."""
    db = tmp_path / "hub.db"
    app = create_app(Settings(db=str(db)))
    secret = "READING-OF-FLAT-12-7731"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as client:
        await _door(client)
        assert (await _send(client, f"st|{secret}")).status_code == 400
        (letter,) = await _held(client, 1)
        assert holders(db, secret), "the payload was written to the files"
        assert (await client.delete(f"{LETTERS}/{letter['id']}")).status_code == 204

        async def scrubbed() -> bool:
            return not holders(db, secret)

        await wait_for(scrubbed, "the deleted payload to leave the files")
    app.state.store.close()


@pytest.mark.parametrize("path", ["nosuch", "nosuch/retry"])
async def test_an_unknown_letter_is_a_404(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path.endswith("retry") else "GET"
    resp = await client.request(method, f"{LETTERS}/{path}")
    assert resp.status_code == 404 and resp.json()["type"].endswith("ResourceNotFound")

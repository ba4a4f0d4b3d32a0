"""/csourceRegistrations discovery: timerel validation and timerel=between, registrations whose
entities name several types, and options=sysAttrs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from conftest import BASE, problem

REGS = f"{BASE}/csourceRegistrations"
PREFIX = "urn:ngsi-ld:ContextSourceRegistration:"
SPRING, FUTURE, OPEN, MIXED = (PREFIX + n for n in ("spring", "future", "open", "mixed"))


def reg(rid: str, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": rid,
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Building"}]}],
        "endpoint": "http://csource.example.org:1026",
    }
    body.update(members)
    return body


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    resp = await client.post(REGS, json=body)
    assert resp.status_code == 201, resp.text


async def query(client: httpx.AsyncClient, **params: str) -> list[str]:
    resp = await client.get(REGS, params=params)
    assert resp.status_code == 200, f"{params}: {resp.status_code} {resp.text}"
    return [r["id"] for r in resp.json()]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def intervals(client: httpx.AsyncClient) -> None:
    """SPRING observes March-May 2020, FUTURE from 2021 on, OPEN has no interval; MIXED
    registers entities that are Houses or Shops."""
    await post(
        client,
        reg(
            SPRING,
            observationInterval={
                "startAt": "2020-03-01T00:00:00Z",
                "endAt": "2020-06-01T00:00:00Z",
            },
            managementInterval={"startAt": "2019-01-01T00:00:00Z", "endAt": "2019-02-01T00:00:00Z"},
        ),
    )
    await post(client, reg(FUTURE, observationInterval={"startAt": "2021-01-01T00:00:00Z"}))
    await post(client, reg(OPEN))
    await post(
        client,
        reg(
            MIXED,
            information=[
                {"entities": [{"type": ["House", "Shop"]}], "propertyNames": ["name"]},
            ],
        ),
    )


# -- timerel ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"timerel": "during", "timeAt": "2020-04-01T00:00:00Z"}, id="unknown-timerel"),
        pytest.param({"timerel": "BEFORE", "timeAt": "2020-04-01T00:00:00Z"}, id="upper-case"),
        pytest.param({"timeAt": "2020-04-01T00:00:00Z"}, id="timeAt-without-timerel"),
        pytest.param({"timerel": "after", "timeAt": "yesterday"}, id="timeAt-not-a-date"),
        pytest.param({"timerel": "between", "timeAt": "2020-04-01T00:00:00Z"}, id="no-endTimeAt"),
        pytest.param(
            {
                "timerel": "between",
                "timeAt": "2020-04-01T00:00:00Z",
                "endTimeAt": "2020-04-01T00:00:00Z",
            },
            id="empty-window",
        ),
        pytest.param(
            {
                "timerel": "between",
                "timeAt": "2020-05-01T00:00:00Z",
                "endTimeAt": "2020-04-01T00:00:00Z",
            },
            id="backwards-window",
        ),
        pytest.param(
            {"timerel": "between", "timeAt": "2020-04-01T00:00:00Z", "endTimeAt": "later"},
            id="endTimeAt-not-a-date",
        ),
    ],
)
async def test_bad_timerel_is_400(
    client: httpx.AsyncClient, intervals: None, params: dict[str, str]
) -> None:
    resp = await client.get(REGS, params={"type": "Building", **params})
    problem(resp, 400, "BadRequestData")


def between(start: str, end: str, **extra: str) -> dict[str, str]:
    """Query parameters of a timerel=between discovery of Building registrations."""
    return {"type": "Building", "timerel": "between", "timeAt": start, "endTimeAt": end, **extra}


async def test_timerel_between_matches_overlapping_intervals(
    client: httpx.AsyncClient, intervals: None
) -> None:
    inside = between("2020-04-01T00:00:00Z", "2020-04-15T00:00:00Z")
    assert await query(client, **inside) == [SPRING], "a window inside SPRING's interval"
    both = between("2020-05-01T00:00:00Z", "2021-02-01T00:00:00Z")
    assert await query(client, **both) == [SPRING, FUTURE], "overlaps the end and the start"
    gap = between("2020-07-01T00:00:00Z", "2020-12-01T00:00:00Z")
    assert await query(client, **gap) == [], "between the two intervals"
    covering = between("2019-01-01T00:00:00Z", "2030-01-01T00:00:00Z")
    assert await query(client, **covering) == [SPRING, FUTURE]
    late = between("2040-01-01T00:00:00Z", "2041-01-01T00:00:00Z")
    assert await query(client, **late) == [FUTURE], "an interval without endAt never ends"
    # managementInterval is the one for createdAt/modifiedAt
    mgmt = between("2019-01-15T00:00:00Z", "2019-03-01T00:00:00Z", timeproperty="modifiedAt")
    assert await query(client, **mgmt) == [SPRING]
    obs = between("2019-01-15T00:00:00Z", "2019-03-01T00:00:00Z", timeproperty="observedAt")
    assert await query(client, **obs) == []


async def test_timerel_between_with_offset_timestamps(
    client: httpx.AsyncClient, intervals: None
) -> None:
    """A window written with offsets is the same instant range as in UTC."""
    # 2020-06-01T01:00Z: after SPRING ended
    ids = await query(client, **between("2020-05-31T23:00:00-02:00", "2020-06-02T00:00:00+00:00"))
    assert ids == [], ids
    # 2020-05-31T22:30Z: SPRING still observes
    ids = await query(client, **between("2020-06-01T00:30:00+02:00", "2020-06-02T00:00:00Z"))
    assert ids == [SPRING], ids


# -- entities with a list of types ------------------------------------------------------------


async def test_entities_type_may_be_a_list(client: httpx.AsyncClient, intervals: None) -> None:
    resp = await client.get(f"{REGS}/{MIXED}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["information"] == [
        {"entities": [{"type": ["House", "Shop"]}], "propertyNames": ["name"]}
    ]
    assert await query(client, type="House") == [MIXED]
    assert await query(client, type="Shop") == [MIXED]
    assert await query(client, type="Garage") == []
    assert await query(client, type="Shop,Building") == [SPRING, FUTURE, OPEN, MIXED]
    assert await query(client, type="House", attrs="name") == [MIXED]
    assert await query(client, type="House", attrs="height") == []


async def test_entities_type_list_is_validated_and_deduplicated(
    client: httpx.AsyncClient,
) -> None:
    for types in ([], ["House", "bad name"], ["House", 3]):
        body = reg(PREFIX + "bad", information=[{"entities": [{"type": types}]}])
        problem(await client.post(REGS, json=body), 400, "BadRequestData")
    problem(await client.get(f"{REGS}/{PREFIX}bad"), 404, "ResourceNotFound")
    await post(client, reg(PREFIX + "dup", information=[{"entities": [{"type": ["A", "B", "A"]}]}]))
    resp = await client.get(f"{REGS}/{PREFIX}dup")
    assert resp.json()["information"][0]["entities"][0]["type"] == ["A", "B"], resp.text


async def test_patch_to_a_list_of_types(client: httpx.AsyncClient, intervals: None) -> None:
    resp = await client.patch(
        f"{REGS}/{OPEN}", json={"information": [{"entities": [{"type": ["Garage", "Shed"]}]}]}
    )
    assert resp.status_code == 204, resp.text
    assert await query(client, type="Shed") == [OPEN]
    assert await query(client, type="Building") == [SPRING, FUTURE]


# -- options=sysAttrs -------------------------------------------------------------------------


async def test_sys_attrs_on_retrieve_and_query(client: httpx.AsyncClient, intervals: None) -> None:
    plain = (await client.get(f"{REGS}/{OPEN}")).json()
    assert "createdAt" not in plain and "modifiedAt" not in plain, plain
    resp = await client.get(f"{REGS}/{OPEN}", params={"options": "sysAttrs"})
    assert resp.status_code == 200, resp.text
    with_sys = resp.json()
    assert ts(with_sys["createdAt"]) == ts(with_sys["modifiedAt"]), with_sys
    assert {k: v for k, v in with_sys.items() if k not in ("createdAt", "modifiedAt")} == plain
    resp = await client.get(REGS, params={"type": "Building", "options": "sysAttrs"})
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert [r["id"] for r in listed] == [SPRING, FUTURE, OPEN]
    assert all("createdAt" in r and "modifiedAt" in r for r in listed), listed
    plain_list = (await client.get(REGS, params={"type": "Building"})).json()
    assert all("createdAt" not in r for r in plain_list), plain_list


async def test_sys_attrs_follow_a_patch(client: httpx.AsyncClient, intervals: None) -> None:
    before = (await client.get(f"{REGS}/{OPEN}", params={"options": "sysAttrs"})).json()
    resp = await client.patch(f"{REGS}/{OPEN}", json={"registrationName": "renamed"})
    assert resp.status_code == 204, resp.text
    after = (await client.get(f"{REGS}/{OPEN}", params={"options": "sysAttrs"})).json()
    assert after["registrationName"] == "renamed"
    assert after["createdAt"] == before["createdAt"], "createdAt never changes"
    assert ts(after["modifiedAt"]) > ts(before["modifiedAt"]), (before, after)


async def test_sys_attrs_in_a_body_are_ignored(client: httpx.AsyncClient) -> None:
    await post(
        client,
        reg(PREFIX + "sys", createdAt="2000-01-01T00:00:00Z", modifiedAt="2000-01-01T00:00:00Z"),
    )
    got = (await client.get(f"{REGS}/{PREFIX}sys", params={"options": "sysAttrs"})).json()
    assert ts(got["createdAt"]).year > 2000 and ts(got["modifiedAt"]).year > 2000, got


async def test_unknown_options_are_400(client: httpx.AsyncClient, intervals: None) -> None:
    resp = await client.get(REGS, params={"type": "Building", "options": "sysAttrs,bogus"})
    problem(resp, 400, "InvalidRequest")
    problem(await client.get(f"{REGS}/{OPEN}", params={"options": "bogus"}), 400, "InvalidRequest")

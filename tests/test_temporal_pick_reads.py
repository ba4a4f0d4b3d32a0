"""pick and omit on temporal reads shape what the store reads, as attrs does, not only what is
rendered: an attribute the answer leaves out neither cuts the page (206) nor shortens the
attributes it shows, and is not read at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.api.app import create_app
from cityhub.settings import Settings
from cityhub.store.base import TemporalQuery
from conftest import BASE

T = f"{BASE}/temporal/entities"
EID = "urn:ngsi-ld:Sensor:T7"


def _readings(minutes: list[int], first: int) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": first + i, "observedAt": f"2024-01-01T00:{m:02d}:00Z"}
        for i, m in enumerate(minutes)
    ]


@pytest.fixture
async def app(tmp_path: Path) -> Any:
    return create_app(Settings(db=str(tmp_path / "hub.db"), temporal_limit=3))


@pytest.fixture
async def paged(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """3 instances to a page; a: 5 readings, b: 2 (the probe's T:7); Other:1 has only a."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        for body in (
            {
                "id": EID,
                "type": "Sensor",
                "a": _readings([0, 10, 20, 30, 40], 1),
                "b": _readings([5, 35], 10),
            },
            {"id": "urn:ngsi-ld:Sensor:Other", "type": "Sensor", "a": _readings([1], 100)},
        ):
            assert (await client.post(T, json=body)).status_code == 201
        yield client
    app.state.store.close()


B_VALUES = {
    "type": "Property",
    "values": [[10, "2024-01-01T00:05:00Z"], [11, "2024-01-01T00:35:00Z"]],
}


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"pick": "b"}, {"b": B_VALUES}),
        ({"pick": "id,b"}, {"id": EID, "b": B_VALUES}),
        ({"omit": "a"}, {"id": EID, "type": "Sensor", "b": B_VALUES}),
        ({"omit": "type,a"}, {"id": EID, "b": B_VALUES}),
    ],
    ids=["pick", "pick-id", "omit", "omit-type"],
)
async def test_an_attribute_left_out_does_not_cut_the_page(
    paged: httpx.AsyncClient, params: dict[str, str], shown: dict[str, Any]
) -> None:
    """pick=b answered 206, b cut to its first reading, at a's third."""
    resp = await paged.get(f"{T}/{EID}", params={"options": "temporalValues", **params})
    assert resp.status_code == 200, (resp.status_code, resp.headers.get("content-range"))
    assert resp.json() == shown
    same = await paged.get(f"{T}/{EID}", params={"options": "temporalValues", "attrs": "b"})
    assert same.json()["b"] == resp.json()["b"]


async def test_a_pick_of_attributes_selects_as_attrs_does(paged: httpx.AsyncClient) -> None:
    """An entity with none of the picked attributes rendered as {} in a query's answer; it
    is left out, as attrs=b and GET /entities?pick=b leave it out."""
    params = {"type": "Sensor", "options": "temporalValues", "count": "true"}
    picked = await paged.get(T, params={**params, "pick": "b"})
    assert picked.status_code == 200, picked.text
    assert picked.json() == [{"b": B_VALUES}]
    assert picked.headers["NGSILD-Results-Count"] == "1"
    kept = await paged.get(T, params={**params, "pick": "id,b", "lastN": "1"})
    assert [e["id"] for e in kept.json()] == [EID, "urn:ngsi-ld:Sensor:Other"]


async def test_the_store_reads_only_what_is_shown(
    app: Any, paged: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporal query the store is given names the attributes read, for instances and
    aggregation alike."""
    asked: list[TemporalQuery] = []
    store = app.state.store
    for method in ("temporal", "aggregate"):
        real = getattr(store, method)

        def spy(tenant: str, tq: TemporalQuery, *rest: Any, _real: Any = real) -> Any:
            asked.append(tq)
            return _real(tenant, tq, *rest)

        monkeypatch.setattr(store, method, spy)
    aggr = {"options": "aggregatedValues", "aggrMethods": "sum"}
    for params in ({"pick": "b"}, {"pick": "id,b", **aggr}, {"omit": "a", **aggr}):
        resp = await paged.get(f"{T}/{EID}", params=params)
        assert resp.status_code == 200, resp.text
        assert "a" not in resp.json() and "b" in resp.json(), resp.json()
    b = "https://uri.etsi.org/ngsi-ld/default-context/b"
    a = "https://uri.etsi.org/ngsi-ld/default-context/a"
    assert [(q.attrs, q.picked, q.omitted) for q in asked] == [
        ((b,), None, ()),
        (None, (b,), ()),
        (None, None, (a,)),
    ]

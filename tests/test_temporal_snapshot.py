"""A temporal read is one state of the database: its statements (the entities, then each
attribute's instances) ran each in a snapshot of its own, so a write that committed between
them showed half (probe races: 3 of 1,388 reads showed an append of p and q with only p,
13 queries an entity without its instances, 16 a count other than the page's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.ngsild.context import ContextCache
from cityhub.ngsild.temporal import TemporalService
from cityhub.store.sqlite import SqliteStore
from cityhub.store.sqlite import temporal as sqlite_temporal
from conftest import BASE

EID = "urn:ngsi-ld:Meter:snap"


def _instance(value: int) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": value, "observedAt": f"2024-01-01T00:00:0{value}Z"}]


def _between_series(
    monkeypatch: pytest.MonkeyPatch, other: SqliteStore, write: Callable[[TemporalService], None]
) -> None:
    """Commit `write` through another store on the file (`cityhub import --db`; the hub's
    writer is a connection apart too) once the read has read its first series of instances."""
    series = sqlite_temporal._series_rows
    done: list[bool] = []

    def late(*args: Any, **kwargs: Any) -> Any:
        rows = series(*args, **kwargs)
        if not done:
            done.append(True)
            write(TemporalService(other))
        return rows

    monkeypatch.setattr(sqlite_temporal, "_series_rows", late)


@pytest.fixture
def other(db_path: Path, client: httpx.AsyncClient) -> Iterator[SqliteStore]:
    """A second store on the hub's file, closed after the hub's read (its closing checkpoint
    waits for the readers)."""
    store = SqliteStore(db_path)
    yield store
    store.close()


async def test_an_append_of_two_attributes_is_read_whole_or_not_at_all(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"id": EID, "type": "Meter", "p": _instance(0), "q": _instance(0)}
    assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    tm = ContextCache().core
    _between_series(
        monkeypatch,
        other,
        lambda svc: svc.append("", EID, {"p": _instance(1), "q": _instance(1)}, tm),
    )
    got = (await client.get(f"{BASE}/temporal/entities/{EID}?lastN=1")).json()
    assert [got["p"][0]["value"], got["q"][0]["value"]] in ([0, 0], [1, 1]), got


async def test_a_query_never_lists_an_entity_deleted_while_it_read(
    client: httpx.AsyncClient, other: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(2):
        body = {"id": f"{EID}:{n}", "type": "Meter", "p": _instance(n)}
        assert (await client.post(f"{BASE}/temporal/entities", json=body)).status_code == 201
    _between_series(monkeypatch, other, lambda svc: svc.delete("", f"{EID}:1"))
    resp = await client.get(f"{BASE}/temporal/entities?type=Meter&count=true&lastN=1")
    listed = resp.json()
    assert all("p" in entity for entity in listed), listed
    assert int(resp.headers["NGSILD-Results-Count"]) == len(listed) == 2

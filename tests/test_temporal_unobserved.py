"""Instances written without observedAt sit on the observedAt axis at their modifiedAt
(decision 024): shown there, ordered there, selected there by timerel, paged there."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Meter:u1"
OLD = "2020-01-0{}T00:00:00Z"  # observed long before the hub recorded anything


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    """A hub whose temporal answers hold at most 3 instances per attribute (206 beyond)."""
    h = SyncHub(tmp_path / "hub.db", temporal_limit=3)
    yield h
    h.close()


def _write(hub: SyncHub) -> None:
    """Created with 0, updated with 1-5 and no observedAt, then 6 and 7 observed in 2020."""
    body = {"id": EID, "type": "Meter", "p": {"type": "Property", "value": 0}}
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    for n in range(1, 8):
        attr: dict[str, Any] = {"type": "Property", "value": n}
        if n >= 6:
            attr["observedAt"] = OLD.format(n)
        resp = hub.request("PATCH", f"{BASE}/entities/{EID}/attrs", json={"p": attr})
        assert resp.status_code == 204, resp.text


def _values(hub: SyncHub, **params: str) -> tuple[int, str | None, list[list[Any]]]:
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code in (200, 206), resp.text
    return resp.status_code, resp.headers.get("Content-Range"), resp.json()["p"]["values"]


def test_paging_reaches_every_instance_in_time_order(hub: SyncHub) -> None:
    """The first page ended on an unobserved instance: its Content-Range named a modifiedAt
    that the next page, asked on observedAt, could not reach, so 3, 4, 5, 6 and 7 were lost."""
    _write(hub)
    params = {"options": "temporalValues"}
    seen: list[list[Any]] = []
    for _ in range(10):
        status, content_range, page = _values(hub, **params)
        seen += [v for v in page if v not in seen]  # the range's end comes again next time
        if status == 200:
            break
        assert content_range is not None
        end = content_range.removeprefix("date-time ").split("Z-")[1].split("/")[0]
        params = {"options": "temporalValues", "timerel": "after", "timeAt": end}
    else:
        pytest.fail("no 200 after 10 pages")
    assert [v[0] for v in seen] == [6, 7, 0, 1, 2, 3, 4, 5]
    assert [v[1] for v in seen] == sorted(v[1] for v in seen)


def test_timerel_and_last_n_see_the_time_temporal_values_shows(hub: SyncHub) -> None:
    _write(hub)
    _, _, shown = _values(hub, options="temporalValues", lastN="2")
    assert [v[0] for v in shown] == [4, 5], "the newest on the axis, not the last observed"
    _, _, before = _values(hub, options="temporalValues", timerel="before", timeAt=OLD.format(9))
    assert [v[0] for v in before] == [6, 7]
    since = shown[0][1]  # when 4 was recorded
    _, _, after = _values(hub, options="temporalValues", timerel="after", timeAt=since)
    assert [v[0] for v in after] == [4, 5]
    resp = hub.request(
        "GET",
        f"{BASE}/temporal/entities/{EID}",
        params={"options": "aggregatedValues", "aggrMethods": "sum", "timerel": "after"}
        | {"timeAt": since},
    )
    assert [v[0] for v in resp.json()["p"]["sum"]] == [9], resp.json()


def test_the_temporal_api_replaces_an_observation_not_an_unobserved_instance(
    hub: SyncHub,
) -> None:
    """Sending an observation again replaces it; an unobserved instance recorded at that very
    time is another instance and stays."""
    _write(hub)
    _, _, shown = _values(hub, options="temporalValues", lastN="1")
    [[value, when]] = shown
    again = {"p": [{"type": "Property", "value": 50, "observedAt": when}]}
    resp = hub.request("POST", f"{BASE}/temporal/entities/{EID}/attrs", json=again)
    assert resp.status_code == 204, resp.text
    _, _, now = _values(hub, options="temporalValues", lastN="2")
    assert sorted(v[0] for v in now) == sorted([value, 50])


def test_a_schema_5_history_is_put_on_the_axis(tmp_path: Path) -> None:
    """Schema 5 kept no time for unobserved instances; the upgrade gives them modifiedAt."""
    db = tmp_path / "old.db"
    hub = SyncHub(db)
    _write(hub)
    hub.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE history SET t_observed = NULL WHERE inst ->> '$.observedAt' IS NULL")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.close()
    hub = SyncHub(db, temporal_limit=3)
    try:
        _, _, shown = _values(hub, options="temporalValues", lastN="3")
        assert [v[0] for v in shown] == [3, 4, 5]
    finally:
        hub.close()
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute("SELECT count(*) FROM history WHERE t_observed IS NULL").fetchone()[0] == 0
        )
    conn.close()


def test_correcting_an_unobserved_instance_does_not_move_it(hub: SyncHub) -> None:
    """A PATCH of the oldest reading moved it to "now": it became the newest value, so
    lastN=1 said 10 while the entity's value was 3 (a spec audit's finding, D1). It stays at
    the time it was recorded; on modifiedAt it does move, as modifiedAt means."""
    body = {"id": EID, "type": "Meter", "p": {"type": "Property", "value": 1}}
    assert hub.request("POST", f"{BASE}/entities", json=body).status_code == 201
    for n in (2, 3):
        resp = hub.request("PATCH", f"{BASE}/entities/{EID}/attrs", json={"p": {"value": n}})
        assert resp.status_code == 204, resp.text
    _, _, before = _values(hub, options="temporalValues")
    assert [v for v, _ in before] == [1, 2, 3]
    url = f"{BASE}/temporal/entities/{EID}"
    first = hub.request("GET", url).json()["p"][0]
    resp = hub.request("PATCH", f"{url}/attrs/p/{first['instanceId']}", json={"value": 10})
    assert resp.status_code == 204, resp.text
    _, _, after = _values(hub, options="temporalValues")
    assert after == [[10, before[0][1]], *before[1:]], after
    _, _, newest = _values(hub, options="temporalValues", lastN="1")
    assert [v for v, _ in newest] == [3]
    _, _, window = _values(hub, options="temporalValues", timerel="before", timeAt=before[1][1])
    assert [v for v, _ in window] == [10], "timerel finds it where it was"
    normalized = hub.request("GET", url, params={"options": "sysAttrs"}).json()["p"]
    assert [i["value"] for i in normalized] == [10, 2, 3]
    assert "observedAt" not in normalized[0] and all("@" not in k for k in normalized[0])
    assert normalized[0]["modifiedAt"] > normalized[2]["modifiedAt"]
    _, _, by_modified = _values(hub, options="temporalValues", timeproperty="modifiedAt")
    assert [v for v, _ in by_modified] == [2, 3, 10]
    moved = {"observedAt": "2019-05-01T00:00:00Z"}  # an observedAt given does move it
    assert (
        hub.request("PATCH", f"{url}/attrs/p/{first['instanceId']}", json=moved).status_code == 204
    )
    _, _, observed = _values(hub, options="temporalValues")
    assert observed[0] == [10, "2019-05-01T00:00:00Z"], observed

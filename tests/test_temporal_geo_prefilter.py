"""A temporal geoQ narrowed in SQL (store/sqlite/temporal_q.py, geo_prefilter) selects exactly
what Python's match over the history alone selects: entities whose locations moved in and out
of the query's area over time, some of them lines or polygons or deleted, queried with every
boxed relation, with and without a time window, compared with the narrowing switched off."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhub.store.sqlite import temporal_q
from conftest import BASE, SyncHub

EXAMPLES = int(os.environ.get("CITYHUB_FUZZ_EXAMPLES", "0"))
TIMES = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]


def _geometry(i: int, k: int) -> dict[str, Any]:
    """Mostly points on a 0.1-degree grid (some on the query boxes' edges), a few shapes."""
    x, y = 127.0 + ((i * 3 + k * 5) % 12) * 0.1, 35.0 + ((i * 7 + k) % 10) * 0.1
    if (i + k) % 9 == 0:
        return {"type": "LineString", "coordinates": [[x, y], [x + 0.25, y + 0.05]]}
    if (i + k) % 11 == 0:
        ring = [[x, y], [x + 0.2, y], [x + 0.2, y + 0.2], [x, y + 0.2], [x, y]]
        return {"type": "Polygon", "coordinates": [ring]}
    return {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]}


def _entity(i: int) -> dict[str, Any]:
    """Vehicle i: 1-3 locations over three days; a few with another GeoProperty only."""
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Vehicle:{i}", "type": "Vehicle"}
    name = "location" if i % 7 else "depot"
    body[name] = [
        {"type": "GeoProperty", "value": _geometry(i, k), "observedAt": TIMES[(i + k) % 3]}
        for k in range(1 + i % 3)
    ]
    return body


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    """60 temporal vehicles; every fifth one has its location deleted afterwards."""
    h = SyncHub(tmp_path_factory.mktemp("tgeo") / "hub.db")
    for i in range(60):
        resp = h.request("POST", f"{BASE}/temporal/entities", json=_entity(i))
        assert resp.status_code == 201, resp.text
        if i % 5 == 0 and i % 7:
            body = {
                "id": f"urn:ngsi-ld:Vehicle:{i}",
                "type": "Vehicle",
                "location": {"type": "GeoProperty", "value": _geometry(i, 9)},
            }
            assert h.request("POST", f"{BASE}/entities", json=body).status_code == 201
            url = f"{BASE}/entities/urn:ngsi-ld:Vehicle:{i}/attrs/location"
            assert h.request("DELETE", url).status_code == 204
    yield h
    h.close()


BOX = [[[127.2, 35.2], [127.6, 35.2], [127.6, 35.5], [127.2, 35.5], [127.2, 35.2]]]
geo = st.sampled_from(
    [
        {"georel": "within", "geometry": "Polygon", "coordinates": json.dumps(BOX)},
        {"georel": "intersects", "geometry": "Polygon", "coordinates": json.dumps(BOX)},
        {"georel": "near;maxDistance==15000", "geometry": "Point", "coordinates": "[127.4,35.4]"},
        {"georel": "near;maxDistance==1", "geometry": "Point", "coordinates": "[127.3,35.3]"},
        {"georel": "equals", "geometry": "Point", "coordinates": "[127.3,35.3]"},
        {"georel": "contains", "geometry": "Point", "coordinates": "[127.41,35.41]"},
        {"georel": "disjoint", "geometry": "Polygon", "coordinates": json.dumps(BOX)},
        {
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": json.dumps(BOX),
            "geoproperty": "depot",
        },
    ]
)
window = st.sampled_from(
    [
        {},
        {"timerel": "after", "timeAt": TIMES[1]},
        {"timerel": "before", "timeAt": TIMES[2]},
        {"timerel": "between", "timeAt": TIMES[1], "endTimeAt": TIMES[2]},
    ]
)


def _ask(hub: SyncHub, params: dict[str, str]) -> tuple[int, list[str], str | None]:
    resp = hub.request("GET", f"{BASE}/temporal/entities", params=params)
    ids = [e["id"] for e in resp.json()] if resp.status_code == 200 else []
    return resp.status_code, ids, resp.headers.get("NGSILD-Results-Count")


def test_the_geo_narrowing_selects_what_python_selects(
    hub: SyncHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = 0

    @settings(
        max_examples=EXAMPLES or 80,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(g=geo, when=window, paged=st.booleans())
    def run(g: dict[str, str], when: dict[str, str], paged: bool) -> None:
        nonlocal answered
        params = {"type": "Vehicle", "count": "true", "limit": "100", **g, **when}
        if paged:
            params.update(limit="3", offset="2")
            del params["count"]
        with monkeypatch.context() as m:
            m.setattr(temporal_q, "geo_prefilter", lambda *a, **k: None)
            plain = _ask(hub, params)
        fast = _ask(hub, params)
        assert fast == plain, f"{g} {when}"
        answered += fast[0] == 200 and bool(fast[1])

    run()
    assert answered, "no generated query found anything"

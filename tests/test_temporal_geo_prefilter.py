"""A temporal geoQ narrowed in SQL (store/sqlite/temporal_q.py, geo_prefilter) selects exactly
what Python's match over the history alone selects: entities whose locations moved in and out
of the query's area over time, some of them lines or polygons or deleted, queried with every
boxed relation, with and without a time window, compared with the narrowing switched off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.store.sqlite import temporal_q
from conftest import BASE, SyncHub
from temporal_support import TIMES, WINDOWS, ask, examples, post_temporal, same_without


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
    post_temporal(h, [_entity(i) for i in range(60)])
    for i in range(0, 60, 5):
        if i % 7:
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


@examples(80)
@given(g=geo, when=WINDOWS, paged=st.booleans())
def test_the_geo_narrowing_selects_what_python_selects(
    hub: SyncHub,
    monkeypatch: pytest.MonkeyPatch,
    g: dict[str, str],
    when: dict[str, str],
    paged: bool,
) -> None:
    same_without(
        hub, monkeypatch, temporal_q, "geo_prefilter", {"type": "Vehicle", **g, **when}, paged
    )


def test_the_geo_narrowing_is_exercised(hub: SyncHub) -> None:
    """The fixture has matches for a boxed query in a window, so the comparison means something."""
    params = {
        "type": "Vehicle",
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": json.dumps(BOX),
    }
    status, ids, _ = ask(hub, {**params, "timerel": "after", "timeAt": TIMES[1]})
    assert status == 200 and ids

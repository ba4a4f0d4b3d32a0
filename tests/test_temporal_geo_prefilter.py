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

from cityhub.ngsild.query.geo import geo_matches, parse_geoq
from cityhub.store.sqlite import temporal, temporal_q
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
# a dented box: no box fills it, one inside its largest inscribed circle does
DENTED = [
    [[127.0, 35.0], [128.2, 35.0], [128.2, 36.0], [127.6, 35.3], [127.0, 36.0], [127.0, 35.0]]
]
geo = st.sampled_from(
    [
        {"georel": "disjoint", "geometry": "Polygon", "coordinates": json.dumps(DENTED)},
        {"georel": "near;minDistance==15000", "geometry": "Point", "coordinates": "[127.4,35.4]"},
        {"georel": "near;minDistance==40000", "geometry": "Point", "coordinates": "[127.5,35.4]"},
        {
            "georel": "near;minDistance==20000",
            "geometry": "LineString",
            "coordinates": "[[127.3,35.3],[127.6,35.5]]",
        },
        {"georel": "near;minDistance==5000", "geometry": "Polygon", "coordinates": json.dumps(BOX)},
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


@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates"),
    [
        ("disjoint", "Polygon", BOX),
        ("disjoint", "Polygon", DENTED),
        ("disjoint", "MultiPolygon", [BOX, [[[0, 0], [1, 0], [1, 1], [0, 0]]]]),
        ("near;minDistance==15000", "Point", [127.4, 35.4]),
        ("near;minDistance==900000", "Point", [127.4, 35.4]),
        ("near;minDistance==20000", "LineString", [[127.3, 35.3], [127.6, 35.5]]),
        ("near;minDistance==5000", "Polygon", DENTED),
        ("near;minDistance==3000", "Point", [10.0, 79.5]),
    ],
)
def test_no_point_in_the_excluded_box_matches(georel: str, geometry: str, coordinates: Any) -> None:
    """disjoint and minDistance leave out an entity whose readings all lie in a box where
    none can match: every point of that box, its corners and edges included, fails."""
    gq = parse_geoq(georel, geometry, json.dumps(coordinates))
    assert gq is not None
    box = temporal_q.excluded_box(gq)
    assert box is not None
    minx, miny, maxx, maxy = box
    steps = [i / 20 for i in range(21)]
    for fx in steps:
        for fy in steps:
            where = [minx + (maxx - minx) * fx, miny + (maxy - miny) * fy]
            assert not geo_matches(gq, {"type": "Point", "coordinates": where}), where


def test_a_reference_without_an_area_excludes_nothing_from_disjoint() -> None:
    for geometry, coordinates in (("Point", [127.4, 35.4]), ("LineString", [[127, 35], [128, 36]])):
        gq = parse_geoq("disjoint", geometry, json.dumps(coordinates))
        assert gq is not None and temporal_q.excluded_box(gq) is None


def test_disjoint_and_min_distance_are_narrowed_in_sql() -> None:
    """Which vehicles left the area is answered in SQL for those that never did (it had no
    narrowing: every reading of every vehicle was parsed and tested in Python)."""
    for georel, coords in (("disjoint", DENTED), ("near;minDistance==5000", BOX)):
        gq = parse_geoq(georel, "Polygon", json.dumps(coords))
        assert gq is not None
        assert temporal_q.geo_prefilter(gq, _Conn(), _Names(), lambda v: "?", lambda n: "")


class _Conn:
    """Nothing is looked up: geo_prefilter only names the attribute's id."""


class _Names:
    def lookup(self, conn: object, name: str) -> int:
        return 1


def test_a_reading_that_matches_ends_the_walk(
    hub: SyncHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bus's 300 readings were all parsed before geoQ looked at any: now the first that
    matches decides, and the rest are not read."""
    readings = [
        {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [127.4, 35.4 + k * 1e-4]},
            "observedAt": f"2026-02-01T00:{k // 60:02d}:{k % 60:02d}Z",
        }
        for k in range(300)
    ]
    bodies = [{"id": f"urn:ngsi-ld:Bus:{b}", "type": "Bus", "location": readings} for b in range(3)]
    post_temporal(hub, bodies)
    parsed: list[int] = []
    real = temporal.orjson

    class Counting:
        dumps = staticmethod(real.dumps)

        @staticmethod
        def loads(text: Any) -> Any:
            parsed.append(1)
            return real.loads(text)

    monkeypatch.setattr(temporal, "orjson", Counting)
    params = {"type": "Bus", "georel": "near;maxDistance==100000", "geometry": "Point"}
    status, ids, _ = ask(hub, {**params, "coordinates": "[127.4,35.4]", "lastN": "1"})
    assert status == 200 and len(ids) == 3
    assert len(parsed) < 50, len(parsed)

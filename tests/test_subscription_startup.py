"""Start-up compiles every stored subscription: 100,000 of them took 15 s of CPU, 7 s of it
in cyclic collections that freed next to nothing and much of the rest in each `near`
geoQ's reference, drawn twice (once more for its geoproperty). Matching after a restart
must stay what it was; a type selection many of them name is parsed once."""

from __future__ import annotations

import gc
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely

from cityhub.api.app import create_app
from cityhub.ngsild.query import distance
from cityhub.ngsild.query.geo import geo_matches, parse_geoq
from cityhub.ngsild.subscriptions import NGSI_LD, parsed_geo
from cityhub.notify.notifier import Notifier
from cityhub.settings import Settings
from conftest import BASE

NEAR = {"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": [2.35, 48.85]}


def subscription(i: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": f"http://127.0.0.1:9/{i}"}},
    }
    if i % 2:
        body["geoQ"] = NEAR
    else:
        body["q"] = f"temperature>{i}"
    return body


async def test_stored_subscriptions_compile_without_cyclic_collections(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = create_app(Settings(db=str(db_path)))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="http://hub"
    ) as c:
        for i in range(120):
            resp = await c.post(f"{BASE}/subscriptions", json=subscription(i))
            assert resp.status_code == 201, resp.text
    await first.state.notifier.close()
    first.state.store.close()

    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    load = Notifier.load

    def counted_load(self: Notifier) -> None:
        gc.callbacks.append(count)
        try:
            load(self)
        finally:
            gc.callbacks.remove(count)

    monkeypatch.setattr(Notifier, "load", counted_load)
    again = create_app(Settings(db=str(db_path)))
    try:
        assert sum(len(subs) for subs in again.state.notifier.subs.values()) == 120
        # one may start as load begins, before the collector is held off
        assert len(collections) <= 1, collections
        assert gc.isenabled()
        # one type selection parsed once for all of them (trees are frozen)
        subs = [sub for subs in again.state.notifier.subs.values() for sub in subs.values()]
        assert len({id(sel.types) for sub in subs for sel in sub.selectors}) == 1
    finally:
        again.state.store.close()


def test_a_stored_near_geoq_is_drawn_once(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = 0
    of = distance.Projected.of.__func__  # type: ignore[attr-defined]

    def counted(cls: type[distance.Projected], *args: Any) -> distance.Projected:
        nonlocal drawn
        drawn += 1
        return of(cls, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(distance.Projected, "of", classmethod(counted))
    geo = parsed_geo({"geoQ": NEAR})
    assert geo is not None and geo.geoproperty == NGSI_LD + "location"
    assert drawn == 1


@pytest.mark.parametrize(
    "geoq",
    [
        NEAR,
        {"georel": "near;minDistance==2000", "geometry": "Point", "coordinates": [179.99, -41.3]},
        {"georel": "near;maxDistance==90000", "geometry": "Point", "coordinates": [20.0, 84.5]},
        {
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": [[[2, 48], [3, 48], [3, 49], [2, 48]]],
        },
        {
            "georel": "near;maxDistance==800",
            "geometry": "LineString",
            "coordinates": [[2.3, 48.8], [2.4, 48.9]],
        },
    ],
)
def test_a_stored_geoq_matches_as_the_one_drawn_twice_did(geoq: dict[str, Any]) -> None:
    """The GeoQuery built once equals the earlier one, replaced with its geoproperty, on
    every candidate (a Point reference is drawn without numpy now: the same arithmetic)."""
    built = parse_geoq(geoq["georel"], geoq["geometry"], geoq["coordinates"])
    assert built is not None
    before = replace(built, geoproperty=NGSI_LD + "location")
    now = parsed_geo({"geoQ": geoq})
    assert now is not None and now == before
    rand = random.Random(84)
    lon, lat = shapely.geometry.shape(
        {"type": geoq["geometry"], "coordinates": geoq["coordinates"]}
    ).centroid.coords[0]
    for _ in range(300):
        x = max(-180.0, min(180.0, lon + rand.uniform(-0.05, 0.05) * (1 + 40 * rand.random())))
        y = max(-90.0, min(90.0, lat + rand.uniform(-0.02, 0.02) * (1 + 40 * rand.random())))
        point = {"type": "Point", "coordinates": [x, y]}
        assert geo_matches(now, point) == geo_matches(before, point), point
        if before.projected is not None:
            assert now.projected is not None
            assert now.projected.shape.equals_exact(before.projected.shape, 0.0)

"""aggregatedValues at the edges: durations past the time axis, values past a double's
range or exactness, periods that must not depend on what else is asked, and lastN (a
prober's findings, 2026-12-07)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:T:edge"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    yield h
    h.close()


def _create(hub: SyncHub, **attrs: list[dict[str, Any]]) -> None:
    body = {"id": EID, "type": "T", **attrs}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201


def _aggregate(hub: SyncHub, methods: str, status: int = 200, **params: str) -> Any:
    params = {"options": "aggregatedValues", "aggrMethods": methods, **params}
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code == status, resp.text
    return resp.json()


def _at(minute: int, second: int = 0) -> str:
    return f"2024-01-01T00:{minute:02d}:{second:02d}Z"


@pytest.mark.parametrize(
    "duration", ["PT" + "9" * 400 + "S", "P" + "9" * 20 + "Y", "P" + "9" * 400 + "Y", "P20000Y"]
)
def test_a_period_longer_than_the_time_axis_is_a_400(hub: SyncHub, duration: str) -> None:
    """A run of digits parsed to inf: the period edges became NaN and the attribute silently
    vanished from a 200; a huge whole number of years was taken as it came."""
    _create(hub, p=[{"type": "Property", "value": 1, "observedAt": _at(0)}])
    body = _aggregate(hub, "totalCount", 400, aggrPeriodDuration=duration)
    assert "aggrPeriodDuration" in body["detail"] and len(body["detail"]) < 300, body


@pytest.mark.parametrize(
    "values", [[1e308, 1e308, -1e308], [1e200, -1e200], [1e308, -1e308, 5.0, 1e-300]]
)
def test_stddev_of_values_near_a_doubles_range(hub: SyncHub, values: list[float]) -> None:
    """Welford's squared distance overflowed: stddev was 0.0 or null."""
    _create(
        hub,
        p=[
            {"type": "Property", "value": v, "observedAt": _at(0, i)}
            for i, v in enumerate(values)
        ],
    )
    got = _aggregate(hub, "stddev")["p"]["stddev"][0][0]
    assert got == pytest.approx(statistics.pstdev(values), rel=1e-9), got

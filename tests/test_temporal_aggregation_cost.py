"""The store builds no more aggregated periods than an answer keeps: over 100,000 instances
at PT1S, all 100,000 periods were built, in 8 methods, to keep the first 10,000 (6.4 s; a
prober's finding, 2026-12-07)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:T:cost"
LIMIT = 3
N = 20


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db")
    h.app.state.temporal.period_limit = LIMIT
    yield h
    h.close()


def _built(hub: SyncHub, monkeypatch: pytest.MonkeyPatch, **params: str) -> tuple[Any, list[int]]:
    """The answer, and how many periods the store built per series."""
    store = hub.app.state.store
    sizes: list[int] = []
    real = store.aggregate

    def spy(*args: Any) -> Any:
        aggs, total = real(*args)
        sizes.extend(len(s["sum"]) for _, attrs in aggs for ss in attrs.values() for s in ss)
        return aggs, total

    monkeypatch.setattr(store, "aggregate", spy)
    params = {"options": "aggregatedValues", "aggrMethods": "sum,totalCount", **params}
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code == 206, resp.text
    return resp.json()["p"], sizes


@pytest.mark.parametrize(
    "params",
    [
        {"aggrPeriodDuration": "PT1S"},  # far more periods than instances: GROUP BY
        {"aggrPeriodDuration": "PT1M"},  # one instance a period: a range read each
        {"aggrPeriodDuration": "P1M"},  # calendar periods
        {"aggrPeriodDuration": "PT0.000001S", "timeproperty": "createdAt"},
        {"aggrPeriodDuration": "PT0.000001S", "timeproperty": "modifiedAt"},  # no index
    ],
)
def test_no_more_periods_are_built_than_a_page_keeps(
    hub: SyncHub, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]
) -> None:
    if params.get("timeproperty") in ("createdAt", "modifiedAt"):  # one write per instance
        for i in range(N):
            body = {"id": EID, "type": "T", "p": {"type": "Property", "value": i}}
            hub.request("POST", f"{BASE}/temporal/entities", json=body)
    else:
        month = params["aggrPeriodDuration"] == "P1M"
        times = [
            f"{2020 + i // 12}-{i % 12 + 1:02d}-01T00:00:00Z"
            if month
            else f"2020-01-01T00:{i:02d}:00Z"
            for i in range(N)
        ]
        insts = [{"type": "Property", "value": i, "observedAt": t} for i, t in enumerate(times)]
        assert (
            hub.request(
                "POST", f"{BASE}/temporal/entities", json={"id": EID, "type": "T", "p": insts}
            ).status_code
            == 201
        )
    p, sizes = _built(hub, monkeypatch, **params)
    assert sizes and max(sizes) <= LIMIT + 1, sizes
    assert [period[0] for period in p["sum"]] == [0, 1, 2], p

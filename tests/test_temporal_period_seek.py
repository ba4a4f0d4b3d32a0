"""A page of aggregated periods past its limit finds where to stop with one index seek per
period, each from the previous period's end: each seek started at the window's start (the
window's own bound was the one SQLite ranged on), so the walk grew with the square of the
page, 4.8 s of a 12 s answer at PT0.000001S over 1,000,000 readings (a prober's finding,
2026-12-08). SQLite's steps are counted, not timed: the progress handler runs every few."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cityhub.store.sqlite import backend
from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Meter:seek"
N = 1000


def _steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> tuple[int, Any]:
    """SQLite steps (in hundreds) of one aggregation cut at `limit` periods, and its sums."""
    hub = SyncHub(tmp_path / f"hub{limit}.db")
    try:
        hub.app.state.temporal.period_limit = limit
        insts = [
            {
                "type": "Property",
                "value": i,
                "observedAt": f"2026-10-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            }
            for i in range(N)
        ]
        body = {"id": EID, "type": "Meter", "p": insts}
        assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201
        calls = [0]

        def monotonic() -> float:
            calls[0] += 1
            return time.monotonic()

        with monkeypatch.context() as m:
            m.setattr(backend, "PROGRESS_STEPS", 100)
            m.setattr(backend, "time", SimpleNamespace(monotonic=monotonic))
            params = {
                "format": "aggregatedValues",
                "aggrMethods": "sum",
                "aggrPeriodDuration": "PT0.000001S",
                "timerel": "between",
                "timeAt": "2026-10-01T00:00:00Z",
                "endTimeAt": "2026-10-02T00:00:00Z",
            }
            resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
        assert resp.status_code == 206, resp.text
        return calls[0], resp.json()["p"]["sum"]
    finally:
        hub.close()


def test_the_seeks_past_a_page_grow_with_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, first = _steps(tmp_path, monkeypatch, 50)
    large, more = _steps(tmp_path, monkeypatch, 400)
    assert [p[0] for p in first] == list(range(50))
    assert [p[0] for p in more] == list(range(400))
    # 8 times the page: at most 8 times the steps (3.3 with the fixed costs), not 64 (27 were
    # counted when each seek read from the window's start)
    assert large < 10 * small, (small, large)

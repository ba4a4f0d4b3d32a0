"""Shared by the temporal tests: hypothesis settings, three days of instance times and the
windows that cut them, loading temporal entities, and asking a query with one of the SQL
narrowings (temporal_q.prefilter, geo_prefilter) switched off and on."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from conftest import BASE, SyncHub

EXAMPLES = int(os.environ.get("CITYHUB_FUZZ_EXAMPLES", "0"))
TIMES = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]
# no time window, or one that cuts the three days of TIMES
WINDOWS = st.sampled_from(
    [
        {},
        {"timerel": "after", "timeAt": TIMES[1]},
        {"timerel": "before", "timeAt": TIMES[2]},
        {"timerel": "between", "timeAt": TIMES[1], "endTimeAt": TIMES[2]},
    ]
)


def examples(n: int) -> Any:
    """Hypothesis settings: n fixed examples, or a random campaign of CITYHUB_FUZZ_EXAMPLES."""
    return settings(
        max_examples=EXAMPLES or n,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def post_temporal(hub: SyncHub, bodies: list[dict[str, Any]]) -> None:
    """Create these temporal entities (POST /temporal/entities), each answered 201."""
    for body in bodies:
        resp = hub.request("POST", f"{BASE}/temporal/entities", json=body)
        assert resp.status_code == 201, resp.text


def ask(hub: SyncHub, params: dict[str, str]) -> tuple[int, list[str], str | None]:
    """Status, entity ids and NGSILD-Results-Count of a temporal query."""
    resp = hub.request("GET", f"{BASE}/temporal/entities", params=params)
    ids = [e["id"] for e in resp.json()] if resp.status_code == 200 else []
    return resp.status_code, ids, resp.headers.get("NGSILD-Results-Count")


def same_without(
    hub: SyncHub,
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    narrowing: str,
    params: dict[str, str],
    paged: bool,
) -> tuple[int, list[str], str | None]:
    """Ask with `module.narrowing` switched off, then on; the answers must be the same. Paged:
    a page from the middle, without count=true (the walk stops at the page's end)."""
    params = {**params, "count": "true", "limit": "100"}
    if paged:
        params.update(limit="3", offset="2")
        del params["count"]
    with monkeypatch.context() as m:
        m.setattr(module, narrowing, lambda *a, **k: None)
        plain = ask(hub, params)
    fast = ask(hub, params)
    assert fast == plain, params
    return fast

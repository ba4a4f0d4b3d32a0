"""aggregatedValues and temporalValues agree with a plain-Python reading of the rules on
generated histories.

The rules (docs/decisions/005 and ngsild/temporal.py): `before` selects t < timeAt, `after`
t >= timeAt, `between` timeAt <= t < endTimeAt. Periods start at timeAt for after/between,
else at the first selected instance; period i covers [start + i*P, start + (i+1)*P), and empty
periods are left out. Without aggrPeriodDuration one period runs from that start to endTimeAt
(between), timeAt (before) or the last selected instance. stddev is the population one.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhub.api.app import create_app
from cityhub.settings import Settings
from conftest import BASE

T0 = datetime(2026, 3, 1, tzinfo=UTC)
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "sumsq", "stddev")
PERIODS = {"PT7M": 420, "PT1H": 3600, "PT90M": 5400, "P1D": 86400, None: None}
EXAMPLES = int(os.environ.get("CITYHUB_FUZZ_EXAMPLES", "0"))


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Hub:
    """One in-process hub on its own loop, for hypothesis's synchronous examples."""

    def __init__(self, db: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(Settings(db=db))
        transport = httpx.ASGITransport(app=self.app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://hub")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kw))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.state.notifier.close())
        self.app.state.store.close()
        self.loop.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(str(tmp_path_factory.mktemp("aggr") / "hub.db"))
    yield h
    h.close()


def expected(
    points: list[tuple[int, int]], timerel: tuple[str, int, int], period: int | None
) -> dict[str, list[tuple[float, datetime, datetime]]] | None:
    """The series the rules give for (minute offset, value) points; None: nothing selected."""
    rel, a, b = timerel
    at, end_at = T0 + timedelta(minutes=a), T0 + timedelta(minutes=b)
    times = [(T0 + timedelta(minutes=m), v) for m, v in points]
    keep = {
        "none": lambda t: True,
        "before": lambda t: t < at,
        "after": lambda t: t >= at,
        "between": lambda t: at <= t < end_at,
    }[rel]
    chosen = sorted((t, v) for t, v in times if keep(t))
    if not chosen:
        return None
    start = at if rel in ("after", "between") else chosen[0][0]
    end = {"between": end_at, "before": at}.get(rel, chosen[-1][0])
    buckets: dict[int, list[int]] = {}
    for t, v in chosen:
        i = math.floor((t - start).total_seconds() / period) if period else 0
        buckets.setdefault(i, []).append(v)
    out: dict[str, list[tuple[float, datetime, datetime]]] = {m: [] for m in METHODS}
    for i, vs in sorted(buckets.items()):
        lo = start + timedelta(seconds=i * period) if period else start
        hi = lo + timedelta(seconds=period) if period else end
        n, s, sq = len(vs), sum(vs), sum(v * v for v in vs)
        mean = s / n
        values = {
            "totalCount": n,
            "distinctCount": len(set(vs)),
            "sum": s,
            "avg": mean,
            "min": min(vs),
            "max": max(vs),
            "sumsq": sq,
            "stddev": math.sqrt(max(0.0, sq / n - mean * mean)),
        }
        for m in METHODS:
            out[m].append((values[m], lo, hi))
    return out


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


ids = itertools.count()
minutes = st.integers(0, 3 * 24 * 60)
points = st.lists(
    st.tuples(minutes, st.integers(-50, 50)), min_size=1, max_size=40, unique_by=lambda p: p[0]
)


def timerels(points: list[tuple[int, int]]) -> st.SearchStrategy[tuple[str, int, int]]:
    """No timerel, or one whose times are often exactly an instance's (the boundaries)."""
    at = st.sampled_from([m for m, _ in points]) | minutes
    return st.one_of(
        st.just(("none", 0, 0)),
        st.tuples(st.sampled_from(["before", "after"]), at, st.just(0)),
        st.tuples(st.just("between"), at, at).filter(lambda r: r[1] < r[2]),
    )


@settings(
    max_examples=EXAMPLES or 300,
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(points=points, period=st.sampled_from(list(PERIODS)), data=st.data())
def test_aggregated_values_follow_the_rules(
    hub: Hub, points: list[tuple[int, int]], period: str | None, data: st.DataObject
) -> None:
    timerel = data.draw(timerels(points))
    eid = f"urn:ngsi-ld:Meter:{next(ids)}"
    instances = [
        {"type": "Property", "value": v, "observedAt": iso(T0 + timedelta(minutes=m))}
        for m, v in points
    ]
    r = hub.request(
        "POST", f"{BASE}/temporal/entities", json={"id": eid, "type": "Meter", "power": instances}
    )
    assert r.status_code == 201, r.text
    params = {"options": "aggregatedValues", "aggrMethods": ",".join(METHODS)}
    if period:
        params["aggrPeriodDuration"] = period
    rel, a, b = timerel
    if rel != "none":
        params.update(timerel=rel, timeAt=iso(T0 + timedelta(minutes=a)))
    if rel == "between":
        params["endTimeAt"] = iso(T0 + timedelta(minutes=b))
    r = hub.request("GET", f"{BASE}/temporal/entities/{quote(eid, safe=':')}", params=params)
    assert r.status_code == 200, r.text
    want = expected(points, timerel, PERIODS[period])
    got = r.json().get("power")
    if want is None:
        assert got is None, got
        return
    assert got is not None, r.json()
    for m in METHODS:
        series = [(v, _when(lo), _when(hi)) for v, lo, hi in got[m]]
        assert [(lo, hi) for _, lo, hi in series] == [(lo, hi) for _, lo, hi in want[m]], m
        for (v, _, _), (w, _, _) in zip(series, want[m], strict=True):
            assert v == pytest.approx(w, abs=1e-9), (m, series, want[m])


@settings(
    max_examples=EXAMPLES or 200,
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(points=points, last_n=st.none() | st.integers(1, 45), data=st.data())
def test_temporal_values_follow_the_rules(
    hub: Hub, points: list[tuple[int, int]], last_n: int | None, data: st.DataObject
) -> None:
    """temporalValues with timerel and lastN: the selected instances in time order, the newest
    lastN of them when asked."""
    timerel = data.draw(timerels(points))
    eid = f"urn:ngsi-ld:Meter:{next(ids)}"
    instances = [
        {"type": "Property", "value": v, "observedAt": iso(T0 + timedelta(minutes=m))}
        for m, v in points
    ]
    body = {"id": eid, "type": "Meter", "power": instances}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201
    params = {"options": "temporalValues"}
    if last_n is not None:
        params["lastN"] = str(last_n)
    rel, a, b = timerel
    if rel != "none":
        params.update(timerel=rel, timeAt=iso(T0 + timedelta(minutes=a)))
    if rel == "between":
        params["endTimeAt"] = iso(T0 + timedelta(minutes=b))
    r = hub.request("GET", f"{BASE}/temporal/entities/{quote(eid, safe=':')}", params=params)
    assert r.status_code == 200, r.text
    at, end_at = a, b
    keep = {
        "none": lambda m: True,
        "before": lambda m: m < at,
        "after": lambda m: m >= at,
        "between": lambda m: at <= m < end_at,
    }[rel]
    want = [(v, iso(T0 + timedelta(minutes=m))) for m, v in sorted(points) if keep(m)]
    if last_n is not None:
        want = want[-last_n:]
    got = r.json().get("power")
    assert (got is None) == (not want), r.json()
    if want:
        assert [tuple(x) for x in got["values"]] == want

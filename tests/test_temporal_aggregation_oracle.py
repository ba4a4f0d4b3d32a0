"""aggregatedValues, temporalValues and 206 paging agree with a plain-Python reading of the
rules on generated histories.

The rules (docs/decisions/005 and ngsild/temporal.py): `before` selects t < timeAt, `after`
t >= timeAt, `between` timeAt <= t < endTimeAt. Periods start at timeAt for after/between,
else at the first selected instance; period i covers [start + i*P, start + (i+1)*P), and empty
periods are left out. Without aggrPeriodDuration one period runs from that start to endTimeAt
(between), timeAt (before) or just past the last selected instance (a microsecond on), so it
too holds what it counts. stddev is the population one.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import BASE, SyncHub
from temporal_support import examples

T0 = datetime(2026, 3, 1, tzinfo=UTC)
METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "sumsq", "stddev")
PERIODS = {"PT7M": 420, "PT1H": 3600, "PT90M": 5400, "P1D": 86400, None: None}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path_factory.mktemp("aggr") / "hub.db")
    yield h
    h.close()


def selects(timerel: tuple[str, int, int]) -> Any:
    """Whether an instance at minute m is selected by (timerel, timeAt, endTimeAt) minutes."""
    rel, at, end_at = timerel
    return {
        "none": lambda m: True,
        "before": lambda m: m < at,
        "after": lambda m: m >= at,
        "between": lambda m: at <= m < end_at,
    }[rel]


def stored(hub: SyncHub, points: list[tuple[int, int]]) -> str:
    """A new temporal entity with one instance per (minute offset, value); its id, quoted."""
    eid = f"urn:ngsi-ld:Meter:{next(ids)}"
    instances = [
        {"type": "Property", "value": v, "observedAt": iso(T0 + timedelta(minutes=m))}
        for m, v in points
    ]
    body = {"id": eid, "type": "Meter", "power": instances}
    r = hub.request("POST", f"{BASE}/temporal/entities", json=body)
    assert r.status_code == 201, r.text
    return quote(eid, safe=":")


def time_params(timerel: tuple[str, int, int]) -> dict[str, str]:
    rel, a, b = timerel
    params = {}
    if rel != "none":
        params.update(timerel=rel, timeAt=iso(T0 + timedelta(minutes=a)))
    if rel == "between":
        params["endTimeAt"] = iso(T0 + timedelta(minutes=b))
    return params


def expected(
    points: list[tuple[int, int]], timerel: tuple[str, int, int], period: int | None
) -> dict[str, list[tuple[float, datetime, datetime]]] | None:
    """The series the rules give for (minute offset, value) points; None: nothing selected."""
    rel, a, b = timerel
    at, end_at = T0 + timedelta(minutes=a), T0 + timedelta(minutes=b)
    keep = selects(timerel)
    chosen = sorted((T0 + timedelta(minutes=m), v) for m, v in points if keep(m))
    if not chosen:
        return None
    start = at if rel in ("after", "between") else chosen[0][0]
    # an open end is just past the last instance: [start, end) holds it (decision 031)
    end = {"between": end_at, "before": at}.get(rel, chosen[-1][0] + timedelta(microseconds=1))
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
            "stddev": statistics.pstdev(vs),
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


@examples(300)
@given(points=points, period=st.sampled_from(list(PERIODS)), data=st.data())
def test_aggregated_values_follow_the_rules(
    hub: SyncHub, points: list[tuple[int, int]], period: str | None, data: st.DataObject
) -> None:
    timerel = data.draw(timerels(points))
    eid = stored(hub, points)
    params = {"options": "aggregatedValues", "aggrMethods": ",".join(METHODS)}
    if period:
        params["aggrPeriodDuration"] = period
    params.update(time_params(timerel))
    r = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params)
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


@examples(200)
@given(points=points, last_n=st.none() | st.integers(1, 45), data=st.data())
def test_temporal_values_follow_the_rules(
    hub: SyncHub, points: list[tuple[int, int]], last_n: int | None, data: st.DataObject
) -> None:
    """temporalValues with timerel and lastN: the selected instances in time order, the newest
    lastN of them when asked."""
    timerel = data.draw(timerels(points))
    eid = stored(hub, points)
    params = {"options": "temporalValues", **time_params(timerel)}
    if last_n is not None:
        params["lastN"] = str(last_n)
    r = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params)
    assert r.status_code == 200, r.text
    keep = selects(timerel)
    want = [(v, iso(T0 + timedelta(minutes=m))) for m, v in sorted(points) if keep(m)]
    if last_n is not None:
        want = want[-last_n:]
    got = r.json().get("power")
    assert (got is None) == (not want), r.json()
    if want:
        assert [tuple(x) for x in got["values"]] == want


@pytest.fixture(scope="module")
def paged_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    """A hub whose temporal answers hold at most 5 instances per attribute (206 beyond)."""
    h = SyncHub(tmp_path_factory.mktemp("paged") / "hub.db", temporal_limit=5)
    yield h
    h.close()


# dense: consecutive minutes are common, so a page boundary one minute off loses an instance
dense = st.lists(
    st.tuples(st.integers(0, 90), st.integers(-50, 50)),
    min_size=1,
    max_size=40,
    unique_by=lambda p: p[0],
)


def one_sided(points: list[tuple[int, int]], rel: str) -> st.SearchStrategy[tuple[str, int, int]]:
    """No timerel, or `rel` (before/after) at an instance's minute or any other."""
    at = st.sampled_from([m for m, _ in points]) | minutes
    return st.sampled_from(["none", rel]).flatmap(lambda r: st.tuples(st.just(r), at, st.just(0)))


def fetch_page(
    hub: SyncHub, eid: str, params: dict[str, str]
) -> tuple[httpx.Response, list[tuple[int, str]]]:
    """One page of power's temporalValues: the answer (200 or 206) and its (value, time) pairs,
    at most 5 of them."""
    r = hub.request("GET", f"{BASE}/temporal/entities/{eid}", params=params)
    assert r.status_code in (200, 206), r.text
    page = [tuple(x) for x in (r.json().get("power") or {}).get("values", [])]
    assert len(page) <= 5, page
    return r, page


@examples(100)
@given(points=dense, data=st.data())
def test_paging_on_from_the_content_range_gets_everything(
    paged_hub: SyncHub, points: list[tuple[int, int]], data: st.DataObject
) -> None:
    """206 pages of at most 5 instances; asking again from the end of each Content-Range
    (`timerel=after`) walks through every selected instance, in order, and ends with 200."""
    rel, a, _ = data.draw(one_sided(points, "after"))
    eid = stored(paged_hub, points)
    want = [
        (v, iso(T0 + timedelta(minutes=m))) for m, v in sorted(points) if selects((rel, a, 0))(m)
    ]
    params = {"options": "temporalValues", **time_params((rel, a, 0))}
    seen: list[tuple[int, str]] = []
    for _ in range(len(points) + 2):
        r, page = fetch_page(paged_hub, eid, params)
        seen += [p for p in page if p not in seen]  # the range's end comes again on the next page
        if r.status_code == 200:
            break
        _, _, end = r.headers["Content-Range"].removeprefix("date-time ").partition("Z-")
        params.update(timerel="after", timeAt=end.split("/")[0])
    else:
        pytest.fail(f"no 200 after {len(points) + 2} pages")
    assert seen == want


@examples(100)
@given(points=dense, data=st.data())
def test_following_the_page_link_gets_each_instance_once(
    paged_hub: SyncHub, points: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Following each 206's `intervalafter` Link instead (decision 031) reaches every
    selected instance exactly once, in order, and ends with 200."""
    rel, a, _ = data.draw(one_sided(points, "after"))
    eid = stored(paged_hub, points)
    want = [
        (v, iso(T0 + timedelta(minutes=m))) for m, v in sorted(points) if selects((rel, a, 0))(m)
    ]
    r, seen = fetch_page(paged_hub, eid, {"options": "temporalValues", **time_params((rel, a, 0))})
    for _ in range(len(points) + 2):
        if r.status_code == 200:
            break
        link = r.headers["Link"].split(">", 1)[0].lstrip("<")
        assert 'rel="intervalafter"' in r.headers["Link"].split(",", 1)[0], r.headers["Link"]
        r = paged_hub.request("GET", link)
        assert r.status_code in (200, 206), r.text
        seen += [tuple(x) for x in (r.json().get("power") or {}).get("values", [])]
    else:
        pytest.fail(f"no 200 after {len(points) + 2} pages")
    assert seen == want


@examples(100)
@given(points=dense, last_n=st.integers(1, 45), data=st.data())
def test_lastn_paging_walks_back_through_the_newest(
    paged_hub: SyncHub, points: list[tuple[int, int]], last_n: int, data: st.DataObject
) -> None:
    """lastN beyond the page size: 206 pages of the newest instances, each Content-Range
    running from the newest time back to the oldest on the page; asking again before that
    end (`timerel=before`, lastN less what came) gives exactly the newest lastN selected
    instances, each once, and ends with 200."""
    rel, a, _ = data.draw(one_sided(points, "before"))
    eid = stored(paged_hub, points)
    keep = selects((rel, a, 0))
    want = [(v, iso(T0 + timedelta(minutes=m))) for m, v in sorted(points) if keep(m)][-last_n:]
    params = {"options": "temporalValues", "lastN": str(last_n), **time_params((rel, a, 0))}
    seen: list[tuple[int, str]] = []
    for _ in range(len(points) + 2):
        r, page = fetch_page(paged_hub, eid, params)
        assert page == sorted(page, key=lambda p: p[1]), "a page lists its instances in time order"
        assert not set(page) & set(seen), (page, seen)
        seen = page + seen
        if r.status_code == 200:
            break
        newest, _, rest = r.headers["Content-Range"].removeprefix("date-time ").partition("Z-")
        oldest, _, size = rest.partition("/")
        assert size == params["lastN"]  # the size this request asked for
        assert page[0][1] == oldest and newest + "Z" >= page[-1][1], r.headers["Content-Range"]
        params.update(timerel="before", timeAt=oldest, lastN=str(last_n - len(seen)))
    else:
        pytest.fail(f"no 200 after {len(points) + 2} pages")
    assert seen == want

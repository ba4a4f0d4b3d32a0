"""Temporal pages never end partway through one instant: instances that share a time (one
POST's createdAt, several datasetIds observed together) are all reached by following the
Content-Range, oldest first and newest first (a prober's finding, 2026-12-06)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import BASE, SyncHub

EID = "urn:ngsi-ld:Meter:t1"
LIMIT = 3
RANGE = re.compile(r"date-time (\S+)-(\d{4}-\S+)/(\S+)")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path / "hub.db", temporal_limit=LIMIT)
    yield h
    h.close()


def _create(hub: SyncHub, instances: list[dict[str, Any]]) -> None:
    body = {"id": EID, "type": "Meter", "p": instances}
    assert hub.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201


def _get(hub: SyncHub, **params: str) -> tuple[list[Any], str | None]:
    params = {"options": "temporalValues", **params}
    resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
    assert resp.status_code in (200, 206), resp.text
    records = resp.json().get("p", [])
    records = records if isinstance(records, list) else [records]
    values = [pair[0] for rec in records for pair in rec["values"]]
    return values, resp.headers.get("Content-Range") if resp.status_code == 206 else None


def _walk(hub: SyncHub, newest_first: bool, **params: str) -> list[Any]:
    """Every value reached by following the pages, as a client does."""
    seen: list[Any] = []
    extra: dict[str, str] = {"lastN": "100"} if newest_first else {}
    for _ in range(20):
        values, content_range = _get(hub, **params, **extra)
        seen += values
        if content_range is None:
            return seen
        match = RANGE.fullmatch(content_range)
        assert match, content_range
        end = match[2]
        if newest_first:  # the range runs from the newest down to where the page stopped
            extra = {"lastN": "100", "timerel": "before", "timeAt": end}
        else:
            extra = {"timerel": "after", "timeAt": end}
    raise AssertionError(f"still paging after 20 pages; seen {seen}")


@pytest.mark.parametrize("newest_first", [False, True])
def test_more_instances_at_one_instant_than_a_page_holds(hub: SyncHub, newest_first: bool) -> None:
    """One POST stores 8 instances with one createdAt: the first page was 0-2, the next the
    same 0-2 again for ever (oldest first), or the rest were lost (newest first)."""
    _create(
        hub,
        [
            {"type": "Property", "value": n, "observedAt": f"2020-01-01T00:00:0{n}Z"}
            for n in range(8)
        ],
    )
    seen = _walk(hub, newest_first, timeproperty="createdAt")
    assert sorted(set(seen)) == list(range(8)), seen


@pytest.mark.parametrize("newest_first", [False, True])
def test_datasets_observed_together_are_not_split(hub: SyncHub, newest_first: bool) -> None:
    """3 datasetIds observed at 4 times: a page of 3 must not end with one of them cut off.
    The limit is per datasetId, as lastN is: the first page holds 3 instants of each."""
    instances = [
        {
            "type": "Property",
            "value": f"{ds}{t}",
            "datasetId": f"urn:ds:{ds}",
            "observedAt": f"2020-01-01T00:00:0{t}Z",
        }
        for t in range(4)
        for ds in "abc"
    ]
    _create(hub, instances)
    seen = _walk(hub, newest_first)
    assert sorted(set(seen)) == sorted(i["value"] for i in instances), seen
    values, content_range = _get(hub)
    first_three = sorted(f"{ds}{t}" for ds in "abc" for t in range(3))
    assert content_range is not None and sorted(values) == first_three, values


def test_an_explicit_last_n_within_the_limit_is_exact(hub: SyncHub) -> None:
    """lastN asked by the client is not widened by ties (one POST's instances share their
    createdAt; one observedAt sent three times in one body is one observation)."""
    _create(
        hub,
        [
            {"type": "Property", "value": n, "observedAt": f"2020-01-01T00:00:0{n}Z"}
            for n in range(3)
        ],
    )
    values, content_range = _get(hub, lastN="2", timeproperty="createdAt")
    assert len(values) == 2 and content_range is None, values


def test_a_range_that_starts_at_the_epoch_says_so(hub: SyncHub) -> None:
    """timeAt=1970-01-01T00:00:00Z is 0.0 seconds, and was taken for "no start": the range
    began at the page's last instant."""
    _create(
        hub,
        [
            {"type": "Property", "value": n, "observedAt": f"2024-01-0{n}T00:00:00Z"}
            for n in (1, 2, 3, 4)
        ],
    )
    values, content_range = _get(hub, timerel="after", timeAt="1970-01-01T00:00:00Z")
    assert values == [1, 2, 3]
    assert content_range is not None and content_range.startswith(
        "date-time 1970-01-01T00:00:00Z-2024-01-03T00:00:00Z"
    ), content_range


def test_aggregated_periods_are_paged_like_instances(hub: SyncHub) -> None:
    """A tiny aggrPeriodDuration gave one period per instance, every one of them at once."""
    hub.app.state.temporal.period_limit = LIMIT  # MAX_PERIODS, made small
    instances = [
        {"type": "Property", "value": n, "observedAt": f"2026-01-01T00:{n:02d}:00Z"}
        for n in range(8)
    ]
    _create(hub, instances)
    seen: list[float] = []
    params = {
        "options": "aggregatedValues",
        "aggrMethods": "sum,totalCount",
        "aggrPeriodDuration": "PT1M",
        "timerel": "after",
        "timeAt": "2026-01-01T00:00:00Z",
    }
    for _ in range(5):
        resp = hub.request("GET", f"{BASE}/temporal/entities/{EID}", params=params)
        assert resp.status_code in (200, 206), resp.text
        p = resp.json()["p"]
        assert len(p["sum"]) <= LIMIT and len(p["totalCount"]) == len(p["sum"]), p
        seen += [period[0] for period in p["sum"]]
        if resp.status_code == 200:
            break
        match = RANGE.match(resp.headers["Content-Range"])
        assert match is not None, resp.headers["Content-Range"]
        params["timeAt"] = match.group(2)  # the next page starts where this one was cut
    assert seen == [float(n) for n in range(8)], seen

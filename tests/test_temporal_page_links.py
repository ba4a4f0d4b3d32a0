"""A 206 temporal page links the next one (decision 031): `rel="intervalafter"` oldest first,
`rel="intervalbefore"` newest first (lastN). Following the links reaches every selected
instance exactly once, whatever the window, ties and datasetIds; the Content-Range keeps the
shape the ETSI suite checks (020_13, 021_15): forward, its end is the last instant returned."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import BASE, SyncHub

LIMIT = 3
RANGE = re.compile(r"date-time (\S+)-(\d{4}-\S+)/(\S+)")
LINK = re.compile(r'<([^>]*)>;\s*rel="(interval(?:after|before))"')
# (minute, value) of p, of p under a datasetId and of q: the series share minutes (one
# series holds one observation per time: a second one in a body replaces the first)
P = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (9, 9)]
P_DS = [(1, 100), (2, 101), (3, 102), (4, 103), (8, 105)]
Q = [(0, 200), (1, 201), (3, 202), (4, 203), (9, 204)]
WINDOWS = {
    "none": {},
    "after": {"timerel": "after", "timeAt": "2020-01-01T00:01:00Z"},
    "before": {"timerel": "before", "timeAt": "2020-01-01T00:09:00Z"},
    "between": {
        "timerel": "between",
        "timeAt": "2020-01-01T00:01:00Z",
        "endTimeAt": "2020-01-01T00:09:00Z",
    },
}


def _at(minute: int) -> str:
    return f"2020-01-01T00:{minute:02d}:00Z"


def _inst(minute: int, value: int, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": _at(minute), **extra}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path_factory.mktemp("links") / "hub.db", temporal_limit=LIMIT)
    ds = "urn:ngsi-ld:Dataset:b"
    for n in (1, 2):
        body = {
            "id": f"urn:ngsi-ld:Meter:L{n}",
            "type": "Meter",
            "p": [_inst(m, v + 1000 * n) for m, v in P]
            + [_inst(m, v + 1000 * n, datasetId=ds) for m, v in P_DS],
            "q": [_inst(m, v + 1000 * n) for m, v in Q],
        }
        assert h.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201
    yield h
    h.close()


def _selected(window: dict[str, str]) -> list[int]:
    """Every value the window selects (after includes timeAt, before and between's end not)."""
    lo = int(window["timeAt"][14:16]) if window.get("timerel") in ("after", "between") else -1
    hi = {"before": window.get("timeAt"), "between": window.get("endTimeAt")}.get(
        window.get("timerel", "")
    )
    top = int(hi[14:16]) if hi else 99
    points = P + P_DS + Q
    return sorted(v + 1000 * n for n in (1, 2) for m, v in points if lo <= m < top)


def _values(body: Any) -> list[int]:
    out = []
    for entity in body if isinstance(body, list) else [body]:
        for attr in ("p", "q"):
            records = entity.get(attr, [])
            for rec in records if isinstance(records, list) else [records]:
                out += [pair[0] for pair in rec["values"]]
    return out


def _walk(hub: SyncHub, url: str, params: dict[str, str], rel: str) -> list[int]:
    """Every value reached by following the page links."""
    resp = hub.request("GET", url, params=params)
    seen: list[int] = []
    for _ in range(30):
        assert resp.status_code in (200, 206), resp.text
        seen += _values(resp.json())
        links = dict((r, u) for u, r in LINK.findall(resp.headers.get("link", "")))
        if resp.status_code == 200:
            assert not links, "a whole answer links no further page"
            return seen
        assert set(links) == {rel}, resp.headers.get("link")
        resp = hub.request("GET", links[rel])
    raise AssertionError(f"still paging after 30 pages: {seen}")


@pytest.mark.parametrize("one", [True, False], ids=["retrieve", "query"])
@pytest.mark.parametrize("window", list(WINDOWS), ids=list(WINDOWS))
def test_following_the_links_oldest_first_repeats_and_skips_nothing(
    hub: SyncHub, window: str, one: bool
) -> None:
    url = f"{BASE}/temporal/entities" + ("/urn:ngsi-ld:Meter:L1" if one else "")
    params = {"options": "temporalValues", **WINDOWS[window]}
    if not one:
        params["type"] = "Meter"
    seen = _walk(hub, url, params, "intervalafter")
    want = [v for v in _selected(WINDOWS[window]) if not one or v < 2000]
    assert sorted(seen) == want, "each selected instance once"


@pytest.mark.parametrize("newest_first", [False, True])
def test_one_instant_fuller_than_a_page(hub: SyncHub, newest_first: bool) -> None:
    """On createdAt every instance of a POST shares one time: the page holds that instant
    whole, and its link leads past it, to the end."""
    params = {"options": "temporalValues", "timeproperty": "createdAt", "type": "Meter"}
    if newest_first:
        params["lastN"] = "1000"
    rel = "intervalbefore" if newest_first else "intervalafter"
    seen = _walk(hub, f"{BASE}/temporal/entities", params, rel)
    assert sorted(seen) == _selected({})


@pytest.mark.parametrize("window", list(WINDOWS), ids=list(WINDOWS))
def test_following_the_links_newest_first_repeats_and_skips_nothing(
    hub: SyncHub, window: str
) -> None:
    params = {"options": "temporalValues", "lastN": "1000", "type": "Meter", **WINDOWS[window]}
    seen = _walk(hub, f"{BASE}/temporal/entities", params, "intervalbefore")
    assert sorted(seen) == _selected(WINDOWS[window])


def test_the_forward_range_still_ends_at_the_last_instant_returned(hub: SyncHub) -> None:
    """020_13/021_15: the Content-Range runs from the start to the newest time on the page."""
    resp = hub.request(
        "GET", f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:L1", params={"attrs": "q"}
    )
    assert resp.status_code == 206, resp.text
    match = RANGE.fullmatch(resp.headers["content-range"])
    assert match, resp.headers["content-range"]
    times = [i["observedAt"] for i in resp.json()["q"]]
    assert (match[1], match[2], match[3]) == (min(times), max(times), "*")
    link = dict((r, u) for u, r in LINK.findall(resp.headers["link"]))["intervalafter"]
    assert "timeAt=2020-01-01T00:03:00.000001Z" in link and "attrs=q" in link, link


def test_a_post_query_has_no_url_to_link(hub: SyncHub) -> None:
    body = {"type": "Query", "entities": [{"type": "Meter"}]}
    resp = hub.request("POST", f"{BASE}/temporal/entityOperations/query", json=body)
    assert resp.status_code == 206, resp.text
    assert not LINK.findall(resp.headers.get("link", ""))


def test_links_are_kept_apart_from_entity_page_links(hub: SyncHub) -> None:
    """The query's entity pages keep prev/next; the instance pages add their own relation."""
    params = {"type": "Meter", "limit": "1", "options": "temporalValues"}
    resp = hub.request("GET", f"{BASE}/temporal/entities", params=params)
    assert resp.status_code == 206, resp.text
    assert 'rel="next"' in resp.headers["link"] and 'rel="intervalafter"' in resp.headers["link"]

"""A lastN answer longer than a page: following its `intervalbefore` links reaches exactly the
lastN newest instances of each attribute and datasetId in the request's window, each once
(decision 058). The links kept lastN and moved the window before each cut, so every page
asked for N more, and a client collected the whole history; with several datasetIds, a
sparse series was given more than N."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import BASE, SyncHub, problem

LIMIT = 3
LINK = re.compile(r'<([^>]*)>;\s*rel="(interval(?:after|before))"')
RANGE = re.compile(r"date-time (\S+)-(\d{4}-\S+)/(\S+)")
DS_A, DS_B = "urn:ngsi-ld:Dataset:a", "urn:ngsi-ld:Dataset:b"
# (attribute, datasetId) -> the minutes of its readings; a reading's value is its series'
# number * 100 + its minute
SERIES: dict[tuple[str, str | None], list[int]] = {
    ("p", None): list(range(0, 20, 2)),  # 10 readings
    ("p", DS_A): [5, 17],  # sparse
    ("p", DS_B): [1, 3, 4, 9, 11, 13, 19],
    ("q", None): [2, 6, 7, 8, 15],
}
WINDOWS = {
    "none": {},
    "before": {"timerel": "before", "timeAt": "2020-01-01T00:16:00Z"},
    "after": {"timerel": "after", "timeAt": "2020-01-01T00:03:00Z"},
    "between": {
        "timerel": "between",
        "timeAt": "2020-01-01T00:03:00Z",
        "endTimeAt": "2020-01-01T00:16:00Z",
    },
}


def _at(minute: int) -> str:
    return f"2020-01-01T00:{minute:02d}:00Z"


def _body(eid: str, offset: int) -> dict[str, Any]:
    attrs: dict[str, list[dict[str, Any]]] = {}
    for n, ((attr, ds), minutes) in enumerate(SERIES.items()):
        for m in minutes:
            inst: dict[str, Any] = {"type": "Property", "value": offset + n * 100 + m}
            inst["observedAt"] = _at(m)
            if ds is not None:
                inst["datasetId"] = ds
            attrs.setdefault(attr, []).append(inst)
    return {"id": eid, "type": "Meter", **attrs}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(tmp_path_factory.mktemp("lastn") / "hub.db", temporal_limit=LIMIT)
    for k in (1, 2):
        body = _body(f"urn:ngsi-ld:Meter:N{k}", 1000 * k)
        assert h.request("POST", f"{BASE}/temporal/entities", json=body).status_code == 201
    yield h
    h.close()


def _expected(window: dict[str, str], last_n: int, entities: tuple[int, ...]) -> list[int]:
    """The newest lastN values of each series in the window, for each entity."""
    lo = int(window["timeAt"][14:16]) if window.get("timerel") in ("after", "between") else -1
    end = {"before": window.get("timeAt"), "between": window.get("endTimeAt")}
    top = end.get(window.get("timerel", ""))
    hi = int(top[14:16]) if top else 99
    out = []
    for k in entities:
        for n, minutes in enumerate(SERIES.values()):
            kept = [m for m in minutes if lo <= m < hi][-last_n:]
            out += [1000 * k + n * 100 + m for m in kept]
    return sorted(out)


def _values(body: Any) -> list[int]:
    out = []
    for entity in body if isinstance(body, list) else [body]:
        for attr in ("p", "q"):
            records = entity.get(attr, [])
            for rec in records if isinstance(records, list) else [records]:
                out += [pair[0] for pair in rec["values"]]
    return out


def _walk(hub: SyncHub, url: str, params: dict[str, str]) -> tuple[list[int], int]:
    """Every value reached by following the intervalbefore links, and the pages it took."""
    resp = hub.request("GET", url, params=params)
    seen: list[int] = []
    for pages in range(1, 40):
        assert resp.status_code in (200, 206), resp.text
        seen += _values(resp.json())
        links = {r: u for u, r in LINK.findall(resp.headers.get("link", ""))}
        if resp.status_code == 200:
            assert not links, "a whole answer links no further page"
            return seen, pages
        match = RANGE.fullmatch(resp.headers["content-range"])
        assert match and match[3] == params["lastN"], resp.headers["content-range"]
        assert set(links) == {"intervalbefore"}, resp.headers.get("link")
        resp = hub.request("GET", links["intervalbefore"])
    raise AssertionError(f"still paging after 40 pages: {seen}")


@pytest.mark.parametrize("last_n", [1, 2, 3, 4, 5, 7, 12])
@pytest.mark.parametrize("window", list(WINDOWS), ids=list(WINDOWS))
def test_the_pages_of_one_entity_hold_its_last_n_per_series(
    hub: SyncHub, window: str, last_n: int
) -> None:
    params = {"options": "temporalValues", "lastN": str(last_n), **WINDOWS[window]}
    seen, pages = _walk(hub, f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:N1", params)
    assert sorted(seen) == _expected(WINDOWS[window], last_n, (1,)), "each of the N once"
    assert pages == 1 or last_n > LIMIT, "N within a page is one page"


@pytest.mark.parametrize("last_n", [4, 7])
@pytest.mark.parametrize("window", ["none", "between"])
def test_the_pages_of_a_query_hold_each_entitys_last_n_per_series(
    hub: SyncHub, window: str, last_n: int
) -> None:
    params = {"type": "Meter", "options": "temporalValues", "lastN": str(last_n)}
    seen, _ = _walk(hub, f"{BASE}/temporal/entities", {**params, **WINDOWS[window]})
    assert sorted(seen) == _expected(WINDOWS[window], last_n, (1, 2))


def test_the_link_keeps_the_window_and_names_the_cut(hub: SyncHub) -> None:
    """The probe's case: 10 readings, lastN=4, 3 a page; the link said `before` the cut with
    lastN=4, and its page gave 3 more, the next 3 more, and so on."""
    params = {"options": "temporalValues", "lastN": "4", "attrs": "q", **WINDOWS["after"]}
    resp = hub.request("GET", f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:N1", params=params)
    assert resp.status_code == 206, resp.text
    link = dict((r, u) for u, r in LINK.findall(resp.headers["link"]))["intervalbefore"]
    assert "pageBefore=2020-01-01T00:07:00Z" in link, link
    assert "timerel=after" in link and "timeAt=2020-01-01T00:03:00Z" in link, link
    assert "lastN=4" in link and "attrs=q" in link, link
    last = hub.request("GET", link)
    assert last.status_code == 200, last.text
    assert _values(last.json()) == [1306]  # q's fourth newest after 00:03, and no more


def test_page_before_needs_last_n_and_instances(hub: SyncHub) -> None:
    url = f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:N1"
    cut = {"pageBefore": "2020-01-01T00:07:00Z"}
    err = problem(hub.request("GET", url, params=cut), 400, "BadRequestData")
    assert "lastN" in err["detail"], err
    aggr = {**cut, "lastN": "2", "options": "aggregatedValues", "aggrMethods": "sum"}
    problem(hub.request("GET", url, params=aggr), 400, "BadRequestData")
    problem(hub.request("GET", url, params={**cut, "lastN": "2", "pageBefore": "x"}), 400)


def test_last_n_counts_within_one_instant(hub: SyncHub) -> None:
    """On createdAt every instance of a POST shares one instant: a page holds an instant
    whole, but not past the Nth newest (ties broken by row id, as lastN within a page
    breaks them), so the instant gave the whole history for lastN=4."""
    params = {"options": "temporalValues", "lastN": "4", "timeproperty": "createdAt"}
    seen, _ = _walk(hub, f"{BASE}/temporal/entities/urn:ngsi-ld:Meter:N1", params)
    assert sorted(seen) == _expected({}, 4, (1,))

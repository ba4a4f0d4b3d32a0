"""A temporal q narrowed in SQL (store/sqlite/temporal_q.py) selects exactly what Python's
match over the history alone selects: generated q trees over instances of every shape, with
and without a time window, compared with the narrowing switched off."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityhub.store.sqlite import temporal_q
from conftest import BASE, SyncHub

EXAMPLES = int(os.environ.get("CITYHUB_FUZZ_EXAMPLES", "0"))
# Instance values: numbers near the literals, beyond 2**53, and what a number never equals.
VALUES: list[Any] = [
    -3,
    -1,
    0,
    1,
    2,
    2.5,
    3,
    7,
    2**60,
    2**60 + 1,
    True,
    False,
    "2",
    [1, 5],
    {"a": 2},
]
LITERALS = ["-1", "0", "1", "2", "2.5", "3", "7", str(2**60), str(2**60 + 1), "1e3", '"2"', "true"]
TIMES = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"]


def _entity(i: int) -> dict[str, Any]:
    """Sensor i: n with 0-3 instances over three days (some in a dataset), m on every third."""
    n = [
        {
            "type": "Property",
            "value": VALUES[(i * 7 + k * 3) % len(VALUES)],
            "observedAt": TIMES[(i + k) % 3],
            **({"datasetId": "urn:ds:b"} if (i + k) % 4 == 0 else {}),
        }
        for k in range(i % 4)
    ]
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Sensor:{i}", "type": "Sensor"}
    if n:
        body["n"] = n
    if i % 3 == 0:
        body["m"] = [{"type": "Property", "value": i % 5, "observedAt": TIMES[i % 3]}]
    if not n and "m" not in body:
        body["other"] = [{"type": "Property", "value": 1, "observedAt": TIMES[0]}]
    return body


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    """48 temporal sensors."""
    h = SyncHub(tmp_path_factory.mktemp("tq") / "hub.db")
    for i in range(48):
        resp = h.request("POST", f"{BASE}/temporal/entities", json=_entity(i))
        assert resp.status_code == 201, resp.text
    yield h
    h.close()


comparison = st.builds(
    "{}{}{}".format,
    st.sampled_from(["n", "m", "absent"]),
    st.sampled_from(["==", "!=", ">", ">=", "<", "<="]),
    st.sampled_from(LITERALS),
)
q_tree = st.recursive(
    comparison,
    lambda inner: st.lists(inner, min_size=2, max_size=3).flatmap(
        lambda items: st.sampled_from([";".join(items), "|".join(items), f"({'|'.join(items)})"])
    ),
    max_leaves=4,
)
window = st.sampled_from(
    [
        {},
        {"timerel": "after", "timeAt": TIMES[1]},
        {"timerel": "before", "timeAt": TIMES[2]},
        {"timerel": "between", "timeAt": TIMES[1], "endTimeAt": TIMES[2]},
    ]
)


def _ask(hub: SyncHub, params: dict[str, str]) -> tuple[int, list[str], str | None]:
    resp = hub.request("GET", f"{BASE}/temporal/entities", params=params)
    ids = [e["id"] for e in resp.json()] if resp.status_code == 200 else []
    return resp.status_code, ids, resp.headers.get("NGSILD-Results-Count")


def test_the_narrowing_selects_what_python_selects(
    hub: SyncHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    narrowed = 0

    @settings(
        max_examples=EXAMPLES or 150,
        derandomize=not EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(q=q_tree, when=window, paged=st.booleans())
    def run(q: str, when: dict[str, str], paged: bool) -> None:
        nonlocal narrowed
        params = {"type": "Sensor", "q": q, "count": "true", "limit": "100", **when}
        if paged:
            params.update(limit="3", offset="2")
            del params["count"]
        with monkeypatch.context() as m:
            m.setattr(temporal_q, "prefilter", lambda *a, **k: None)
            plain = _ask(hub, params)
        fast = _ask(hub, params)
        assert fast == plain, f"q={q} {when}"
        narrowed += temporal_q.prefilter is not None and fast[0] == 200

    run()
    assert narrowed, "no generated query was answered"

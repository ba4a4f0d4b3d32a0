"""A temporal q narrowed in SQL (store/sqlite/temporal_q.py) selects exactly what Python's
match over the history alone selects: generated q trees over instances of every shape, with
and without a time window, compared with the narrowing switched off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityhub.store.sqlite import temporal_q
from conftest import SyncHub
from temporal_support import TIMES, WINDOWS, ask, examples, post_temporal, same_without

# Instance values: numbers near the literals, beyond 2**53, and what a number never equals
# (strings, a DateTime string, lists, an object), which string, null and time literals meet.
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
    "ok",
    "2020-01-01T00:00:00Z",
    ["ok", 2],
    [1, 5],
    {"a": 2},
]
LITERALS = [
    "-1",
    "0",
    "1",
    "2",
    "2.5",
    "3",
    "7",
    str(2**60),
    str(2**60 + 1),
    "1e3",
    '"2"',
    "true",
    '"ok"',
    "null",
    "2020-01-01T00:00:00Z",
    '"1".."3"',
    '"2","ok"',
]


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
    post_temporal(h, [_entity(i) for i in range(48)])
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


def test_the_narrowing_selects_what_python_selects(
    hub: SyncHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = 0

    @examples(150)
    @given(q=q_tree, when=WINDOWS, paged=st.booleans())
    def run(q: str, when: dict[str, str], paged: bool) -> None:
        nonlocal answered
        params = {"type": "Sensor", "q": q, **when}
        answered += same_without(hub, monkeypatch, temporal_q, "prefilter", params, paged)[0] == 200

    run()
    assert answered, "no generated query was answered"


def test_a_string_comparison_reads_no_history_that_cannot_hold_the_string(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """q=status=="alarm" over sensors whose readings are numbers, or other strings, parses
    none of them in Python (10 s over 2,000 sensors x 200 readings: a prober's finding)."""
    h = SyncHub(tmp_path / "hub.db")
    try:
        bodies: list[dict[str, Any]] = []
        for i, values in enumerate([[1, 2], [3.5], ["ok", "warn"], ["alarm", "ok"], [{"a": 1}]]):
            insts = [
                {"type": "Property", "value": v, "observedAt": TIMES[k]}
                for k, v in enumerate(values)
            ]
            bodies.append({"id": f"urn:ngsi-ld:Sensor:s{i}", "type": "Sensor", "status": insts})
        post_temporal(h, bodies)
        read: list[int] = []
        from cityhub.store.sqlite import temporal

        real = temporal._matches_history

        def spy(conn: Any, names: Any, tpk: int, *rest: Any) -> bool:
            read.append(tpk)
            return real(conn, names, tpk, *rest)

        monkeypatch.setattr(temporal, "_matches_history", spy)
        for q, want in (('status=="alarm"', ["s3"]), ('status>"p"', ["s2"]), ("status==null", [])):
            read.clear()
            got = same_without(
                h, monkeypatch, temporal_q, "prefilter", {"type": "Sensor", "q": q}, False
            )
            assert got[1] == [f"urn:ngsi-ld:Sensor:{s}" for s in want], (q, got)
            read.clear()
            ask(h, {"type": "Sensor", "q": q})
            if q == 'status=="alarm"':  # the alarm's and the one whose value is an object
                assert len(read) == 2, read
            else:  # no number is a string or null
                assert len(read) <= 3, read
    finally:
        h.close()

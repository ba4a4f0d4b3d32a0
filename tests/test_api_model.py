"""Generated sequences of entity writes agree with a plain model of what each one does.

The model is a dict: entity id -> {attribute: value}. Each operation either changes it the way
the spec says, or is refused and changes nothing; after every step the hub's keyValues view of
every entity must be the model's.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BASE, SyncHub

EXAMPLES = int(os.environ.get("CITYHUB_FUZZ_EXAMPLES", "0"))
NAMES = ("a", "b", "c")
Model = dict[str, dict[str, int]]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncHub]:
    h = SyncHub(Path(tmp_path_factory.mktemp("model")) / "hub.db")
    yield h
    h.close()


attrs = st.dictionaries(st.sampled_from(NAMES), st.integers(-9, 9), max_size=3)
OPS = ("create", "upsert-replace", "upsert-update", "merge", "replace", "append", "batch-update")
OPS += ("delete-attr", "delete", "batch-delete")
ops = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 2), attrs, st.sampled_from(NAMES)),
    min_size=1,
    max_size=15,
)
runs = itertools.count()


def attributes(values: dict[str, int]) -> dict[str, Any]:
    return {k: {"type": "Property", "value": v} for k, v in values.items()}


def body(eid: str, values: dict[str, int]) -> dict[str, Any]:
    return {"id": eid, "type": "T", **attributes(values)}


def apply(hub: SyncHub, model: Model, op: str, eid: str, values: dict[str, int], name: str) -> int:
    """Send one operation and change the model as the spec says it changes the entity; the
    status code, for the message of a failing check."""
    url, here = f"{BASE}/entities/{quote(eid, safe='')}", eid in model
    if op == "create":
        r = hub.request("POST", f"{BASE}/entities", json=body(eid, values))
        if not here:
            model[eid] = dict(values)
    elif op in ("upsert-replace", "upsert-update"):
        option = op.split("-")[1]
        r = hub.request(
            "POST",
            f"{BASE}/entityOperations/upsert",
            params={"options": option},
            json=[body(eid, values)],
        )
        model[eid] = dict(values) if option == "replace" or not here else {**model[eid], **values}
    elif op == "batch-update":
        r = hub.request("POST", f"{BASE}/entityOperations/update", json=[body(eid, values)])
        if here:
            model[eid].update(values)
    elif op in ("merge", "append"):
        method, path = ("PATCH", url) if op == "merge" else ("POST", url + "/attrs")
        r = hub.request(method, path, json=attributes(values))
        if here:
            model[eid].update(values)
    elif op == "replace":
        r = hub.request("PUT", url, json=body(eid, values))
        if here:
            model[eid] = dict(values)
    elif op == "delete-attr":
        r = hub.request("DELETE", f"{url}/attrs/{name}")
        if here:
            model[eid].pop(name, None)
    elif op == "delete":
        r = hub.request("DELETE", url)
        model.pop(eid, None)
    else:
        r = hub.request("POST", f"{BASE}/entityOperations/delete", json=[eid])
        model.pop(eid, None)
    assert r.status_code < 500, r.text
    return r.status_code


@settings(
    max_examples=EXAMPLES or 150,
    derandomize=not EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=ops)
def test_writes_follow_the_model(
    hub: SyncHub, steps: list[tuple[str, int, dict[str, int], str]]
) -> None:
    run = next(runs)
    ids = [f"urn:ngsi-ld:T:{run}-{i}" for i in range(3)]
    model: Model = {}
    done = []
    for op, i, values, name in steps:
        status = apply(hub, model, op, ids[i], values, name)
        done.append((op, i, values, name, status))
        for eid in ids:
            r = hub.request(
                "GET", f"{BASE}/entities/{quote(eid, safe='')}", params={"format": "keyValues"}
            )
            if eid in model:
                assert r.status_code == 200, (done, r.text)
                assert r.json() == {"id": eid, "type": "T", **model[eid]}, done
            else:
                assert r.status_code == 404, (done, r.text)

"""A batch upsert expands each item once (the IoT agent writes every device batch so)."""

from __future__ import annotations

from typing import Any

import pytest


def test_a_batch_upsert_expands_each_entity_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device batch (an upsert in update mode) of stored entities expanded each item
    twice: once to find the new ones, again to update it."""
    from cityhub.ngsild import service as service_module
    from cityhub.ngsild.context import ContextCache
    from cityhub.ngsild.service import EntityService
    from cityhub.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "hub.db"))
    try:
        svc = EntityService(store)
        tm = ContextCache().core
        items = [
            {"id": f"urn:ngsi-ld:T:{i}", "type": "T", "v": {"type": "Property", "value": i}}
            for i in range(5)
        ]
        assert len(svc.batch_upsert("", items, tm, mode="update").created) == 5
        calls = [0]
        expand = service_module.expand_entity

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return expand(*args, **kwargs)

        monkeypatch.setattr(service_module, "expand_entity", counted)
        again = [{**item, "v": {"type": "Property", "value": 10}} for item in items]
        out = svc.batch_upsert("", [*again, {"id": "x"}], tm, mode="update")
        assert out.success == [item["id"] for item in items] and len(out.errors) == 1
        assert calls[0] == 6
        doc = svc.get("", "urn:ngsi-ld:T:3")
        (name,) = [n for n in doc["attrs"] if n.endswith("/v")]
        assert doc["attrs"][name][0]["value"] == 10
    finally:
        store.close()

"""A registration a hub beside a long `cityhub import --db` takes while it runs binds the rest
of the import (decision 083): the importer reads the claims again when another process has
written, inside each slice's own transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cityhub.api.app import create_app
from cityhub.cli import main
from cityhub.ingest.importers.dbsink import DbSink
from cityhub.settings import Settings
from test_registration_bounds import REGS
from test_registration_exclusive import reg

SHOP = "urn:ngsi-ld:Shop:s1500"  # in the second chunk


def _register(db: Path, doc: dict[str, Any]) -> None:
    """POST a registration to a hub serving the database (its own store, as a hub beside)."""

    async def post() -> None:
        app: Starlette = create_app(Settings(db=str(db)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            resp = await c.post(REGS, json=doc)
            assert resp.status_code == 201, resp.text
        app.state.store.close()

    asyncio.run(post())


def test_a_registration_made_while_an_import_runs_binds_its_later_chunks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "hub.db"
    claim = reg("late", "exclusive", names=["name"])
    claim["information"][0]["entities"] = [{"type": "Shop", "id": SHOP}]
    sent = DbSink.send

    def send(self: DbSink, entities: list[dict[str, Any]]) -> Any:
        out = sent(self, entities)
        if entities[0]["id"].endswith(":s1"):  # after the first chunk is stored
            _register(db, claim)
        return out

    monkeypatch.setattr(DbSink, "send", send)
    csv = tmp_path / "shops.csv"
    csv.write_text("id,name\n" + "".join(f"s{i},Shop {i}\n" for i in range(1, 2001)))
    argv = ["import", "csv", str(csv), "--type", "Shop", "--db", str(db), "--no-progress"]
    assert main(argv) == 1
    out = capsys.readouterr()
    assert f"rejected line 1501 {SHOP}: Conflict:" in out.err, out.err
    assert "1,999 created, 0 updated, 0 unchanged, 1 rejected" in out.out

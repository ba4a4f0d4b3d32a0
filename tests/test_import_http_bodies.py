"""`import --url` sizes its batch bodies by bytes as well as entities (probe 4, finding 3): a
413 halves the body, an entity too large on its own is rejected with its line, and an import
the hub stops says whether running it again can finish it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cityhub.cli import main
from cityhub.ingest.importers.httpsink import HttpSink
from conftest import free_port
from test_serve import serving

pytestmark = pytest.mark.server


def rows(tmp_path: Path, big: int) -> str:
    """40 rows of about 100 bytes each, and on line 12 one whose cell has `big` characters."""
    lines = ["id,note"] + [f"r{i},{'n' * 80}" for i in range(40)]
    lines.insert(11, f"huge,{'h' * big}")
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def statuses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The status of every request the importer's HTTP sink sends, in order."""
    seen: list[int] = []
    send = HttpSink._send

    def counted(self: HttpSink, *args: Any) -> httpx.Response:
        resp = send(self, *args)
        seen.append(resp.status_code)
        return resp

    monkeypatch.setattr(HttpSink, "_send", counted)
    return seen


def test_bodies_over_the_hubs_limit_are_halved_and_a_too_large_entity_is_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statuses: list[int]
) -> None:
    path = rows(tmp_path, 5000)
    with serving(tmp_path / "hub.db", free_port(), {"CITYHUB_MAX_BODY": "4096"}) as url:
        argv = ["import", "csv", path, "--type", "Note", "--url", url, "--no-progress"]
        assert main(argv) == 1
        out = capsys.readouterr()
        assert "40 created, 0 updated, 0 unchanged, 1 rejected" in out.out
        assert (
            "rejected line 12 urn:ngsi-ld:Note:huge: Request body too large: the entity's JSON "
            "has 5,082 bytes, more than the hub takes in one request" in out.err
        )
        assert 413 in statuses  # the importer's own settings said 64 MiB
        assert main(argv) == 1  # the same again: nothing new, the same rejection
        assert "0 created, 0 updated, 40 unchanged, 1 rejected" in capsys.readouterr().out


def test_a_body_within_the_importers_max_body_is_never_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statuses: list[int]
) -> None:
    """CITYHUB_MAX_BODY, set for the importer as for the hub, sizes the bodies it sends."""
    monkeypatch.setenv("CITYHUB_MAX_BODY", "4096")
    path = rows(tmp_path, 10)
    with serving(tmp_path / "hub.db", free_port(), {"CITYHUB_MAX_BODY": "4096"}) as url:
        assert main(["import", "csv", path, "--type", "Note", "--url", url, "--no-progress"]) == 0
    assert statuses and 413 not in statuses


@pytest.mark.parametrize(("status", "advice"), [(400, "stops the same way"), (503, "finishes it")])
def test_the_closing_advice_promises_a_rerun_only_when_it_can_help(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    advice: str,
) -> None:
    send = HttpSink._send

    def refusing(self: HttpSink, path: str, body: bytes, params: Any) -> httpx.Response:
        if path.endswith("/upsert"):
            problem = {"title": "Bad request data", "detail": "no"}
            return httpx.Response(status, json=problem)
        return send(self, path, body, params)

    monkeypatch.setattr(HttpSink, "_send", refusing)
    with serving(tmp_path / "hub.db", free_port()) as url:
        argv = ["import", "csv", rows(tmp_path, 10), "--type", "Note", "--url", url]
        assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"the hub refused the batch: HTTP {status} Bad request data: no" in err
    assert "0 entities were stored before it stopped" in err
    assert advice in err

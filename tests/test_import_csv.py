"""`cityhub import csv`: rows become entities, bad rows are reported, the rest are stored."""

from __future__ import annotations

import csv as pycsv
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore
from conftest import free_port
from receivers import ServerThread
from test_serve import serving

CORE = ContextCache().core

SHOPS = (
    "id,name,Floor Area (m2),staff,zip,lat,lon,opened\n"
    "s1,Corner Shop,120.5,3,02134,35.41,127.39,2024-03-01T08:00:00Z\n"
    "s2,Bakery,,7,,35.42,127.38,\n"
    "urn:ngsi-ld:Shop:s3,Kiosk,8,1,,,,\n"
)


def write(tmp_path: Path, text: str, name: str = "data.csv", bom: bool = False) -> Path:
    """A CSV file in the test's folder."""
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def docs(db: Path, tenant: str = "") -> dict[str, dict[str, Any]]:
    """Every stored entity by id, attributes by compacted name (default instance only)."""
    store = SqliteStore(db)
    try:
        found, _ = store.query(tenant, EntityQuery(limit=100_000))
    finally:
        store.close()
    return {
        d["id"]: {
            "type": [CORE.compact(t) for t in d["type"]],
            **{CORE.compact(n): v[0] for n, v in d["attrs"].items()},
        }
        for d in found
    }


def summary(out: str) -> str:
    """The summary line on stdout."""
    return [line for line in out.splitlines() if line.startswith("cityhub import")][-1]


def test_rows_become_typed_entities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hub.db"
    csv = write(tmp_path, SHOPS, bom=True)
    argv = ["import", "csv", str(csv), "--type", "Shop", "--lat", "lat", "--lon", "lon"]
    code = main([*argv, "--db", str(db), "--no-progress"])
    assert code == 0
    got = docs(db)
    assert set(got) == {"urn:ngsi-ld:Shop:s1", "urn:ngsi-ld:Shop:s2", "urn:ngsi-ld:Shop:s3"}
    s1 = got["urn:ngsi-ld:Shop:s1"]
    assert s1["type"] == ["Shop"]
    assert s1["name"]["value"] == "Corner Shop"
    assert s1["Floor_Area_m2"]["value"] == 120.5  # header sanitised, float detected
    assert s1["staff"]["value"] == 3 and isinstance(s1["staff"]["value"], int)
    assert s1["zip"]["value"] == "02134"  # a leading zero keeps a code as text
    assert s1["opened"]["value"] == "2024-03-01T08:00:00Z"
    assert s1["location"] == {
        **s1["location"],
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [127.39, 35.41]},
    }
    s2 = got["urn:ngsi-ld:Shop:s2"]
    assert "Floor_Area_m2" not in s2 and "zip" not in s2 and "opened" not in s2  # empty: skipped
    assert "location" not in got["urn:ngsi-ld:Shop:s3"]
    out = capsys.readouterr()
    assert "3 created, 0 updated, 0 unchanged, 0 rejected" in summary(out.out)
    assert "entities/s" in summary(out.out)
    assert "'Floor Area (m2)' becomes attribute 'Floor_Area_m2'" in out.err


def test_a_leading_plus_keeps_a_phone_number_as_text(tmp_path: Path) -> None:
    """`+33142765432` was stored as the number 33142765432, its `+` lost (probe finding 8):
    a number is one only as JSON writes it (no `+`, no leading zero)."""
    db = tmp_path / "hub.db"
    csv = write(tmp_path, "id,phone,delta,drop,ratio\nh1,+33142765432,+2,-3,-0.5\n")
    assert main(["import", "csv", str(csv), "--type", "Hall", "--db", str(db)]) == 0
    hall = docs(db)["urn:ngsi-ld:Hall:h1"]
    assert hall["phone"]["value"] == "+33142765432"
    assert hall["delta"]["value"] == "+2"
    assert hall["drop"]["value"] == -3 and hall["ratio"]["value"] == -0.5


def test_a_file_separated_by_semicolons_is_told_to_give_its_delimiter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """European Excel writes `;` between cells: the header read as one column only said the
    id column was missing (probe finding 7)."""
    csv = write(tmp_path, "id;name;lat;lon\n1;Shop;48,1;2,3\n")
    assert main(["import", "csv", str(csv), "--type", "Shop", "--db", str(tmp_path / "h.db")]) == 2
    assert (
        "the header reads as one column: are its cells separated by ';'? Give --delimiter ';'"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("cell", "hint"),
    [
        ("2024-03-01 08:00:00", "put a T between the date and the time: 2024-03-01T08:00:00"),
        ("01/03/2024 11:00", "ISO 8601 is year-month-day, e.g. 2024-03-01T11:00:00Z"),
    ],
)
def test_an_observed_at_as_spreadsheets_write_it_is_told_how_to_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, hint: str
) -> None:
    csv = write(tmp_path, f"id,t,temp\nr1,{cell},5\n")
    argv = ["import", "csv", str(csv), "--type", "Reading", "--observed-at", "t"]
    assert main([*argv, "--db", str(tmp_path / "h.db"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "rejected line 2 urn:ngsi-ld:Reading:r1: Bad request data: column 't'" in err
    assert hint in err


def test_observed_at_prefix_tab_delimiter_and_tenant(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    csv = write(
        tmp_path,
        "code\ttemp\tat\nA-1\t21.5\t2024-05-01T10:00:00Z\nA 2\t-3\t2024-05-01T11:00:00Z\n",
    )
    argv = ["import", "csv", str(csv), "--type", "Reading", "--id-column", "code"]
    argv += ["--id-prefix", "urn:ngsi-ld:Sensor:", "--delimiter", "tab", "--observed-at", "at"]
    assert main([*argv, "--tenant", "north", "--db", str(db), "--no-progress"]) == 0
    assert docs(db) == {}  # nothing in the default tenant
    got = docs(db, "north")
    assert set(got) == {"urn:ngsi-ld:Sensor:A-1", "urn:ngsi-ld:Sensor:A%202"}  # encoded space
    temp = got["urn:ngsi-ld:Sensor:A%202"]["temp"]
    assert temp["value"] == -3
    assert temp["observedAt"] == "2024-05-01T11:00:00Z"
    assert "at" not in got["urn:ngsi-ld:Sensor:A-1"]


def test_a_bad_row_is_rejected_and_reported_while_its_neighbours_are_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    csv = write(
        tmp_path,
        "id,name,lat,lon,at\n"
        "a,ok before,1,2,\n"
        ",no id,1,2,\n"
        "c,bad lat,95,2,\n"
        "g,half a point,,2,\n"
        'd,"two\nlines",,,\n'
        "e,bad time,,,yesterday\n"
        "f,ok after,3,4,\n",
    )
    argv = ["import", "csv", str(csv), "--type", "Shop", "--lat", "lat", "--lon", "lon"]
    argv += ["--observed-at", "at", "--chunk-size", "2", "--db", str(db), "--no-progress"]
    assert main(argv) == 1
    assert set(docs(db)) == {f"urn:ngsi-ld:Shop:{x}" for x in "adf"}
    out = capsys.readouterr()
    assert "rejected line 3: Bad request data: no entity id: column 'id' is empty" in out.err
    assert "rejected line 4 urn:ngsi-ld:Shop:c: Bad request data: latitude '95'" in out.err
    assert (
        "rejected line 5 urn:ngsi-ld:Shop:g: Bad request data: latitude is empty: give both "
        "--lat and --lon cells, or neither" in out.err
    )
    # Line 8's time is refused naming its column; line numbers count line breaks.
    assert (
        "rejected line 8 urn:ngsi-ld:Shop:e: Bad request data: column 'at' (--observed-at) is "
        "not an ISO 8601 DateTime: 'yesterday'" in out.err
    )
    assert "3 created, 0 updated, 0 unchanged, 4 rejected" in summary(out.out)
    assert "Traceback" not in out.err


def test_a_row_cut_short_is_rejected_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row with fewer cells than the header (a line cut short) was read as empty cells, so
    a re-import deleted the stored zip and location, exit 0 (probe finding 4)."""
    db = tmp_path / "short.db"
    argv = ["--type", "Shop", "--lat", "lat", "--lon", "lon", "--db", str(db), "--no-progress"]
    full = write(tmp_path, "id,phone,zip,lat,lon\ns1,555 0100,02134,35.4,127.3\ns2,x,1,2,3\n")
    assert main(["import", "csv", str(full), *argv]) == 0
    cut = write(tmp_path, "id,phone,zip,lat,lon\ns1,555 0199\ns2,y,1,2,3\n", "cut.csv")
    capsys.readouterr()
    assert main(["import", "csv", str(cut), *argv]) == 1
    stored = docs(db)
    assert stored["urn:ngsi-ld:Shop:s1"]["zip"]["value"] == "02134"
    assert stored["urn:ngsi-ld:Shop:s1"]["phone"]["value"] == "555 0100"  # the row is refused
    assert stored["urn:ngsi-ld:Shop:s1"]["location"]["value"]["coordinates"] == [127.3, 35.4]
    assert stored["urn:ngsi-ld:Shop:s2"]["phone"]["value"] == "y"
    out = capsys.readouterr()
    assert (
        "rejected line 2 urn:ngsi-ld:Shop:s1: Bad request data: the row has 2 cells but the "
        "header names 5" in out.err
    )
    assert "0 created, 1 updated, 0 unchanged, 1 rejected" in summary(out.out)


def test_a_malformed_row_is_rejected_and_the_rows_after_it_are_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    huge = "z" * (pycsv.field_size_limit() + 1)
    text = f'id,a\n1,"x"y\n2,ok\n3,"{huge}"\n4,ok\n5,"never closed\n6,q\n7,r\n'
    csv = write(tmp_path, text)
    assert main(["import", "csv", str(csv), "--type", "T", "--db", str(db), "--no-progress"]) == 1
    assert set(docs(db)) == {"urn:ngsi-ld:T:2", "urn:ngsi-ld:T:4"}
    out = capsys.readouterr()
    assert (
        "rejected line 2: Bad request data: text follows a quoted cell's closing quote" in out.err
    )
    assert "rejected line 4: Bad request data: a cell is longer than 131,072 characters" in out.err
    # An open quote swallows the rest of the file: the user learns where it opened.
    assert (
        "rejected line 6: Bad request data: a quoted cell opened on line 6 is never closed: "
        "lines 6-8" in out.err
    )
    # lines 6-8 were three rows, each lost: every data line is stored or counted
    assert "2 created, 0 updated, 0 unchanged, 5 rejected" in summary(out.out)


def test_a_quote_that_runs_past_the_cell_limit_rejects_every_line_it_swallowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reader gave up mid-file and went on: the swallowed rows vanished uncounted."""
    db = tmp_path / "hub.db"
    rows = "".join(f"r{i},{'v' * 90}\n" for i in range(3000))
    csv = write(tmp_path, 'id,name\nq1,"open\n' + rows)
    assert main(["import", "csv", str(csv), "--type", "T", "--db", str(db), "--no-progress"]) == 1
    out = capsys.readouterr()
    stored = docs(db)
    first = min(int(eid.rsplit(":r", 1)[1]) for eid in stored)  # the first row read again
    last_swallowed = first + 2  # row r<i> is on line i + 3
    assert (
        "rejected line 2: Bad request data: a cell is longer than 131,072 characters: a quoted "
        f"cell opened on line 2 ran on to line {last_swallowed} (a quote never closed?); "
        f"lines 2-{last_swallowed} are rejected with it" in out.err
    ), out.err
    assert len(stored) == 3000 - first
    rejected = last_swallowed - 1
    assert f"{len(stored):,} created, 0 updated, 0 unchanged, {rejected:,} rejected" in summary(
        out.out
    )
    assert len(stored) + rejected == 3001
    assert "more rejections not shown" not in out.err  # the one line covers them all


def test_a_rejected_repeat_of_an_id_is_reported_at_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store's rejection was placed by id, so the first line with that id was blamed."""
    text = "id,name,at\na,one,2024-01-01T00:00:00Z\nb,two,\na,three,yesterday\n"
    csv = write(tmp_path, text)
    argv = ["import", "csv", str(csv), "--type", "T", "--observed-at", "at", "--no-progress"]
    assert main([*argv, "--db", str(tmp_path / "hub.db")]) == 1
    err = capsys.readouterr().err
    assert (
        "rejected line 4 urn:ngsi-ld:T:a: Bad request data: column 'at' (--observed-at)" in err
    ), err
    assert "line 2" not in err


def test_only_the_first_20_rejections_are_printed_but_all_are_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"r{i},{i}\n" for i in range(5)) + ",x\n" * 25
    csv = write(tmp_path, "id,n\n" + rows)
    code = main(["import", "csv", str(csv), "--type", "T", "--db", str(tmp_path / "h.db")])
    assert code == 1
    out = capsys.readouterr()
    assert out.err.count("rejected line") == 20
    assert "5 more rejections not shown" in out.err
    assert "5 created, 0 updated, 0 unchanged, 25 rejected" in summary(out.out)
    assert "100%" in out.err  # the progress bar ran on stderr


def test_reimport_updates_instead_of_duplicating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "hub.db"
    csv = write(tmp_path, SHOPS)
    argv = ["import", "csv", str(csv), "--type", "Shop", "--db", str(db), "--no-progress"]
    assert main(argv) == 0
    before = docs(db)
    assert main(argv) == 0
    assert "0 created, 0 updated, 3 unchanged, 0 rejected" in summary(capsys.readouterr().out)
    after = docs(db)
    assert set(after) == set(before)
    for eid, doc in after.items():
        for name, inst in doc.items():
            if name != "type":
                assert inst["value"] == before[eid][name]["value"], (eid, name)


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("id,type\n1,x\n", [], "column 'type' cannot be an attribute name"),
        ("id,a,a\n1,2,3\n", [], "column 'a' appears twice"),
        ("id,a b,a_b\n1,2,3\n", [], "becomes attribute 'a_b', which column 'a b' already gives"),
        ("id,location\n1,x\n", [], "column 'location' cannot be an attribute"),
        ("id,()\n1,x\n", [], "column '()' cannot be an attribute name"),
        ("name\nx\n", [], "no column 'id' (--id-column)"),
        ("id,y\n1,2\n", ["--lat", "y"], "--lat and --lon go together"),
        ("id,y\n1,2\n", ["--delimiter", ";;"], "--delimiter must be one character"),
        ("", [], "is empty"),
    ],
)
def test_an_unusable_file_exits_2_with_a_one_line_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    extra: list[str],
    message: str,
) -> None:
    csv = write(tmp_path, text)
    db = tmp_path / "hub.db"
    assert main(["import", "csv", str(csv), "--type", "T", "--db", str(db), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("cityhub import: ")


def test_missing_file_bad_type_and_bad_arguments_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write(tmp_path, SHOPS)
    assert main(["import", "csv", str(tmp_path / "none.csv"), "--type", "T"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["import", "csv", str(csv), "--type", "bad type", "--db", str(tmp_path / "x")]) == 2
    assert "--type: invalid entity type" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["import", "csv", str(csv)])  # --type is required
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["import", "csv", str(csv), "--type", "T", "--db", "a", "--url", "http://x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["import", "csv", str(csv), "--type", "T", "--chunk-size", "0"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:abc", "Invalid port: 'abc'"),
        ("http://[::1", "Invalid port: ':1'"),
        ("127.0.0.1:1026", "it must start with http:// or https://"),
    ],
)
def test_a_url_that_names_no_hub_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, reason: str
) -> None:
    """A port of 'abc' was an httpx.InvalidURL traceback from deep in the runner, exit 1."""
    csv = write(tmp_path, "id,name\ns1,Corner Shop\n")
    assert main(["import", "csv", str(csv), "--type", "Shop", "--url", url]) == 2
    assert capsys.readouterr().err == f"cityhub import: bad --url {url!r}: {reason}\n"


def test_db_defaults_to_the_cityhub_db_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "from-env.db"
    monkeypatch.setenv("CITYHUB_DB", str(db))
    csv = write(tmp_path, SHOPS)
    assert main(["import", "csv", str(csv), "--type", "Shop", "--no-progress"]) == 0
    assert len(docs(db)) == 3


def test_a_file_that_is_not_utf8_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\n1,ok\n2,Café\n".encode("latin-1"))
    code = main(["import", "csv", str(path), "--type", "T", "--db", str(tmp_path / "h.db")])
    assert code == 2
    assert "line 3: not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        # a Western European Excel export was told it might be a Korean file (cp949)
        ("id,name\n1,Caf\u00e9 de la Gare\n".encode("cp1252"), "try --encoding cp1252"),
        ("id,name\n1,Stra\u00dfe\n".encode("latin-1"), "try --encoding cp1252"),
        ("id,name\n1,\ub0a8\uc6d0\uc2dc\n".encode("cp949"), "try --encoding cp949"),
        # Excel's "Unicode Text": UTF-16 with its byte-order mark, then tabs
        ("id\tname\n1\tCaf\u00e9\n".encode("utf-16"), "UTF-16 text"),
    ],
)
def test_a_file_not_in_utf8_is_told_which_encoding_it_looks_like(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, hint: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    code = main(["import", "csv", str(path), "--type", "T", "--db", str(tmp_path / "h.db")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path} line" in err and hint in err, err
    if hint == "UTF-16 text":
        assert "cp949" not in err and "save it as UTF-8" in err


def test_a_cp949_file_imports_with_its_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Korean public-data portals still publish CSV in cp949 (or euc-kr)."""
    path = tmp_path / "shelters.csv"
    path.write_bytes("id,시설명,주소\n1,남원시 경로당,전북 남원시\n".encode("cp949"))
    db = tmp_path / "h.db"
    argv = ["import", "csv", str(path), "--type", "Shelter", "--db", str(db), "--no-progress"]
    assert main(argv) == 2
    assert "try --encoding cp949" in capsys.readouterr().err
    assert main([*argv, "--encoding", "cp949"]) == 0
    [doc] = docs(db).values()
    assert "남원시 경로당" in json.dumps(doc, ensure_ascii=False), doc
    for bad in ("klingon", "utf-16"):
        assert main([*argv, "--encoding", bad]) == 2
        assert "--encoding" in capsys.readouterr().err


def test_url_sink_maps_a_207_back_to_the_rows(tmp_path: Path) -> None:
    """The hub's per-entity errors (207) land on the right rows; locally bad rows never leave."""
    import httpx

    from cityhub.ingest.importers.sinks import HttpSink

    seen: list[Any] = []

    def hub(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/entityOperations/query"):
            return httpx.Response(200, json=[])  # nothing stored yet
        seen.append((request.url.params.get("options"), request.headers.get("ngsild-tenant")))
        body = json.loads(request.content)
        seen.append([e["id"] for e in body])
        problem = {"type": "x", "title": "Already exists", "status": 409, "detail": "taken"}
        return httpx.Response(
            207,
            json={
                "success": [body[0]["id"]],
                "errors": [{"entityId": body[1]["id"], "error": problem}],
            },
        )

    sink = HttpSink("http://hub:1026/ngsi-ld/v1/", "north", CORE, None)
    sink.client = httpx.Client(transport=httpx.MockTransport(hub), headers=sink.client.headers)
    entities = [
        {"id": "urn:ngsi-ld:T:a", "type": "T"},
        {"id": "not a uri", "type": "T"},
        {"id": "urn:ngsi-ld:T:b", "type": "T"},
    ]
    result = sink.send(entities)
    sink.close()
    assert seen == [("update", "north"), ["urn:ngsi-ld:T:a", "urn:ngsi-ld:T:b"]]
    assert [(i, title) for i, title, _ in result.errors] == [
        (1, "Bad request data"),
        (2, "Already exists"),
    ]
    assert (result.created, result.updated) == (0, 1)


@pytest.mark.server
def test_url_import_notifies_the_hubs_subscribers(tmp_path: Path, servers: ServerThread) -> None:
    """Through --url, imported rows are changes like any other: subscribers hear of them."""
    import time

    import httpx

    receiver = servers.receiver()
    csv = write(tmp_path, SHOPS)
    with serving(tmp_path / "hub.db", free_port()) as url:
        sub = {
            "type": "Subscription",
            "entities": [{"type": "Shop"}],
            "notification": {"endpoint": {"uri": receiver.url()}, "format": "keyValues"},
        }
        assert httpx.post(f"{url}/ngsi-ld/v1/subscriptions", json=sub).status_code == 201
        argv = ["import", "csv", str(csv), "--type", "Shop", "--url", url, "--no-progress"]
        assert main(argv) == 0
        deadline = time.monotonic() + 10
        while receiver.total() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    names = sorted(r.body["data"][0]["name"] for r in receiver.received())
    assert names == ["Bakery", "Corner Shop", "Kiosk"]


def test_a_full_disk_ends_the_import_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cityhub.ngsild.service import EntityService
    from cityhub.store.base import StoreFull

    def full(*args: Any) -> Any:
        raise StoreFull("database or disk is full")

    monkeypatch.setattr(EntityService, "batch_upsert", full)
    csv = write(tmp_path, SHOPS)
    argv = ["import", "csv", str(csv), "--type", "Shop", "--db", str(tmp_path / "hub.db")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and "Traceback" not in err, err


@pytest.mark.parametrize("kind", ["csv", "geojson"])
def test_an_empty_id_prefix_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """--id-prefix '' was taken for "not given": the ids got the default prefix."""
    src = tmp_path / "in.csv"
    src.write_text("id,a\n1,2\n")
    db = tmp_path / "hub.db"
    extra = ["--type", "S"] if kind == "csv" else []
    with pytest.raises(SystemExit) as stop:
        main(["import", kind, str(src), *extra, "--db", str(db), "--id-prefix", ""])
    assert stop.value.code == 2
    assert "--id-prefix" in capsys.readouterr().err and not db.exists()


@pytest.mark.parametrize("stop", ["hub lost", "interrupted"])
def test_an_import_stopped_midway_says_how_many_entities_it_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stop: str
) -> None:
    """A hub lost mid-import exited 2 with only "cannot reach the hub", which reads as
    "nothing was written", though the chunks before were stored."""
    from cityhub.ingest.importers.records import ImportFailed
    from cityhub.ingest.importers.sinks import ChunkResult, HttpSink

    sent: list[int] = []

    def send(self: HttpSink, entities: list[Any]) -> ChunkResult:
        if sent:
            if stop == "interrupted":
                raise KeyboardInterrupt
            raise ImportFailed("cannot reach the hub at http://hub/: Server disconnected")
        sent.append(len(entities))
        return ChunkResult(created=len(entities))

    monkeypatch.setattr(HttpSink, "send", send)
    csv = write(tmp_path, SHOPS)
    argv = ["import", "csv", str(csv), "--type", "Shop", "--url", "http://hub:1026"]
    code = main([*argv, "--chunk-size", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code == (2 if stop == "hub lost" else 130), err
    assert "2 entities were stored before it stopped (2 created" in err, err
    assert "the same import run again finishes it" in err and "Traceback" not in err, err


def test_a_huge_line_is_read_in_bounded_memory_and_only_its_row_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 48 MiB line is rejected as one row without holding it: the cell limit applied only
    after the whole physical line was read and decoded (200 MB line: 471 MB peak RSS)."""
    db = tmp_path / "hub.db"
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.write(b"id,a\n1,ok\n2,")
        for _ in range(48):
            f.write(b"a" * (1 << 20))
        f.write(b"\n3,ok\n")
    tracemalloc.start()
    try:
        code = main(["import", "csv", str(path), "--type", "T", "--db", str(db), "--no-progress"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 1
    assert set(docs(db)) == {"urn:ngsi-ld:T:1", "urn:ngsi-ld:T:3"}
    assert "rejected line 3: Bad request data: a cell is longer than" in capsys.readouterr().err
    assert peak < 24 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_an_unreachable_context_is_one_line(tmp_path: Path, closed_url: str) -> None:
    """The hub's log warning reached stderr through Python's last-resort handler before the
    command's own line; run as a process, since pytest's log capture would hide it."""
    rows = tmp_path / "ok.csv"
    rows.write_text("id,x\n1,2\n")
    argv = ["import", "csv", str(rows), "--type", "X", "--db", str(tmp_path / "imp.db")]
    done = subprocess.run(
        [sys.executable, "-m", "cityhub.cli", *argv, "--context", closed_url, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"cityhub import: --context {closed_url}: @context {closed_url} is not reachable "
        "(ConnectError: "  # the particulars the log line had
    ), line

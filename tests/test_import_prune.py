"""Entities a re-imported file no longer gives (docs/decisions/064): listed after every import,
deleted with --prune, within the tenant and the file's types; for GTFS within the feed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import test_import_refresh as refresh
from test_import_refresh import Target, csv

hub = refresh.hub  # the module's served hub, and each test's --db or --url target
target = refresh.target


def stored(target: Target) -> set[str]:
    """The ids of every entity in the target's tenant."""
    with sqlite3.connect(target.db) as conn:
        rows = conn.execute("SELECT id FROM entities WHERE tenant = ?", (target.tenant,))
        return {eid for (eid,) in rows}


def report(capsys: pytest.CaptureFixture[str]) -> str:
    """Everything the import printed on stdout."""
    return capsys.readouterr().out


def test_stale_entities_are_listed_and_kept_without_prune(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert target.run("csv", csv(tmp_path, "id,name\nz1,A\nz2,B\nz3,C\n"), "--type", "Park") == 0
    assert target.run("csv", csv(tmp_path, "id,name\nq1,shop\n", "s.csv"), "--type", "Shop") == 0
    capsys.readouterr()
    fewer = csv(tmp_path, "id,name\nz1,A\nz2,B\n", "v2.csv")
    assert target.run("csv", fewer, "--type", "Park") == 0
    out = report(capsys)
    assert (
        "  stale: 1 stored entity the file no longer gives: urn:ngsi-ld:Park:z3; they stay "
        "stored (--prune deletes them)" in out
    )
    assert "urn:ngsi-ld:Park:z3" in stored(target)
    assert target.run("csv", fewer, "--type", "Park", "--prune") == 0
    out = report(capsys)
    assert "  pruned: 1 of 1 stored entity the file no longer gives: urn:ngsi-ld:Park:z3" in out
    assert stored(target) == {f"urn:ngsi-ld:Park:z{i}" for i in (1, 2)} | {"urn:ngsi-ld:Shop:q1"}
    assert target.run("csv", fewer, "--type", "Park", "--prune") == 0
    out = report(capsys)
    assert "  stale:" not in out and "  pruned:" not in out  # nothing left, nothing said


def test_prune_keeps_to_the_id_prefix(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two files of one type, told apart by --id-prefix, do not prune each other."""
    north = ["--type", "Park", "--id-prefix", "urn:ngsi-ld:Park:north:"]
    south = ["--type", "Park", "--id-prefix", "urn:ngsi-ld:Park:south:"]
    assert target.run("csv", csv(tmp_path, "id\n1\n2\n"), *north) == 0
    assert target.run("csv", csv(tmp_path, "id\n1\n", "s.csv"), *south) == 0
    capsys.readouterr()
    assert target.run("csv", csv(tmp_path, "id\n1\n", "n2.csv"), *north, "--prune") == 0
    assert "pruned: 1 of 1 stored entity the file no longer gives: urn:ngsi-ld:Park:north:2" in (
        report(capsys)
    )
    assert stored(target) == {"urn:ngsi-ld:Park:north:1", "urn:ngsi-ld:Park:south:1"}


def test_a_rejected_row_keeps_its_entity_and_one_without_an_id_holds_the_prune_back(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        target.run(
            "csv",
            csv(tmp_path, "id,lat,lon\nz1,1,2\nz2,1,2\nz3,1,2\n"),
            "--type",
            "Park",
            "--lat",
            "lat",
            "--lon",
            "lon",
        )
        == 0
    )
    capsys.readouterr()
    bad = csv(tmp_path, "id,lat,lon\nz1,1,2\nz2,95,2\n", "bad.csv")  # z2 rejected, z3 gone
    args = ["--type", "Park", "--lat", "lat", "--lon", "lon", "--prune"]
    assert target.run("csv", bad, *args) == 1
    assert "pruned: 1 of 1 stored entity the file no longer gives: urn:ngsi-ld:Park:z3" in report(
        capsys
    )
    assert stored(target) == {"urn:ngsi-ld:Park:z1", "urn:ngsi-ld:Park:z2"}
    unnamed = csv(tmp_path, "id,lat,lon\nz1,1,2\n,1,2\n", "unnamed.csv")  # which one?
    assert target.run("csv", unnamed, *args) == 1
    out = report(capsys)
    assert "nothing pruned: 1 rejected rows name no entity" in out
    assert stored(target) == {"urn:ngsi-ld:Park:z1", "urn:ngsi-ld:Park:z2"}


def feed(folder: Path, agency: str, trips: list[str], stops: list[str]) -> str:
    """A one-agency feed: route R<agency>, service W<agency>, one stop time per trip and stop."""
    folder.mkdir(parents=True)
    r, w = f"R{agency}", f"W{agency}"
    stop_rows = "".join(f"{s},Stop {s},-16.9,145.7\n" for s in stops)
    tables = {
        "agency.txt": f"agency_id,agency_name,agency_url,agency_timezone\n{agency},{agency} "
        f"bus,http://{agency}.example,Australia/Brisbane\n",
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
        f"start_date,end_date\n{w},1,1,1,1,1,0,0,20260101,20261231\n",
        "stops.txt": f"stop_id,stop_name,stop_lat,stop_lon\n{stop_rows}",
        "routes.txt": f"route_id,agency_id,route_short_name,route_type\n{r},{agency},1,3\n",
        "trips.txt": "route_id,service_id,trip_id\n" + "".join(f"{r},{w},{t}\n" for t in trips),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        + "".join(f"{t},08:00:00,08:00:00,{s},{i}\n" for t in trips for i, s in enumerate(stops)),
    }
    for name, text in tables.items():
        (folder / name).write_text(text)
    return str(folder)


def test_a_gtfs_prune_keeps_to_its_feed(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two feeds in one tenant: a trip and a stop the first no longer has are pruned with
    their stop times; nothing of the other feed is, nor a stop the other feed still uses."""
    assert target.run("gtfs", feed(tmp_path / "a1", "A", ["A1", "A2"], ["S1", "S2", "X"])) == 0
    assert target.run("gtfs", feed(tmp_path / "b1", "B", ["B1"], ["S3", "X"])) == 0
    before = stored(target)
    capsys.readouterr()
    assert target.run("gtfs", feed(tmp_path / "a2", "A", ["A1"], ["S1"]), "--prune") == 0
    out = report(capsys)
    gone = {
        "urn:ngsi-ld:GtfsTrip:A2",
        "urn:ngsi-ld:GtfsStop:S2",
        *(f"urn:ngsi-ld:GtfsStopTime:{t}:{i}" for t in ("A1", "A2") for i in (1, 2)),
        "urn:ngsi-ld:GtfsStopTime:A2:0",
    }
    assert f"pruned: {len(gone)} of {len(gone)} stored entities" in out
    assert stored(target) == before - gone  # stop X stays: feed B's stop time B1:1 uses it
    assert "urn:ngsi-ld:GtfsStop:X" in stored(target)


def agencies_feed(folder: Path, agencies: list[str], stops: tuple[str, ...] = ("S1",)) -> str:
    """A feed of several agencies, each with route R<a>, trip T<a> and one stop time a stop;
    the service W is the feed's, shared by all."""
    folder.mkdir(parents=True)
    tables = {
        "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\n"
        + "".join(f"{a},{a} lines,http://{a}.example,Europe/Paris\n" for a in agencies),
        "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,"
        "start_date,end_date\nW,1,1,1,1,1,0,0,20260101,20261231\n",
        "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n"
        + "".join(f"{s},Stop {s},48.8,2.3\n" for s in stops),
        "routes.txt": "route_id,agency_id,route_short_name,route_type\n"
        + "".join(f"R{a},{a},{a},3\n" for a in agencies),
        "trips.txt": "route_id,service_id,trip_id\n" + "".join(f"R{a},W,T{a}\n" for a in agencies),
        "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        + "".join(f"T{a},25:30:00,25:30:00,{stops[0]},1\n" for a in agencies),
    }
    for name, text in tables.items():
        (folder / name).write_text(text)
    return str(folder)


def test_a_gtfs_prune_deletes_an_agency_the_feed_dropped_and_what_hangs_off_it(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A feed of agencies A and B loses B: B, its route, trip and stop time were kept for
    ever and not even listed as stale (probe finding 3); now they are listed, and pruned
    with --prune, while another feed's agency Z in the tenant is not touched."""
    assert target.run("gtfs", agencies_feed(tmp_path / "v1", ["A", "B"])) == 0
    assert target.run("gtfs", agencies_feed(tmp_path / "z", ["Z", "Y"], ("S9",))) == 0
    before = stored(target)
    capsys.readouterr()
    v2 = agencies_feed(tmp_path / "v2", ["A"])
    assert target.run("gtfs", v2) == 0
    gone = {
        "urn:ngsi-ld:GtfsAgency:B",
        "urn:ngsi-ld:GtfsRoute:RB",
        "urn:ngsi-ld:GtfsTrip:TB",
        "urn:ngsi-ld:GtfsStopTime:TB:1",
    }
    out = report(capsys)
    assert "  stale: 4 stored entities the file no longer gives: " in out
    assert all(eid in out for eid in gone)
    assert stored(target) == before
    assert target.run("gtfs", v2, "--prune") == 0
    assert "  pruned: 4 of 4 stored entities the file no longer gives" in report(capsys)
    assert stored(target) == before - gone  # Z, Y and their route, trip, stop S9 stay

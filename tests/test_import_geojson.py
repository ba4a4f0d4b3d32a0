"""`cityhub import geojson`: features become entities with their geometry as location."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityhub.cli import main
from cityhub.ngsild.context import ContextCache
from cityhub.store.base import EntityQuery
from cityhub.store.sqlite import SqliteStore
from conftest import VOCAB, ContextServer, free_port
from test_serve import serving

CORE = ContextCache().core
VOCAB_DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
SQUARE = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]


def feature(fid: Any, geometry: Any, **props: Any) -> dict[str, Any]:
    """A GeoJSON Feature (fid None leaves the id out)."""
    out: dict[str, Any] = {"type": "Feature", "geometry": geometry, "properties": props}
    if fid is not None:
        out["id"] = fid
    return out


def write(tmp_path: Path, doc: Any) -> Path:
    """A GeoJSON file in the test's folder."""
    path = tmp_path / "data.geojson"
    path.write_text(json.dumps(doc))
    return path


def stored(db: Path) -> dict[str, dict[str, Any]]:
    """Every stored entity by id: types and attributes (default instance) by stored name."""
    store = SqliteStore(db)
    try:
        found, _ = store.query("", EntityQuery(limit=100_000))
    finally:
        store.close()
    return {d["id"]: {"type": d["type"], **{n: v[0] for n, v in d["attrs"].items()}} for d in found}


def summary(out: str) -> str:
    """The summary line on stdout."""
    return [line for line in out.splitlines() if line.startswith("cityhub import")][-1]


def test_a_feature_collection_becomes_entities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature("t1", {"type": "Point", "coordinates": [127.39, 35.41]}, species="oak", age=40),
            feature(None, {"type": "Polygon", "coordinates": SQUARE}, id=7, info={"a": [1, 2]}),
            feature("urn:ngsi-ld:Tree:kept", None, height=3.5, note=None),
        ],
    }
    db = tmp_path / "hub.db"
    path = write(tmp_path, doc)
    assert main(["import", "geojson", str(path), "--type", "Tree", "--db", str(db)]) == 0
    got = stored(db)
    assert set(got) == {"urn:ngsi-ld:Tree:t1", "urn:ngsi-ld:Tree:7", "urn:ngsi-ld:Tree:kept"}
    t1 = got["urn:ngsi-ld:Tree:t1"]
    assert t1["type"] == [CORE.expand("Tree")]
    assert t1[CORE.expand("location")]["type"] == "GeoProperty"
    assert t1[CORE.expand("location")]["value"] == {"type": "Point", "coordinates": [127.39, 35.41]}
    assert t1[CORE.expand("species")]["value"] == "oak"
    assert t1[CORE.expand("age")]["value"] == 40
    t7 = got["urn:ngsi-ld:Tree:7"]
    assert t7[CORE.expand("location")]["value"]["type"] == "Polygon"
    assert t7[CORE.expand("info")]["value"] == {"a": [1, 2]}  # nested objects stay values
    assert CORE.expand("id") not in t7  # properties.id is the id, not an attribute
    kept = got["urn:ngsi-ld:Tree:kept"]
    assert CORE.expand("location") not in kept and CORE.expand("note") not in kept
    out = capsys.readouterr()
    assert "3 created, 0 updated, 0 unchanged, 0 rejected" in summary(out.out)
    assert "100%" in out.err  # progress bar on stderr


def test_type_from_properties_and_a_single_feature(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    one = feature("b1", {"type": "Point", "coordinates": [1, 2]}, type="Bench", seats=4)
    assert main(["import", "geojson", str(write(tmp_path, one)), "--db", str(db)]) == 0
    got = stored(db)
    assert list(got) == ["urn:ngsi-ld:Bench:b1"]
    assert got["urn:ngsi-ld:Bench:b1"]["type"] == [CORE.expand("Bench")]
    assert CORE.expand("type") not in got["urn:ngsi-ld:Bench:b1"]


def test_bad_features_are_reported_by_index_and_the_rest_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    point = {"type": "Point", "coordinates": [1, 2]}
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature("ok1", point),
            feature(None, point, name="no id"),
            feature("bad-geo", {"type": "Point", "coordinates": [1]}),
            feature("bad-name", point, **{"@bad": 1}),
            "not a feature",
            feature("clash", point, location="here"),
            {"type": "Feature", "id": "list-props", "geometry": point, "properties": []},
            feature("ok2", point),
        ],
    }
    db = tmp_path / "hub.db"
    argv = ["import", "geojson", str(write(tmp_path, doc)), "--type", "Spot", "--db", str(db)]
    assert main([*argv, "--chunk-size", "3", "--no-progress"]) == 1
    assert set(stored(db)) == {"urn:ngsi-ld:Spot:ok1", "urn:ngsi-ld:Spot:ok2"}
    out = capsys.readouterr()
    assert "rejected features[1]: Bad request data: no entity id" in out.err
    assert (
        "rejected features[2] urn:ngsi-ld:Spot:bad-geo: Bad request data: attribute "
        "'location': invalid GeoJSON" in out.err
    )
    assert (
        "rejected features[3] urn:ngsi-ld:Spot:bad-name: Bad request data: property '@bad' "
        "cannot be an attribute name: names starting with '@' are JSON-LD keywords" in out.err
    )
    assert "rejected features[4]: Bad request data: not a GeoJSON Feature" in out.err
    assert (
        "rejected features[5] urn:ngsi-ld:Spot:clash: Bad request data: property 'location'"
        in out.err
    )
    assert "rejected features[6]: Bad request data: the feature's properties must be" in out.err
    assert "2 created, 0 updated, 0 unchanged, 6 rejected" in summary(out.out)


def test_reimport_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"type": "FeatureCollection", "features": [feature(i, None, n=i) for i in range(5)]}
    db = tmp_path / "hub.db"
    argv = ["import", "geojson", str(write(tmp_path, doc)), "--type", "X", "--db", str(db)]
    assert main([*argv, "--no-progress"]) == 0
    first = stored(db)
    assert main([*argv, "--no-progress"]) == 0
    assert "0 created, 0 updated, 5 unchanged, 0 rejected" in summary(capsys.readouterr().out)
    again = stored(db)
    assert {k: v[CORE.expand("n")]["value"] for k, v in again.items()} == {
        k: v[CORE.expand("n")]["value"] for k, v in first.items()
    }


def test_a_user_context_expands_names_into_its_vocabulary(
    tmp_path: Path, context_server: ContextServer
) -> None:
    doc = feature("r1", None, temperature=21.5, label="lab")
    db = tmp_path / "hub.db"
    ctx = context_server.url("/ctx/import.jsonld")
    argv = ["import", "geojson", str(write(tmp_path, doc)), "--type", "Room"]
    assert main([*argv, "--context", ctx, "--db", str(db), "--no-progress"]) == 0
    room = stored(db)["urn:ngsi-ld:Room:r1"]
    assert room["type"] == [VOCAB + "Room"]
    assert room[VOCAB + "temperature"]["value"] == 21.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        (
            '{"type": "Point", "coordinates": [1, 2]}',
            "holds no GeoJSON FeatureCollection or Feature",
        ),
        ("[]", "holds no GeoJSON FeatureCollection or Feature"),
    ],
)
def test_a_file_that_is_not_geojson_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    assert main(["import", "geojson", str(path), "--db", str(tmp_path / "hub.db")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_byte_order_mark_is_skipped_and_errors_after_it_keep_their_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows tools save UTF-8 with a byte-order mark: the file was refused whole, exit 2
    (probe finding 5), while `import csv` takes one."""
    db = tmp_path / "hub.db"
    collection = {"type": "FeatureCollection", "features": [feature("t1", None, height=4)]}
    path = tmp_path / "bom.geojson"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(collection).encode())
    argv = ["import", "geojson", str(path), "--type", "Tree", "--db", str(db), "--no-progress"]
    assert main(argv) == 0
    assert stored(db)["urn:ngsi-ld:Tree:t1"][VOCAB_DEFAULT + "height"]["value"] == 4
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(feature("t2", None)).encode())
    assert main(argv) == 0
    assert "urn:ngsi-ld:Tree:t2" in stored(db)
    path.write_bytes(b'\xef\xbb\xbf{"type": "FeatureCollection",\n "features": [}')
    assert main(argv) == 2
    assert "expected a value (line 2 column 15)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '{"type": "Feature", "id": 1, "geometry": null, "properties": {"n": "Caf\u00e9"}}'.encode(
                "cp1252"
            ),
            "is not UTF-8 text (line 1 column 62): GeoJSON is UTF-8 (RFC 7946); convert it",
        ),
        (
            b'{"type": "Feature", "id": 1, "geometry": null, "properties": {}}\n'
            b'{"type": "Feature", "id": 2, "geometry": null, "properties": {}}\n',
            "one GeoJSON text per line (a GeoJSON Text Sequence, RFC 8142)?",
        ),
    ],
)
def test_a_file_in_another_encoding_or_one_feature_per_line_is_told_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, message: str
) -> None:
    path = tmp_path / "odd.geojson"
    path.write_bytes(data)
    assert main(["import", "geojson", str(path), "--db", str(tmp_path / "hub.db")]) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_context_or_hub_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_url: str
) -> None:
    path = write(tmp_path, feature("a", None, n=1))
    argv = ["import", "geojson", str(path), "--type", "X", "--no-progress"]
    assert main([*argv, "--context", closed_url, "--db", str(tmp_path / "h.db")]) == 2
    assert "--context" in capsys.readouterr().err
    hub = closed_url.rsplit("/", 1)[0]
    assert main([*argv, "--url", hub]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the hub" in err and "Traceback" not in err


def test_property_names_are_renamed_as_csv_headers_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIS exports name fields "Floor Area (m2)"; the whole feature was rejected for it."""
    point = {"type": "Point", "coordinates": [1, 2]}
    doc = {
        "type": "FeatureCollection",
        "features": [
            feature("q1", point, **{"Floor Area (m2)": 3, "시설명": "공원"}),
            feature("q2", point, **{"a b": 1, "a_b": 2}),
            feature("q3", point, **{" location": 1}),
        ],
    }
    db = tmp_path / "hub.db"
    argv = ["import", "geojson", str(write(tmp_path, doc)), "--type", "Tree", "--db", str(db)]
    assert main([*argv, "--no-progress"]) == 1
    q1 = stored(db)["urn:ngsi-ld:Tree:q1"]
    assert q1[CORE.expand("Floor_Area_m2")]["value"] == 3
    assert q1[CORE.expand("시설명")]["value"] == "공원"
    err = capsys.readouterr().err
    assert "property 'Floor Area (m2)' becomes attribute 'Floor_Area_m2'" in err
    assert (
        "rejected features[1] urn:ngsi-ld:Tree:q2: Bad request data: property 'a_b' becomes "
        "attribute 'a_b', which property 'a b' gives" in err
    )
    assert "property ' location' becomes attribute 'location', which the feature's" in err


def _nested(levels: int) -> Any:
    """A value nesting arrays `levels` deep."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("sink", ["db", "url"])
def test_a_deeply_nested_property_rejects_its_row_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sink: str
) -> None:
    """Nesting past the API's bound (jsondepth.MAX_DEPTH) rejects the feature, the same over
    --db and --url: --url lost the whole chunk to the hub's 400, --db crashed past ~253
    levels and stored values nested deeper than the API accepts."""
    features = [
        feature(f"f{n}", {"type": "Point", "coordinates": [1.0, 2.0]}, a=n) for n in range(4)
    ]
    features[1]["properties"]["p"] = _nested(60)
    features[2]["properties"]["p"] = _nested(300)
    features.append(feature("ok45", {"type": "Point", "coordinates": [1.0, 2.0]}, p=_nested(45)))
    path = write(tmp_path, {"type": "FeatureCollection", "features": features})
    db = tmp_path / "hub.db"
    args = ["import", "geojson", str(path), "--type", "Geo", "--no-progress"]
    if sink == "db":
        code = main([*args, "--db", str(db)])
    else:
        with serving(db, free_port()) as url:
            code = main([*args, "--url", url])
    out = capsys.readouterr()
    assert code == 1, out.err
    assert "Traceback" not in out.err
    assert set(stored(db)) == {f"urn:ngsi-ld:Geo:{n}" for n in ("f0", "f3", "ok45")}
    assert out.err.count("deeper than") == 2, out.err
    assert "rejected features[1]" in out.err and "rejected features[2]" in out.err

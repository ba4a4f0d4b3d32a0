"""`cityhub import geojson` reads the file a block at a time, in bounded memory, with the
errors it gave when it parsed the file whole (a 105 MB file took 976 MB: probe 4, finding 4)."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from cityhub.cli import main
from cityhub.ingest.importers import geojsonfile, jsonitems
from cityhub.ingest.importers.geojsonfile import GeoJsonSource
from test_import_geojson import SQUARE, feature, stored

LINE = {"type": "LineString", "coordinates": [[i / 7, i / 9] for i in range(60)]}


def _collection(n: int) -> dict[str, Any]:
    points = [feature(f"f{i}", {"type": "Point", "coordinates": [i, 1]}, n=i) for i in range(n)]
    return {"type": "FeatureCollection", "features": points}


def _import(path: Path, db: Path, *extra: str) -> int:
    return main(["import", "geojson", str(path), "--type", "Spot", "--db", str(db), *extra])


def test_a_large_file_is_imported_in_bounded_memory(tmp_path: Path) -> None:
    """About 40 MB of features under a 160 MiB address-space limit: parsed whole, the file
    needed about nine times its size."""
    path = tmp_path / "big.geojson"
    one = orjson.dumps(feature("ID", LINE, name="a road", lanes=2, note="x" * 40))
    count = 0
    with path.open("wb") as out:
        out.write(b'{"type": "FeatureCollection", "features": [\n')
        while out.tell() < 40_000_000:
            out.write(b",\n" if count else b"")
            out.write(one.replace(b'"ID"', b'"r%d"' % count))
            count += 1
        out.write(b'\n], "name": "roads"}\n')
    script = textwrap.dedent(
        """
        import resource, sys
        from pathlib import Path
        limit = 160 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from cityhub.ingest.importers.geojsonfile import GeoJsonSource
        source = GeoJsonSource(Path(sys.argv[1]), "Road")
        ids = [r.entity["id"] for r in source if r.entity is not None]
        print(source.estimate(), len(ids), len(set(ids)), ids[-1])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(count)] * 3 + [f"urn:ngsi-ld:Road:r{count - 1}"]


DOCS = [
    _collection(5),
    {
        "features": [
            feature("a", {"type": "Polygon", "coordinates": SQUARE}, s='x"]}{[,\\'),
            feature("b", None, nested={"deep": [[[[{"k": "\\\\"}]]]]}, u="\u00e9\u4e2d\U0001f600"),
            feature("c", LINE, empty={}, list=[]),
        ],
        "type": "FeatureCollection",
    },
]


@pytest.mark.parametrize("block", [1, 2, 7, 1 << 20])
@pytest.mark.parametrize("indent", [False, True])
@pytest.mark.parametrize("doc", DOCS, ids=["points", "awkward"])
def test_features_are_the_parsed_files_wherever_the_blocks_end(
    monkeypatch: pytest.MonkeyPatch, block: int, indent: bool, doc: dict[str, Any]
) -> None:
    """Strings holding brackets, quotes and escapes, deep nesting, indentation and any block
    boundary split the file where orjson would."""
    monkeypatch.setattr(jsonitems, "BLOCK", block)
    raw = orjson.dumps(doc, option=orjson.OPT_INDENT_2 if indent else 0)
    parts = list(jsonitems.members(io.BytesIO(raw), "features", 1 << 20))
    found = parts.pop()
    assert isinstance(found, jsonitems.Members)
    assert [orjson.loads(p.raw) for p in parts if isinstance(p, jsonitems.Item) and p.raw] == (
        doc["features"]
    )
    assert found.values == {"type": "FeatureCollection"}
    again = jsonitems.items(io.BytesIO(raw), found.array_at or 0, 1 << 20)
    assert [orjson.loads(item.raw or b"") for item in again] == doc["features"]


def _truncated(tmp_path: Path) -> Path:
    raw = orjson.dumps(_collection(50))
    path = tmp_path / "cut.geojson"
    path.write_bytes(raw[: len(raw) * 2 // 3])
    return path


def _bad_json_inside(tmp_path: Path) -> Path:
    raw = orjson.dumps(_collection(50)).replace(b'"n":25', b'"n":tru', 1)
    path = tmp_path / "bad.geojson"
    path.write_bytes(raw)
    return path


def _not_a_collection(tmp_path: Path) -> Path:
    path = tmp_path / "other.geojson"
    path.write_bytes(orjson.dumps({**_collection(3), "type": "GeometryCollection"}))
    return path


def _trailing(tmp_path: Path) -> Path:
    path = tmp_path / "trailing.geojson"
    path.write_bytes(orjson.dumps(_collection(3)) + b"\n{}")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated, "is not valid JSON: a string is never closed (the file ends inside it)"),
        (_bad_json_inside, "is not valid JSON: invalid literal, expected 'true' (line 1 "),
        (_not_a_collection, "holds no GeoJSON FeatureCollection or Feature"),
        (_trailing, "is not valid JSON: data after the end of the document (line 2 column 1)"),
    ],
    ids=["truncated", "bad-json-inside", "not-a-collection", "trailing-data"],
)
def test_a_malformed_file_stores_nothing_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    """As when the file was parsed whole: the whole file is checked before anything is
    written, so a file cut short or broken in its middle leaves the database as it was."""
    db = tmp_path / "hub.db"
    assert _import(make(tmp_path), db) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert stored(db) == {}


def test_a_feature_over_the_bound_is_rejected_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(geojsonfile, "MAX_FEATURE_BYTES", 1000)
    doc = _collection(4)
    doc["features"][2] = feature("big", LINE, n=2)  # 60 positions: over 1,000 bytes
    path = tmp_path / "data.geojson"
    path.write_bytes(orjson.dumps(doc))
    db = tmp_path / "hub.db"
    assert _import(path, db, "--no-progress") == 1
    err = capsys.readouterr().err
    assert "rejected features[2]: Bad request data: the feature is larger than" in err
    assert sorted(stored(db)) == [f"urn:ngsi-ld:Spot:f{i}" for i in (0, 1, 3)]


def test_members_may_come_in_any_order(tmp_path: Path) -> None:
    """`type` after `features`, foreign members around them: still a FeatureCollection."""
    raw = orjson.dumps(_collection(3))
    body = raw[raw.index(b'"features"') : -1]
    path = tmp_path / "late.geojson"
    path.write_bytes(
        b'{"name": "x", "bbox": [0, 0, 1, 1], ' + body + b', "type": "FeatureCollection"}'
    )
    source = GeoJsonSource(path, "Spot")
    assert source.estimate() == 3
    assert [r.entity["id"] for r in source if r.entity] == [
        f"urn:ngsi-ld:Spot:f{i}" for i in range(3)
    ]

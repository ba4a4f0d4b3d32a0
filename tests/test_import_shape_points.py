"""shapes.txt points kept in the import's ledger, packed a run of one shape per row (decision
092): each shape comes back whole, in file order, with its blank distances, however its
points were interleaved with other shapes' or however many there were."""

from __future__ import annotations

from cityhub.ingest.importers.ledger import RUN, Point, ShapePoints


def test_points_come_back_per_shape_in_file_order() -> None:
    shapes = ShapePoints()
    given: dict[str, list[Point]] = {"a": [], "b": []}
    rows = [("a", (1, 1.5, 2.5, 0.0)), ("b", (1, 3.0, 4.0, None)), ("a", (1, 9.0, 9.0, None))]
    rows += [("b", (i, float(i), -float(i), i * 0.5)) for i in range(2, RUN + 10)]
    rows += [("a", (0, -1.25, 0.125, 7.0))]
    for line, (sid, point) in enumerate(rows, start=2):
        shapes.first(sid, line)
        shapes.add(sid, point)
        given[sid].append(point)
    shapes.bad("b", "line 9: shape_pt_lat 'x' is not a number")
    out = [(sid, line, bad, points) for sid, line, bad, points in shapes.shapes()]
    shapes.close()
    assert [(sid, line, bad) for sid, line, bad, _ in out] == [
        ("a", 2, None),
        ("b", 3, "line 9: shape_pt_lat 'x' is not a number"),
    ]
    assert out[0][3] == given["a"]  # a tie in sequence (1, 1) keeps its file order
    assert out[1][3] == given["b"]  # past one packed run, a blank distance still None
    assert all(type(p[0]) is int for p in out[1][3])

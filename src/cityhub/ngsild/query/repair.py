"""Polygons checked and made valid at a bounded cost. GEOS's validity check grows with the
pairs of ring edges that lie near each other (a valid 10,000-vertex zigzag took 4 s), its
repair with the crossings (a few hundred vertices that all cross took minutes and gigabytes),
and both hold up the hub's other threads meanwhile: what they face is counted first, with an
R-tree and numpy, and a geometry past the bounds is refused before GEOS sees it."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

# Edge crossings a repair may face: GEOS's "structure" repair of 10,000 takes ~0.1 s, and a
# real boundary with a few self-touching rings has a handful.
MAX_CROSSINGS = 10_000
# Pairs of ring edges whose bounding boxes overlap that a validity check may face: GEOS spends
# ~0.2-0.4 µs on each, so ~40 ms here. A jagged 10,000-vertex boundary has ~40,000 pairs.
MAX_NEAR_PAIRS = 100_000
# Ring vertices up to which a polygon is checked directly and its verdict not kept: it has at
# most 400²/2 = 80,000 near pairs (GEOS's check ≤ ~10 ms), and hashing its text to look the
# verdict up costs about as much as checking it again.
SMALL = 400
_VALID = "Valid Geometry"


class Unusable(ValueError):
    """A geometry too costly to check or to repair, or one its repair leaves empty."""


@dataclass(frozen=True, slots=True)
class Tangle:
    """Pairs of ring edges (next neighbours left out) whose boxes overlap, and how many of them
    touch or cross; both counted until the pairs pass the limit the count was made with."""

    near_pairs: int
    crossings: int


_RINGLESS = frozenset(("Point", "MultiPoint", "LineString", "MultiLineString"))


def ring_vertices(geom: BaseGeometry) -> int:
    """Vertices of the rings of a geometry's polygons (0 for points and lines, told without
    taking the geometry apart: a geoQ's Point was, for each stored subscription at start-up)."""
    if geom.geom_type in _RINGLESS:
        return 0
    return int(shapely.get_num_coordinates(shapely.get_rings(shapely.get_parts(geom))).sum())


def _orientation(o: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle (o, u, v): which side of o→u each v lies on."""
    return (u[:, 0] - o[:, 0]) * (v[:, 1] - o[:, 1]) - (u[:, 1] - o[:, 1]) * (v[:, 0] - o[:, 0])


def tangle(geom: BaseGeometry, max_pairs: int = MAX_NEAR_PAIRS, crossings: bool = True) -> Tangle:
    """How tangled the rings of a geometry's polygons are, at a cost bounded by `max_pairs`
    (crossings counted only when asked for: 0 otherwise).

    An R-tree gives each edge's near pairs a few edges at a time (fewer when they are many,
    so one query stays small); a vectorised orientation test tells which of them touch.
    """
    rings = shapely.get_rings(shapely.get_parts(geom))
    if not len(rings):
        return Tangle(0, 0)
    xy = [shapely.get_coordinates(ring) for ring in rings]
    segments = np.concatenate([np.stack([c[:-1], c[1:]], axis=1) for c in xy])
    start, end = segments[:, 0], segments[:, 1]
    lines = shapely.linestrings(segments)
    tree = shapely.STRtree(lines)
    pairs = touching = lo = 0
    chunk = 16
    while lo < len(lines):
        left, right = tree.query(lines[lo : lo + chunk])
        left += lo
        keep = right > left + 1
        i, j = left[keep], right[keep]
        pairs += len(i)
        if pairs > max_pairs:
            break
        if crossings:
            a0, a1, b0, b1 = start[i], end[i], start[j], end[j]
            touch = (_orientation(b0, b1, a0) * _orientation(b0, b1, a1) <= 0) & (
                _orientation(a0, a1, b0) * _orientation(a0, a1, b1) <= 0
            )
            touching += int(np.count_nonzero(touch))
        lo += chunk
        chunk = min(4096, chunk * 2) if len(i) < 2048 else max(1, chunk // 2)
    return Tangle(pairs, touching)


def checkable(geom: BaseGeometry) -> None:
    """Unusable when GEOS's validity check of the geometry would cost too much: one of more
    than SMALL ring vertices whose edges have too many near pairs."""
    if ring_vertices(geom) > SMALL and tangle(geom, crossings=False).near_pairs > MAX_NEAR_PAIRS:
        raise Unusable(
            f"too intricate to check: more than {MAX_NEAR_PAIRS:,} pairs of its edges lie within "
            "each other's bounding box (a jagged 10,000-vertex boundary has about 40,000): "
            "simplify it"
        )


def usable(geom: BaseGeometry) -> BaseGeometry:
    """The geometry itself when valid, else its repair; Unusable when checking or repairing it
    would cost too much, or the repair leaves nothing. Cheap checks come first."""
    checkable(geom)
    reason = shapely.is_valid_reason(geom)
    if reason == _VALID:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon", "GeometryCollection"):
        counted = tangle(geom)
        if counted.near_pairs > MAX_NEAR_PAIRS or counted.crossings > MAX_CROSSINGS:
            raise Unusable(
                f"{reason}; its rings cross at more than {MAX_CROSSINGS:,} points, too many "
                f"to repair: send a valid {geom.geom_type}"
            )
    try:
        fixed = shapely.make_valid(geom, method="structure")
    except shapely.errors.GEOSException:  # e.g. out of memory
        raise Unusable(
            f"{reason}; it could not be repaired: send a valid {geom.geom_type}"
        ) from None
    if fixed.is_empty:
        raise Unusable(reason)
    return fixed


def made_valid(geom: BaseGeometry) -> BaseGeometry | None:
    """usable(geom), or None for a geometry that is not."""
    try:
        return usable(geom)
    except Unusable:
        return None


class _Kept:
    """A least-recently-used map shared by the reader threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> object:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: bytes, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# The verdict on each large stored geometry seen (16-byte key: 65,536 cost ~10 MB), and the
# repairs of the invalid ones (each up to ~0.5 MB, hence fewer).
_REPAIRED, _UNUSABLE = "repaired", "unusable"
_verdicts = _Kept(65_536)
_repairs = _Kept(256)


def stored_usable(geom: BaseGeometry, text: bytes) -> BaseGeometry | None:
    """made_valid of a stored geometry whose JSON is `text`: the verdict on a large one is kept,
    so a query over many rows, or a geoQ subscription on each write, checks it once."""
    if ring_vertices(geom) <= SMALL:
        return made_valid(geom)
    key = hashlib.blake2b(text, digest_size=16).digest()
    verdict = _verdicts.get(key)
    if verdict == _VALID:
        return geom
    if verdict == _UNUSABLE:
        return None
    if verdict == _REPAIRED:
        kept = _repairs.get(key)
        if isinstance(kept, BaseGeometry):
            return kept
    fixed = made_valid(geom)
    if fixed is None:
        _verdicts.put(key, _UNUSABLE)
    elif fixed is geom:
        _verdicts.put(key, _VALID)
    else:
        _verdicts.put(key, _REPAIRED)
        _repairs.put(key, fixed)
    return fixed


__all__ = [
    "MAX_CROSSINGS",
    "MAX_NEAR_PAIRS",
    "SMALL",
    "Tangle",
    "Unusable",
    "checkable",
    "made_valid",
    "ring_vertices",
    "stored_usable",
    "tangle",
    "usable",
]

"""Linked entity retrieval (join=inline|flat, joinLevel): follow Relationships to their targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cityhub.ngsild.context import TermMap
from cityhub.ngsild.errors import BadRequestData
from cityhub.ngsild.projection import Projection
from cityhub.ngsild.render import RenderOptions, of_datasets, render_entity

Fetch = Callable[[list[str]], dict[str, dict[str, Any]]]
ENTITY_FIELDS = ("id", "type", "scope", "createdAt", "modifiedAt", "deletedAt")
MAX_LINKED = 10_000  # linked entities one answer may render (a join's fan-out grows fast)
# hops a join follows at most, in queries and in notifications alike (deeper ones recursed
# past Python's stack and dropped the notification)
MAX_JOIN_LEVEL = 16


def projection_options(
    base: RenderOptions, tm: TermMap, pick: Projection | None, omit: Projection | None
) -> RenderOptions:
    """RenderOptions for one level of a pick/omit tree."""
    opts = base
    if pick is not None:
        opts = replace(
            opts,
            pick=frozenset(tm.expand(n) for n in pick if n not in ENTITY_FIELDS),
            pick_fields=frozenset(n for n in pick if n in ENTITY_FIELDS),
        )
    if omit is not None:
        leaf = [n for n, sub in omit.items() if sub is None]
        opts = replace(
            opts, omit=frozenset(n if n in ENTITY_FIELDS else tm.expand(n) for n in leaf)
        )
    return opts


def _objects(instances: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for inst in instances:
        if inst["type"] == "Relationship":
            obj = inst["object"]
            out += obj if isinstance(obj, list) else [obj]
        elif inst["type"] == "ListRelationship":
            out += inst["objectList"]
    return out


class TooManyLinked(BadRequestData):
    """A join that would render more linked entities than one answer may hold."""


@dataclass
class _Walk:
    """What one answer's join has rendered so far: its budget, and (flat) the entities it
    has followed, with the levels left when it did."""

    fetch: Fetch
    left: int
    followed: dict[str, int] = field(default_factory=dict)

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise TooManyLinked(
                f"the join would render more than {MAX_LINKED:,} linked entities; "
                "ask for a lower joinLevel or fewer attributes"
            )


def render_joined(
    docs: list[dict[str, Any]],
    tm: TermMap,
    base: RenderOptions,
    pick: Projection | None,
    omit: Projection | None,
    join: str | None,
    level: int,
    fetch: Fetch,
    walk: _Walk | None = None,
    path: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Render entities; inline puts targets under each Relationship, flat returns them aside.

    Relationships that loop back are not followed again: inline stops at an entity already
    on the path from the top, and flat follows each entity once (with the most levels left).
    Before, three entities linked to each other took 15 s and 75 MB at joinLevel 12, and
    every level tripled it. TooManyLinked past MAX_LINKED renders. `walk` and `path` carry
    that state down the levels.
    """
    walk = walk or _Walk(fetch, MAX_LINKED)
    opts = projection_options(base, tm, pick, omit)
    rendered = [render_entity(d, tm, opts) for d in docs]
    if not join or level <= 0:
        return rendered, []
    extra: list[dict[str, Any]] = []
    linked_base = replace(base, dataset_ids=None)  # datasetId picks the asked entity's instances
    for doc, out in zip(docs, rendered, strict=True):
        here = path | {doc["id"]}
        for iri, instances in doc["attrs"].items():
            name = tm.compact(iri)
            chosen = (
                instances if opts.dataset_ids is None else of_datasets(instances, opts.dataset_ids)
            )
            targets = list(dict.fromkeys(_objects(chosen)))  # only the instances shown
            if join == "flat":  # listed once: only what was not followed as deep yet
                targets = [t for t in targets if walk.followed.get(t, -1) < level - 1]
                walk.followed.update((t, level - 1) for t in targets)
            if not targets or name not in out:
                continue
            found = walk.fetch(targets)
            linked_docs = [found[t] for t in targets if t in found]
            walk.spend(len(linked_docs))
            sub_pick = pick.get(name) if pick else None
            sub_omit = omit.get(name) if omit else None
            by_id: dict[str, dict[str, Any]] = {}
            beyond: list[dict[str, Any]] = []
            for on_path in (False, True):  # an entity on the path is shown, not followed
                part = [d for d in linked_docs if (d["id"] in here) is on_path]
                deeper_level = 0 if on_path else level - 1
                linked, deeper = render_joined(
                    part, tm, linked_base, sub_pick, sub_omit, join, deeper_level, fetch, walk, here
                )
                # keyed by the stored id: a pick without id must not lose the linked entity
                by_id.update((d["id"], e) for d, e in zip(part, linked, strict=True))
                beyond += deeper
            by_id = {d["id"]: by_id[d["id"]] for d in linked_docs}
            if join == "flat":  # a flat list names each entity, whatever the pick
                extra += [e if "id" in e else {"id": i, **e} for i, e in by_id.items()] + beyond
            else:
                _inline(out, name, by_id, base.format)
    return rendered, extra


def _inline(out: dict[str, Any], name: str, by_id: dict[str, dict[str, Any]], fmt: str) -> None:
    """Put linked entities inside the Relationship that names them."""
    if not by_id:
        return
    value = out[name]
    if fmt == "keyValues":
        several = value.get("dataset") if isinstance(value, dict) else None
        if isinstance(several, dict) and value.keys() == {"dataset"}:  # one per datasetId
            out[name] = {"dataset": {ds: _linked(v, by_id) for ds, v in several.items()}}
        else:
            out[name] = _linked(value, by_id)
        return
    for inst in value if isinstance(value, list) else [value]:
        if not isinstance(inst, dict):
            continue
        obj = inst.get("object", inst.get("objectList"))
        items = obj if isinstance(obj, list) else [obj]
        # a ListRelationship renders its objectList as [{"object": id}, ...]
        ids = [o.get("object") if isinstance(o, dict) else o for o in items]
        hits = [by_id[i] for i in ids if isinstance(i, str) and i in by_id]
        if hits:
            inst["entity"] = hits if len(hits) > 1 or isinstance(obj, list) else hits[0]


def _linked(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    """A keyValues object (an id, or a list of them) with the linked entities in place."""
    if isinstance(value, list):
        return [by_id.get(i, i) if isinstance(i, str) else i for i in value]
    return by_id.get(value, value) if isinstance(value, str) else value


def listed_once(pairs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Flat results list every entity once; each rendering keeps the id it is stored under
    (GeoJSON reads geometries by it), and one whose id a pick hides is never a repeat."""
    seen: set[str] = set()
    out = []
    for stored_id, entity in pairs:
        shown = entity.get("id")
        if shown is not None:
            if shown in seen:
                continue
            seen.add(shown)
        out.append((stored_id, entity))
    return out

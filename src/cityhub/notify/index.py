"""Which subscriptions a change can concern, without testing every one of them: by entity id,
by entity type (an id pattern is tested after, by matching), by watched attribute within
those, and a short list of the rest (no EntitySelector). Kept up to date one subscription at
a time, so creating the 10,000th costs what creating the first did."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from cityhub.ngsild.query import ast
from cityhub.notify.subscription import Compiled

Key = tuple[str, str]  # ("id" | "type" | "scan", value)
SCAN: Key = ("scan", "")


class _Everything(Collection[str]):
    """Every attribute name (a change whose changed attributes were not said)."""

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 1 << 30


_ALL = _Everything()


ENTITY_TRIGGERS = frozenset({"entityCreated", "entityDeleted"})


class Bucket:
    """The subscriptions under one key: those that watch every attribute, and those with
    watchedAttributes by attribute (a change concerns them only through a watched one,
    unless they ask for entityCreated or entityDeleted, which fire whatever the attributes)."""

    __slots__ = ("every", "plain", "watching", "wholes")

    def __init__(self) -> None:
        self.every: dict[str, Compiled] = {}  # by subscription id, all of them
        self.plain: dict[str, Compiled] = {}  # no watchedAttributes
        self.wholes: dict[str, Compiled] = {}  # watchedAttributes and an entity trigger
        self.watching: dict[str, dict[str, Compiled]] = {}  # attribute IRI -> id -> sub

    def add(self, sub: Compiled) -> None:
        self.every[sub.id] = sub
        if sub.watched is None:
            self.plain[sub.id] = sub
            return
        if not sub.triggers.isdisjoint(ENTITY_TRIGGERS):
            self.wholes[sub.id] = sub
        for name in sub.watched:
            self.watching.setdefault(name, {})[sub.id] = sub

    def remove(self, sub: Compiled) -> None:
        self.every.pop(sub.id, None)
        if sub.watched is None:
            self.plain.pop(sub.id, None)
            return
        self.wholes.pop(sub.id, None)
        for name in sub.watched:
            subs = self.watching.get(name)
            if subs is not None:
                subs.pop(sub.id, None)
                if not subs:
                    del self.watching[name]

    def into(self, found: dict[str, Compiled], names: Collection[str], update: bool) -> None:
        """Add the subscriptions a change may notify: those watching every attribute, those
        watching one of names (of an update, the attributes it changed; else the entity's),
        and, unless it is an update, those asking for an entity trigger."""
        if not self.watching:
            found.update(self.every)
            return
        found.update(self.plain)
        if not update:
            found.update(self.wholes)
        watching = self.watching
        if len(names) <= len(watching):
            for name in names:
                subs = watching.get(name)
                if subs is not None:
                    found.update(subs)
        else:
            for name, subs in watching.items():
                if name in names:
                    found.update(subs)


def type_keys(node: ast.TypeNode) -> set[str] | None:
    """Type names one of which every entity a type selection selects has (None: none such
    set, the selection is not indexable): A|B under both, A;B under A."""
    if isinstance(node, ast.TypeName):
        return {node.name}
    if isinstance(node, ast.TypeOr):
        out: set[str] = set()
        for item in node.items:
            keys = type_keys(item)
            if keys is None:
                return None
            out |= keys
        return out
    if isinstance(node, ast.TypeAnd):
        options = [k for k in map(type_keys, node.items) if k is not None]
        return min(options, key=len) if options else None
    return None


def keys_of(sub: Compiled) -> set[Key]:
    """The keys a subscription is filed under: each selector's id, else its types (its
    idPattern is tested by matching); without selectors (or an unindexable one), SCAN."""
    keys: set[Key] = set()
    for sel in sub.selectors:
        if sel.id is not None:
            keys.add(("id", sel.id))
            continue
        names = type_keys(sel.types)
        if names is None:
            return {SCAN}
        keys.update(("type", name) for name in names)
    return keys or {SCAN}


class SubscriptionIndex:
    """The change-driven subscriptions of one tenant, looked up by what an entity is."""

    def __init__(self, subs: Iterable[Compiled] = ()) -> None:
        self.by_id: dict[str, Bucket] = {}
        self.by_type: dict[str, Bucket] = {}
        self.scan = Bucket()
        self._keys: dict[str, tuple[Compiled, set[Key]]] = {}  # sub id -> (sub, its keys)
        for sub in subs:
            self.add(sub)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def _bucket(self, key: Key, make: bool) -> Bucket | None:
        kind, value = key
        if kind == "scan":
            return self.scan
        table = self.by_id if kind == "id" else self.by_type
        bucket = table.get(value)
        if bucket is None and make:
            bucket = table[value] = Bucket()
        return bucket

    def add(self, sub: Compiled) -> None:
        """File a subscription (in place of the one of its id, if any)."""
        self.remove(sub.id)
        keys = keys_of(sub)
        self._keys[sub.id] = (sub, keys)
        for key in keys:
            bucket = self._bucket(key, make=True)
            assert bucket is not None
            bucket.add(sub)

    def remove(self, sid: str) -> None:
        """Forget a subscription (no-op when it is not filed)."""
        filed = self._keys.pop(sid, None)
        if filed is None:
            return
        sub, keys = filed
        for key in keys:
            bucket = self._bucket(key, make=False)
            if bucket is None:
                continue
            bucket.remove(sub)
            if not bucket.every and key != SCAN:
                del (self.by_id if key[0] == "id" else self.by_type)[key[1]]

    def may_concern(self, eid: str, types: frozenset[str]) -> bool:
        """Whether any subscription may select an entity with this id and these types:
        False spares parsing the documents of a change no subscription is about."""
        return (
            bool(self.scan.every) or eid in self.by_id or not self.by_type.keys().isdisjoint(types)
        )

    def candidates(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        changed: Collection[str] | None = None,
    ) -> list[Compiled]:
        """Subscriptions that may be notified of a change from before to after (None: the
        entity is absent), each once; changed: of an update, the attributes it changed (a
        subscription watching none of them is left out; None: any may have)."""
        names: Collection[str]
        if before is not None and after is not None:
            update, names = True, changed if changed is not None else _ALL
        elif after is not None or before is not None:
            doc = after if after is not None else before
            assert doc is not None
            update, names = False, (doc.get("attrs") or {}).keys()
        else:
            return []
        found: dict[str, Compiled] = {}
        for doc in (before, after):
            if doc is None:
                continue
            bucket = self.by_id.get(doc["id"])
            if bucket is not None:
                bucket.into(found, names, update)
            for typ in doc["type"]:
                bucket = self.by_type.get(typ)
                if bucket is not None:
                    bucket.into(found, names, update)
        self.scan.into(found, names, update)
        return list(found.values())

    def weight(self, eid: str | None, types: Iterable[str] | None) -> int:
        """At most how many subscriptions a change of an entity with this id and these types
        (None: not known) is matched against, to size batch slices by matching work."""
        n = len(self.scan.every)
        if eid is not None and eid in self.by_id:
            n += len(self.by_id[eid].every)
        if types is None:
            return n + max((len(b.every) for b in self.by_type.values()), default=0)
        for typ in types:
            bucket = self.by_type.get(typ)
            if bucket is not None:
                n += len(bucket.every)
        return n

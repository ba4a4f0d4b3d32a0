"""The total bound on the outbox on disk (decision 090): past it, the oldest rows on disk of
the largest backlogs are given up, so dead receivers cannot fill the disk and stop every
write of the hub, while smaller (live, or briefly down) backlogs keep theirs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]  # (tenant, subscription id)


@dataclass(frozen=True)
class DiskBacklog:
    """How a dispatcher measures the outbox on disk: its rows over all subscriptions, a
    subscription's rows from a seq on, and the seq of its n-th row from a seq on."""

    total: Callable[[], int]
    on_disk: Callable[[str, str, int], int]
    nth: Callable[[str, str, int, int], int]


def disk_of(store: Any) -> DiskBacklog | None:
    """The store's outbox measures (None for a store without an outbox)."""
    if not all(hasattr(store, n) for n in ("outbox_backlog", "outbox_on_disk", "outbox_nth")):
        return None
    return DiskBacklog(
        total=lambda: int(store.outbox_backlog()[0]),
        on_disk=lambda tenant, sub_id, since: int(store.outbox_on_disk(tenant, sub_id, since)),
        nth=lambda tenant, sub_id, since, n: int(store.outbox_nth(tenant, sub_id, since, n)),
    )


def levelled(sizes: dict[Key, int], excess: int) -> dict[Key, int]:
    """How many rows each backlog gives up so that together they give up excess: the largest
    are cut down to one level, the highest that frees enough (all of them if even level 0
    does not), so a dead receiver's backlog goes before a smaller one loses anything."""
    if excess <= 0 or not sizes:
        return {}
    low, high = 0, max(sizes.values())  # the level freeing enough lies in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        if sum(max(0, s - mid) for s in sizes.values()) >= excess:
            low = mid
        else:
            high = mid - 1
    cuts = {k: s - low for k, s in sizes.items() if s > low}
    over = sum(cuts.values()) - excess  # a level frees whole rows per backlog: give some back
    for key in sorted(cuts, key=lambda k: sizes[k]):
        if over <= 0:
            break
        back = min(over, cuts[key] - 1) if cuts[key] > 1 else 0
        cuts[key] -= back
        over -= back
    return cuts


__all__ = ["DiskBacklog", "disk_of", "levelled"]

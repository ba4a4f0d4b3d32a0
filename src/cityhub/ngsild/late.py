"""Late readings: instances observed before the ones an entity holds go to its history only.

A device that sends its buffer newest first, or a message the network held back, must not
move an entity's state back in time nor reach subscribers as news (docs/decisions/080);
`cityhub import` keeps a file's late rows out of the current state alike (decision 063).
"""

from __future__ import annotations

from cityhub.ngsild.entity import Attrs
from cityhub.ngsild.merge import find
from cityhub.ngsild.timeutil import parse_ts


def _before(at: str, held: str) -> bool:
    """Whether time `at` is earlier than `held`. Stored times keep the text a client gave, so
    they are compared as times; two in the hub's own format (the agent's, format_ts) sort as
    strings, which spares the parse on every reading of a device (both in UTC: a 27-character
    time with an offset, `10:00:00.1+02:00`, sorts by its local hour)."""
    if (
        len(at) == len(held) == 27
        and at[26] == held[26] == "Z"
        and at[19] == held[19] == "."
        and at[10] == held[10] == "T"
    ):
        return at < held
    return parse_ts(at).timestamp() < parse_ts(held).timestamp()


def split_late(current: Attrs, incoming: Attrs) -> Attrs:
    """Take out of `incoming` (expanded attributes) each instance observed before the current
    instance of its attribute and datasetId, and return them by attribute. An instance at the
    same time, or without observedAt on either side, is no late one: it replaces as usual."""
    late: Attrs = {}
    for name in list(incoming):
        held = current.get(name)
        if not held:
            continue
        keep = []
        for inst in incoming[name]:
            at = inst.get("observedAt") if not inst.get("null") else None
            i = find(held, inst.get("datasetId")) if isinstance(at, str) else None
            latest = held[i].get("observedAt") if i is not None else None
            if isinstance(at, str) and isinstance(latest, str) and _before(at, latest):
                late.setdefault(name, []).append(inst)
            else:
                keep.append(inst)
        if keep:
            incoming[name] = keep
        else:
            del incoming[name]
    return late

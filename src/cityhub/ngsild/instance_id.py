"""instanceIds for temporal attribute instances: unique without a uuid4 per instance, and
naming the time their history row is indexed at, so that a PATCH or DELETE of one instance
finds its row with one index seek (decision 060)."""

from __future__ import annotations

import itertools
import re
import struct
import uuid

_PREFIX = f"urn:ngsi-ld:attribute:instance:{uuid.uuid4().hex[:12]}-"
_seq = itertools.count(1)
_BITS = struct.Struct(">d")
# an id this module made since schema 16: the time as the 16 hex digits of its double
_TIMED = re.compile(r"urn:ngsi-ld:attribute:instance:[0-9a-f]{12}-[0-9a-f]+-t([0-9a-f]{16})")


def new_instance_id(at: float) -> str:
    """A fresh instanceId: a random per-process prefix, a counter (which alone keeps one
    process's ids apart; uuid4 costs 3 µs) and `at`, the instance's time on the observedAt
    axis (history.t_observed) as written, exactly: the bits of the double, not a decimal."""
    return f"{_PREFIX}{next(_seq):x}-t{_BITS.pack(at).hex()}"


def time_of(instance_id: str) -> float | None:
    """The observedAt-axis time an instanceId was made with (None: an id from before schema
    16, or not the hub's)."""
    m = _TIMED.fullmatch(instance_id)
    return None if m is None else float(_BITS.unpack(bytes.fromhex(m[1]))[0])

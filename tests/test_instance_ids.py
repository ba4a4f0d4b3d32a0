"""instanceIds: unique in a process whether made one at a time or many for one write, and of
one form (a per-process prefix, the time, a counter), an absolute URI."""

from __future__ import annotations

import itertools
import re

from cityhub.ngsild.entity import check_uri
from cityhub.ngsild.instance_id import new_instance_id, new_instance_ids

FORM = re.compile(r"urn:ngsi-ld:attribute:instance:[0-9a-f]{12}-[0-9a-f]+-[0-9a-f]+")


def test_ids_of_one_write_and_single_ids_never_repeat() -> None:
    made = [new_instance_id()]
    for _ in range(3):
        made += itertools.islice(new_instance_ids(), 500)
        made.append(new_instance_id())
    assert len(set(made)) == len(made)
    for iid in made:
        assert FORM.fullmatch(iid), iid
        assert check_uri(iid, "instanceId") == iid


def test_two_sources_used_in_turn_share_the_counter() -> None:
    first, second = new_instance_ids(), new_instance_ids()
    made = [next(first), next(second), next(first), next(second)]
    assert len(set(made)) == 4

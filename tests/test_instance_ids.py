"""instanceIds: unique in a process, one form (a per-process prefix, a counter and the
instance's time, by which the store finds its row again, decision 060), an absolute URI."""

from __future__ import annotations

from cityhub.ngsild.entity import check_uri
from cityhub.ngsild.instance_id import new_instance_id, time_of


def test_ids_never_repeat_and_carry_their_time() -> None:
    times = [0.0, 1_700_000_000.123456, 1_700_000_000.123456, 253402300799.999999]
    made = [new_instance_id(at) for at in times for _ in range(500)]
    assert len(set(made)) == len(made)
    for iid, at in zip(made, [at for at in times for _ in range(500)], strict=True):
        assert check_uri(iid, "instanceId") == iid
        assert time_of(iid) == at  # exactly: the double's bits, not a decimal


def test_an_id_the_hub_did_not_make_names_no_time() -> None:
    assert time_of("urn:ngsi-ld:attribute:instance:abc") is None
